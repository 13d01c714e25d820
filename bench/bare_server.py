"""The baseline for bench/receiver.py: a bare aiohttp handler that parses JSON and answers 202."""

from __future__ import annotations

import sys

import orjson
from aiohttp import web

from worker.service.serve import _loop


async def handle(request: web.Request) -> web.Response:
    document = orjson.loads(await request.read())
    body = orjson.dumps({"status": "enqueued", "keys": len(document)})
    return web.Response(status=202, body=body, content_type="application/json")


def main() -> None:
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/webhook", handle)
    web.run_app(
        app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=_loop()
    )


if __name__ == "__main__":
    main()
