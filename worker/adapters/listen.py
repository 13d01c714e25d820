"""The listening socket, bound before anything else starts: a bad address is a setting's fault."""

from __future__ import annotations

import socket

from worker.core.config import PREFIX
from worker.core.errors import ConfigError

BACKLOG = 512


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound, listening, non-blocking socket; ConfigError (one line) when that is impossible."""
    where = f"{PREFIX}LISTEN={host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigError(f"{where}: cannot resolve {host!r}: {reason}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{where}: cannot listen there: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock
