"""The sweep's health GETs on the wire (bot.backend.wire), against a scripted TCP server.

The server on 127.0.0.1 reads each request head and writes whatever bytes the test chose:
well-formed answers, closed connections, malformed and oversized heads, other framings.
Every case goes through the real ``WireGets`` or, where the client's behaviour is the
point, through ``InstanceClient`` with its default transport.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.backend.client import InstanceClient
from bot.backend.errors import BackendProtocolError, BackendUnavailable
from bot.backend.wire import (
    MAX_HEAD_BYTES,
    ResponseTooLarge,
    UncommonAnswer,
    WireGets,
    read_head,
    request_head,
)

IID = "0b6f5a4e-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
HEALTH = json.dumps(
    {
        "cpu_percent": 1.5,
        "memory_mb": 512,
        "disk_mb": 1024,
        "last_heartbeat": 1_780_000_000,
        "uptime_secs": 60,
    }
).encode()


def answer(body: bytes = HEALTH, *, status: str = "200 OK", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


# What the server does with one request: write bytes, and say whether to keep the connection.
Script = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


def replies(*chunks: bytes, keep: bool = True) -> Script:
    async def script(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        return keep

    return script


class ScriptedServer:
    """Answers each request with the next script (the last one repeats); counts connections."""

    def __init__(self) -> None:
        self.scripts: list[Script] = [replies(answer())]
        self.requests: list[bytes] = []
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.port = 0
        self.closed = 0
        self._closing = asyncio.Condition()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def until_closed(self, count: int) -> None:
        """Wait until ``count`` connections have ended (closed by either side)."""
        async with self._closing:
            await self._closing.wait_for(lambda: self.closed >= count)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wire(self, **kw: object) -> WireGets:
        head = request_head(f"127.0.0.1:{self.port}", {"Accept": "application/json"})
        return WireGets("127.0.0.1", self.port, head, **kw)  # type: ignore[arg-type]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    request = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(request)
                script = self.scripts[min(len(self.requests), len(self.scripts)) - 1]
                if not await script(request, writer):
                    return
        finally:
            self.open_now -= 1
            self._writers.discard(writer)
            writer.close()
            async with self._closing:
                self.closed += 1
                self._closing.notify_all()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as s:
        yield s


async def test_answers_are_read_and_one_connection_carries_them_all(
    server: ScriptedServer,
) -> None:
    wire = server.wire()
    for _ in range(5):
        assert await wire.get(b"/instances/a/health", max_body=1024) == (200, HEALTH)
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /instances/a/health HTTP/1.1\r\nHost: 127.0.0.1:")
    await wire.aclose()


async def test_the_client_reads_health_on_the_wire_with_its_headers(
    server: ScriptedServer,
) -> None:
    async with InstanceClient(server.url, "secret-key") as client:
        health = await client.get_health(IID)
        await client.get_health(IID)
    assert health.memory_mb == 512 and health.last_heartbeat is not None
    assert server.connections == 1
    request = server.requests[0].decode()
    assert f"GET /instances/{IID}/health HTTP/1.1\r\n" in request
    assert "authorization: bearer secret-key\r\n" in request.lower()


async def test_connection_close_and_http_1_0_answers_are_not_reused(
    server: ScriptedServer,
) -> None:
    http10 = answer().replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    server.scripts = [
        replies(answer(extra="Connection: close\r\n"), keep=False),
        replies(http10, keep=False),
        replies(answer()),
    ]
    wire = server.wire()
    for _ in range(4):
        assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)
    assert server.connections == 3  # the 3rd connection carried the 3rd and 4th requests
    await wire.aclose()


async def test_a_connection_the_backend_closed_while_idle_is_replaced_silently(
    server: ScriptedServer,
) -> None:
    # The server answers, then closes the connection without saying so (a keep-alive
    # timeout on its side): the next call finds it dead and asks again on a new one.
    server.scripts = [replies(answer(), keep=False)]
    wire = server.wire()
    for _ in range(3):
        assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)
    assert server.connections == 3
    assert len(server.requests) == 3
    await wire.aclose()


async def test_a_connection_cut_mid_answer_is_a_read_error_not_retried(
    server: ScriptedServer,
) -> None:
    server.scripts = [replies(answer()[:30], keep=False)]
    wire = server.wire()
    with pytest.raises(httpx.ReadError, match="before the answer was complete"):
        await wire.get(b"/h", max_body=1024)
    assert len(server.requests) == 1
    await wire.aclose()


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"HTTP/2 200 OK", "status line"),
        (b"ICY 200 OK", "status line"),
        (b"HTTP/1.1 2x0 OK", "status line"),
        (b"HTTP/1.1 200OK", "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12abc", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3", "two different"),
        (b"HTTP/1.1 200 OK\r\nno colon here", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length : 2", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded: line", "malformed header"),
    ],
)
def test_a_malformed_head_is_a_protocol_error(head: bytes, problem: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match=problem):
        read_head(head)


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 20",
        b"HTTP/1.1 200 OK",  # read until the connection closes
        b"HTTP/1.1 100 Continue",
    ],
)
def test_other_framings_are_uncommon_not_errors(head: bytes) -> None:
    with pytest.raises(UncommonAnswer):
        read_head(head)


def test_the_common_heads() -> None:
    assert read_head(b"HTTP/1.1 200 OK\r\ncontent-length:  7 ") == read_head(
        b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7"
    )
    head = read_head(b"HTTP/1.1 204 No Content")
    assert (head.status, head.length, head.keep_alive) == (204, 0, True)
    assert not read_head(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0").keep_alive
    assert read_head(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0").keep_alive
    assert not read_head(b"HTTP/1.1 503\r\nConnection: x, close\r\nContent-Length: 0").keep_alive


async def test_a_malformed_answer_reaches_the_user_as_backend_unavailable(
    server: ScriptedServer,
) -> None:
    server.scripts = [replies(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n{}", keep=False)]
    async with InstanceClient(server.url, retry_backoff=0.01) as client:
        with pytest.raises(BackendUnavailable, match="bad Content-Length"):
            await client.get_health(IID)


async def test_endless_headers_stop_at_the_limit_with_nothing_more_buffered(
    server: ScriptedServer,
) -> None:
    sent = 0

    async def endless_head(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\n")
        try:
            while sent < 64 * MAX_HEAD_BYTES:  # the test's own stop, far past the limit
                writer.write(b"X-Padding: " + b"y" * 1000 + b"\r\n")
                sent += 1013
                await writer.drain()
        except ConnectionError:
            pass
        return False

    server.scripts = [endless_head]
    wire = server.wire()
    with pytest.raises(httpx.RemoteProtocolError, match="headers pass"):
        await wire.get(b"/h", max_body=1024)
    await wire.aclose()


async def test_an_announced_body_over_max_body_is_refused_before_it_is_read(
    server: ScriptedServer,
) -> None:
    server.scripts = [replies(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n{", keep=True)]
    wire = server.wire()
    with pytest.raises(ResponseTooLarge, match="announces 1000000000 bytes, over 4096"):
        await wire.get(b"/h", max_body=4096)
    await wire.aclose()
    async with InstanceClient(server.url, max_body=4096) as client:
        with pytest.raises(BackendProtocolError, match="over 4096"):
            await client.get_health(IID)


async def test_bytes_past_the_answer_or_between_requests_retire_the_connection(
    server: ScriptedServer,
) -> None:
    async def then_unasked(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer())
        await writer.drain()
        await asyncio.sleep(0.05)  # lands while the connection is idle in the pool
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        return True

    server.scripts = [replies(answer() + b"HTTP/1.1 200 OK\r\n"), then_unasked, replies(answer())]
    wire = server.wire()
    assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)  # extra bytes: retired
    assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)
    # The unasked answer arrives on the idle connection, and the client closes it.
    await server.until_closed(2)
    assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)
    assert server.connections == 3
    await wire.aclose()


async def test_an_answer_dripped_on_the_wire_is_cut_at_the_clients_deadline(
    server: ScriptedServer,
) -> None:
    # Framed by Content-Length, so the wire reads it (the hostile backend's drip is chunked
    # and goes through aiohttp): one byte every 50 ms, far more than the 0.5 s deadline.
    async def drip(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        try:
            for byte in answer():
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)
        except ConnectionError:
            pass
        return False

    server.scripts = [drip]
    async with InstanceClient(server.url, timeout=0.5) as client:
        with pytest.raises(BackendUnavailable, match=r"no complete answer within 0.5 s"):
            await client.get_health(IID)
        assert client._short is not None and client._short.on_the_wire
    await server.until_closed(1)  # the client closed the half-read connection
    assert len(server.requests) == 1  # a timed-out attempt is not retried


async def test_a_call_cancelled_mid_answer_closes_its_connection_and_frees_its_slot(
    server: ScriptedServer,
) -> None:
    server.scripts = [replies(b"HTTP/1.1 200 OK\r\n"), replies(answer())]
    wire = server.wire(max_connections=1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await wire.get(b"/h", max_body=1024)
    # The half-answered connection is not reused: the next call gets a whole answer.
    assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)
    assert server.connections == 2
    await wire.aclose()


async def test_closing_the_pool_ends_a_call_in_flight_and_every_connection(
    server: ScriptedServer,
) -> None:
    asked = asyncio.Event()

    async def never(_request: bytes, _writer: asyncio.StreamWriter) -> bool:
        asked.set()
        await asyncio.Event().wait()  # ended by the server's own shutdown
        return False

    server.scripts = [replies(answer()), never]
    wire = server.wire()
    assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)  # one idle connection
    in_flight = asyncio.ensure_future(wire.get(b"/h", max_body=1024))  # on that connection
    other = asyncio.ensure_future(wire.get(b"/h", max_body=1024))  # on a second one
    await asyncio.wait_for(asked.wait(), 5)
    await wire.aclose()
    for call in (in_flight, other):
        with pytest.raises(httpx.ReadError, match="before the answer was complete"):
            await call


async def test_concurrent_calls_keep_within_max_connections(server: ScriptedServer) -> None:
    async def slow(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.02)
        writer.write(answer())
        await writer.drain()
        return True

    server.scripts = [slow]
    wire = server.wire(max_connections=3)
    results = await asyncio.gather(*(wire.get(b"/h", max_body=1024) for _ in range(20)))
    assert results == [(200, HEALTH)] * 20
    assert server.most_open <= 3 and server.connections <= 3
    await wire.aclose()


async def test_idle_connections_past_keepalive_are_not_reused(server: ScriptedServer) -> None:
    wire = server.wire(keepalive_secs=0)
    for _ in range(3):
        assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)
    assert server.connections == 3
    await wire.aclose()


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with ScriptedServer() as gone:
        port = gone.port
    head = request_head(f"127.0.0.1:{port}", {})
    with pytest.raises(httpx.ConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
        await WireGets("127.0.0.1", port, head).get(b"/h", max_body=1024)


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer k\r\nX-Evil: 1"}, {"X\nY": "1"}, {"A:B": "1"}, {"A": "\0"}],
)
def test_a_header_that_would_add_lines_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="cannot be sent as it is"):
        request_head("example.com", headers)


@pytest.mark.parametrize("framing", ["chunked", "gzip"])
async def test_the_client_reads_other_framings_through_aiohttp_from_then_on(
    server: ScriptedServer, framing: str
) -> None:
    if framing == "chunked":
        framed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        framed += f"{len(HEALTH):x}\r\n".encode() + HEALTH + b"\r\n0\r\n\r\n"
    else:
        packed = gzip.compress(HEALTH)
        framed = answer(packed, extra="Content-Encoding: gzip\r\n")
        framed = framed.replace(f"Content-Length: {len(HEALTH)}".encode(), b"")
    server.scripts = [replies(framed)]
    async with InstanceClient(server.url) as client:
        first = await client.get_health(IID)
        assert client._short is not None and not client._short.on_the_wire
        second = await client.get_health(IID)
    assert first.memory_mb == second.memory_mb == 512
    # The wire read the first head and stopped; aiohttp asked again, then once more.
    assert len(server.requests) == 3


async def test_calls_in_flight_when_the_client_turns_to_aiohttp_still_succeed(
    server: ScriptedServer,
) -> None:
    # The first answer comes chunked at once and turns the client to aiohttp while the
    # other calls still wait on the wire for theirs; those finish there, and none fails.
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += f"{len(HEALTH):x}\r\n".encode() + HEALTH + b"\r\n0\r\n\r\n"
    everyone_asked = asyncio.Event()

    async def some_chunked(_request: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 1:
            writer.write(chunked)
        else:
            if len(server.requests) >= 30:
                everyone_asked.set()
            await everyone_asked.wait()
            writer.write(answer())
        await writer.drain()
        return True

    server.scripts = [some_chunked]
    outcomes: list[str] = []
    observer = lambda _endpoint, outcome, _secs: outcomes.append(outcome)  # noqa: E731
    async with InstanceClient(server.url, observer=observer) as client:
        results = await asyncio.gather(*(client.get_health(IID) for _ in range(30)))
        assert client._short is not None and not client._short.on_the_wire
    assert [r.memory_mb for r in results] == [512] * 30
    assert outcomes == ["200"] * 30  # not one attempt failed and was retried


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_tls_is_verified_and_works_with_a_trusted_certificate(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(answer())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    tls = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = tls.sockets[0].getsockname()[1]
    try:
        # The client's own default: the system's trust store, which knows no such certificate.
        async with InstanceClient(f"https://127.0.0.1:{port}", retry_backoff=0.01) as client:
            with pytest.raises(BackendUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get_health(IID)
        trusting = ssl.create_default_context(cafile=str(cert_file))
        head = request_head(f"127.0.0.1:{port}", {})
        wire = WireGets("127.0.0.1", port, head, ssl_context=trusting)
        assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)
        assert await wire.get(b"/h", max_body=1024) == (200, HEALTH)
        await wire.aclose()
    finally:
        tls.close()
        await tls.wait_closed()
