"""A backend that does not play fair: everything the client reads from it stays bounded.

A small aiohttp server on 127.0.0.1 plays the hostile backend (the simulator is a
well-behaved one): it ignores ``?tail=``, streams logs without end, sends a line of 20 MB
with no newline, drips a health answer one byte at a time, and answers a list far larger
than any fleet. The real ``InstanceClient`` with its default transport reads from it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientError, web

from bot.backend.client import InstanceClient
from bot.backend.errors import BackendProtocolError, BackendUnavailable
from bot.backend.logstream import CUT_NOTE, MAX_LINE_BYTES, ByteBudget, iter_log_lines

IID = "0b6f5a4e-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
INSTANCE = {"id": IID, "name": "pod-001", "status": "running", "region": "eu-1"}
# The server stops an endless answer by itself: tests never leave it running.
SERVER_SENDS_AT_MOST = 256 * 1024 * 1024


def _line(n: int) -> bytes:
    return json.dumps({"level": "info", "message": f"line {n}"}).encode() + b"\n"


class HostileBackend:
    """Routes whose misbehaviour is chosen per test; ``sent`` counts body bytes written."""

    def __init__(self) -> None:
        self.logs_mode = "ignore_tail"
        self.sent = 0
        self.app = web.Application()
        self.app.router.add_get("/instances", self.instances)
        self.app.router.add_get("/instances/{id}/logs", self.logs)
        self.app.router.add_get("/instances/{id}/health", self.drip_health)
        self.list_mode = "chunked"

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        self.sent += len(data)
        await response.write(data)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            if self.logs_mode == "ignore_tail":
                # 10,000 lines whatever tail was asked for.
                await self._write(response, b"".join(_line(n) for n in range(1, 10_001)))
            elif self.logs_mode == "long_line":
                chunk = b"x" * 65_536
                for _ in range(20 * 16):  # 20 MB with no newline
                    await self._write(response, chunk)
                await self._write(response, b"\n" + _line(2))
            elif self.logs_mode == "endless":
                n = 0
                while self.sent < SERVER_SENDS_AT_MOST:
                    block = b"".join(_line(n + i) for i in range(1000))
                    n += 1000
                    await self._write(response, block)
            elif self.logs_mode == "slow_endless":
                n = 0
                while self.sent < SERVER_SENDS_AT_MOST:
                    n += 1
                    await self._write(response, _line(n))
                    await asyncio.sleep(0.01)
            await response.write_eof()
        except (OSError, ClientError, asyncio.CancelledError):
            pass  # the client stopped reading, as it should
        return response

    async def drip_health(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        body = json.dumps({"cpu_pct": 1, "memory_pct": 2, "disk_pct": 3}).encode()
        try:
            for byte in body:
                await self._write(response, bytes([byte]))
                await asyncio.sleep(0.2)  # each byte well within the per-read timeout
            await response.write_eof()
        except (OSError, ClientError, asyncio.CancelledError):
            pass
        return response

    async def instances(self, request: web.Request) -> web.StreamResponse:
        item = json.dumps(INSTANCE).encode()
        count = 40_000  # ~3 MB of list
        if self.list_mode == "announced":
            body = b"[" + b",".join([item] * count) + b"]"
            self.sent += len(body)
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            await self._write(response, b"[" + item)
            for _ in range(count // 100 - 1):
                await self._write(response, b"," + b",".join([item] * 100))
            await self._write(response, b"," + b",".join([item] * 99) + b"]")
            await response.write_eof()
        except (OSError, ClientError, asyncio.CancelledError):
            pass
        return response


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[HostileBackend, str]]:
    backend = HostileBackend()
    runner = web.AppRunner(backend.app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield backend, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_logs_keep_only_the_last_tail_entries_when_the_backend_ignores_tail(
    hostile: tuple[HostileBackend, str],
) -> None:
    _backend, url = hostile
    async with InstanceClient(url) as client:
        got = await client.tail_logs(IID, tail=50)
    assert [e.message for e in got.entries] == [f"line {n}" for n in range(9951, 10_001)]
    assert got.received == 10_000 and got.truncated is None


async def test_an_endless_log_stream_stops_at_the_byte_budget(
    hostile: tuple[HostileBackend, str],
) -> None:
    backend, url = hostile
    backend.logs_mode = "endless"
    async with InstanceClient(url) as client:
        got = await client.tail_logs(IID, tail=20, max_bytes=2 * 1024 * 1024, max_secs=60)
    assert len(got.entries) == 20
    assert got.truncated is not None and "more than 2 MB" in got.truncated
    # The last entries are whole lines: the budget cut at a newline.
    assert all(e.message.startswith("line ") for e in got.entries)
    assert backend.sent < SERVER_SENDS_AT_MOST  # the client stopped it, not the server


async def test_a_slow_endless_log_stream_stops_at_the_time_budget(
    hostile: tuple[HostileBackend, str],
) -> None:
    backend, url = hostile
    backend.logs_mode = "slow_endless"
    async with InstanceClient(url) as client:
        got = await client.tail_logs(IID, tail=5, max_secs=0.5)
    assert got.truncated is not None and "still sending after 0.5 s" in got.truncated
    assert 0 < len(got.entries) <= 5


async def test_a_huge_line_is_cut_and_the_next_line_still_reads(
    hostile: tuple[HostileBackend, str],
) -> None:
    backend, url = hostile
    backend.logs_mode = "long_line"
    async with InstanceClient(url) as client:
        got = await client.tail_logs(IID, tail=10, max_bytes=64 * 1024 * 1024)
    first, second = got.entries
    assert first.message.endswith(CUT_NOTE)
    assert len(first.message) == MAX_LINE_BYTES + len(CUT_NOTE)
    assert second.message == "line 2"


async def test_a_dripping_answer_hits_the_total_deadline(
    hostile: tuple[HostileBackend, str],
) -> None:
    _backend, url = hostile
    # Each byte comes within the per-read timeout; only a total deadline ends the call.
    async with InstanceClient(url, timeout=1.0) as client:
        with pytest.raises(BackendUnavailable, match="no complete answer within 1 s"):
            await client.get_health(IID)


@pytest.mark.parametrize("mode", ["chunked", "announced"])
async def test_a_list_body_over_the_cap_is_refused_not_buffered(
    hostile: tuple[HostileBackend, str], mode: str
) -> None:
    backend, url = hostile
    backend.list_mode = mode
    async with InstanceClient(url, max_body=1024 * 1024) as client:
        with pytest.raises(BackendProtocolError, match=r"over|passed"):
            await client.list_instances()
        # The same answer within the cap reads fine.
    async with InstanceClient(url) as client:
        assert len(await client.list_instances()) == 40_000


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _lines(parts: list[bytes], **kw: Any) -> list[tuple[bytes, bool]]:
    return [(line.text, line.cut) async for line in iter_log_lines(_chunks(parts), **kw)]


async def test_the_line_splitter_handles_any_chunking() -> None:
    assert await _lines([b"a\nb", b"c\n", b"\n", b"d"]) == [
        (b"a", False),
        (b"bc", False),
        (b"", False),
        (b"d", False),
    ]
    assert await _lines([b"abcdef", b"gh\nij"], max_line=4) == [(b"abcd", True), (b"ij", False)]


async def test_the_line_splitter_is_linear_on_a_line_without_newline() -> None:
    # 64 MB in 64 KiB chunks and no newline: a quadratic splitter (join, then split the
    # whole pending buffer per chunk) would copy ~32 TB here; this one copies 16 KiB.
    chunk = b"y" * 65_536
    parts = [chunk] * 1024
    [(text, cut)] = await _lines(parts)
    assert cut and len(text) == MAX_LINE_BYTES


async def test_the_byte_budget_ends_at_a_newline() -> None:
    budget = ByteBudget(10)
    got = [c async for c in budget.take(_chunks([b"1234\n", b"56\n789\nabc"]))]
    assert got == [b"1234\n", b"56\n"] and budget.exhausted
