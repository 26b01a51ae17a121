"""Serve a simulator's aiohttp app on 127.0.0.1: the one way every simulator binds."""

from __future__ import annotations

from aiohttp import web


async def listen(runner: web.AppRunner, host: str, port: int) -> int:
    """Set ``runner`` up and serve it on ``host:port`` (0: any free port); the bound port.

    A failed bind (the port is taken) cleans the runner up, so nothing is left half open.
    """
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return int(runner.addresses[0][1])
