"""The operators' console's settings (DTRACK_WORKER_CONSOLE_*, docs/console.md): read from an
environment mapping. Pure."""

from __future__ import annotations

import dataclasses

from worker.core.env import PREFIX, Env, Secret
from worker.core.errors import ConfigError


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleSettings:
    """The operators' web console (docs/console.md): never on the webhook's listener."""

    host: str = "127.0.0.1"
    port: int = 8090
    listen_set: bool = False  # set explicitly: a port that cannot be had stops serve
    enabled: bool = True  # CONSOLE_LISTEN=off: serve starts no console
    token: Secret | None = None  # None: a random one, printed once as a login URL
    readonly: bool = False


def console_settings(env: Env) -> ConsoleSettings:
    raw = env.text("CONSOLE_LISTEN", "127.0.0.1:8090")
    enabled = raw.lower() != "off"
    host, _, port = raw.rpartition(":") if enabled else ("127.0.0.1", ":", "8090")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"{PREFIX}CONSOLE_LISTEN={raw!r} must be HOST:PORT (example: 127.0.0.1:8090) or off"
        )
    readonly = env.text("CONSOLE_READONLY", "false").lower()
    if readonly not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{PREFIX}CONSOLE_READONLY={readonly!r} must be true or false")
    token = env.optional("CONSOLE_TOKEN")
    if token is not None and len(token) < 16:
        raise ConfigError(f"{PREFIX}CONSOLE_TOKEN is too short: use at least 16 characters")
    return ConsoleSettings(
        host=host.strip("[]"),
        port=int(port),
        listen_set=env.optional("CONSOLE_LISTEN") is not None,
        enabled=enabled,
        token=Secret(token) if token else None,
        readonly=readonly in ("true", "1", "yes"),
    )
