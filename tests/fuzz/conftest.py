"""Fixtures for the fuzz tests: a scripted HTTP server on loopback and the example budget.

The scripted server answers every request with whatever the current example put in
``ScriptedServer.answer`` (status, body chunks, content type), so hypothesis drives the bytes
the real :class:`~bot.backend.client.InstanceClient` reads over a real socket.

``STARPOD_FUZZ_EXAMPLES`` sets hypothesis' ``max_examples`` for every fuzz test (moderate in
CI; ``bench/reliability.py`` raises it for the long mode).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from bot.backend.client import InstanceClient

LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"
FUZZ_EXAMPLES = int(os.environ.get("STARPOD_FUZZ_EXAMPLES", "2000" if LONG else "150"))


@dataclass
class Answer:
    """What the scripted server sends next: a status and a body written chunk by chunk."""

    status: int = 200
    chunks: list[bytes] = field(default_factory=list)
    content_type: str = "application/json"


class ScriptedServer:
    """A loopback aiohttp server that answers every request with :attr:`answer`."""

    def __init__(self) -> None:
        self.answer = Answer()
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        await request.read()
        answer = self.answer
        response = web.StreamResponse(status=answer.status)
        response.content_type = answer.content_type
        response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in answer.chunks:
            if chunk:
                await response.write(chunk)
                # Yield so each chunk tends to leave in its own write, not one coalesced buffer.
                await asyncio.sleep(0)
        await response.write_eof()
        return response


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    """A running scripted server on 127.0.0.1."""
    server = ScriptedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def scripted_client(scripted: ScriptedServer) -> AsyncIterator[InstanceClient]:
    """The real backend client pointed at the scripted server (no retry back-off)."""
    async with InstanceClient(scripted.url, "fuzz-key", timeout=5.0, retry_backoff=0) as client:
        yield client
