"""Idle and half-sent connections are closed; past the connection cap the bot still answers.

The real web app (``create_web_app``: ``/healthz``, ``/slack/events`` behind its request
guard) under the real ``WebServer`` (uvicorn with ``bot/web/connection_guard.py``), spoken
to over raw sockets, as a slowloris attacker would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import SshLinkService
from bot.slack.app import BotTokenAuthorize
from bot.store.database import Database
from bot.web.app import create_web_app
from bot.web.server import WebServer

SECRET = "connection-guard-signing-secret"
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n"
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """``await start_server(header_timeout=…, max_connections=…)`` → a started WebServer."""
    servers: list[WebServer] = []
    db = Database(f"sqlite:///{tmp_path / 'guard.db'}")
    web = AsyncWebClient(token="xoxb-guard", base_url="http://127.0.0.1:9/api/")
    slack_app = AsyncApp(
        signing_secret=SECRET, client=web, authorize=BotTokenAuthorize("xoxb-guard")
    )
    app = create_web_app(
        slack_app=slack_app,
        signing_secret=SECRET,
        ssh_links=SshLinkService(db, public_url=None),
    )

    async def start(**limits: float) -> WebServer:
        server = WebServer(app, **limits)  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()
        await db.dispose()


async def _open(server: WebServer) -> Conn:
    return await asyncio.open_connection(server.host, server.port)


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sent until it closed the connection (fails if it does not)."""
    return await asyncio.wait_for(reader.read(), within)


async def _wait_registered(server: WebServer, count: int) -> None:
    """Wait until the server has accepted ``count`` connections (its accept loop is async)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while len(server.protocol.registry) < count:
        assert loop.time() < deadline, f"{len(server.protocol.registry)} of {count} accepted"
        await asyncio.sleep(0.01)


async def _healthz(server: WebServer) -> bytes:
    reader, writer = await _open(server)
    writer.write(HEALTHZ)
    status = await asyncio.wait_for(reader.readline(), 5.0)
    writer.close()
    return status


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(
    start_server: Callable[..., object],
) -> None:
    server: WebServer = await start_server(header_timeout=0.5)  # type: ignore[misc]
    loop = asyncio.get_running_loop()
    reader, writer = await _open(server)
    opened = loop.time()
    assert await _closed_by_server(reader, within=5.0) == b""
    assert 0.45 <= loop.time() - opened < 3.0
    writer.close()


async def test_half_sent_headers_are_closed_at_the_header_timeout(
    start_server: Callable[..., object],
) -> None:
    server: WebServer = await start_server(header_timeout=0.5)  # type: ignore[misc]
    loop = asyncio.get_running_loop()
    reader, writer = await _open(server)
    opened = loop.time()
    # Everything but the blank line that ends the headers: the request never starts.
    writer.write(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nX-Slack-Signature: v0=")
    await writer.drain()
    assert await _closed_by_server(reader, within=5.0) == b""
    assert loop.time() - opened < 3.0
    assert server.protocol.closed_by_guard.get("header timeout") == 1
    writer.close()


async def test_a_kept_alive_connection_outlives_the_header_timeout_between_requests(
    start_server: Callable[..., object],
) -> None:
    server: WebServer = await start_server(header_timeout=0.3)  # type: ignore[misc]
    reader, writer = await _open(server)
    for _ in range(2):
        writer.write(HEALTHZ)
        assert (await asyncio.wait_for(reader.readline(), 5.0)).startswith(b"HTTP/1.1 200")
        await asyncio.wait_for(reader.readuntil(b"ok"), 5.0)
        # Idle between requests is uvicorn's keep-alive (75 s), not the header deadline.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.6)
    writer.close()


async def test_past_the_cap_idle_connections_give_way_and_healthz_answers(
    start_server: Callable[..., object],
) -> None:
    server: WebServer = await start_server(header_timeout=30, max_connections=6)  # type: ignore[misc]
    idle = [await _open(server) for _ in range(6)]
    await _wait_registered(server, 6)
    # The cap is held by connections that sent nothing: a probe still gets its answer …
    assert (await _healthz(server)).startswith(b"HTTP/1.1 200")
    # … because the oldest idle one was closed for it (long before its 30 s deadline).
    assert await _closed_by_server(idle[0][0], within=5.0) == b""
    assert server.protocol.closed_by_guard.get("evicted at the connection cap") == 1
    for _, writer in idle:
        writer.close()


async def test_past_the_cap_with_every_connection_busy_new_ones_are_refused(
    start_server: Callable[..., object],
) -> None:
    server: WebServer = await start_server(header_timeout=30, max_connections=4)  # type: ignore[misc]
    busy: list[Conn] = []
    for _ in range(4):
        reader, writer = await _open(server)
        # A whole header block, then a body that never ends: a request in progress.
        writer.write(
            b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n"
        )
        await writer.drain()
        busy.append((reader, writer))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while sum(not w for w in server.protocol.registry.values()) < 4:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    reader, writer = await _open(server)
    writer.write(HEALTHZ)
    assert await _closed_by_server(reader, within=5.0) == b""  # refused: no answer at all
    assert server.protocol.closed_by_guard.get("refused") == 1
    writer.close()
    # The busy requests end; the bot answers again.
    for busy_reader, busy_writer in busy:
        busy_writer.write(b"0\r\n\r\n")
        status = await asyncio.wait_for(busy_reader.readline(), 5.0)
        assert status.startswith(b"HTTP/1.1 401"), status  # unsigned: refused by the guard
        busy_writer.close()
    assert (await _healthz(server)).startswith(b"HTTP/1.1 200")
