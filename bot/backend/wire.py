"""Keep-alive HTTP/1.1 GETs of small answers, straight on asyncio's sockets.

The sweep asks every instance for its health (10,000 GETs a sweep). Through aiohttp's
``ClientSession.request`` each call built a request object, a header multidict, a response
object and a timer: measured here, the sweep's health fetch cost about what the raw aiohttp
baseline costs, and a sweep ~1.5 times it (BENCHMARKS.md). :class:`WireGets` writes one
pre-built request head per call on a pooled keep-alive connection and reads the answer
from the socket's buffer: 0.4 times aiohttp's CPU per call.

It reads only the contract's common shape: an HTTP/1.x answer framed by
``Content-Length``, with no ``Transfer-Encoding`` or ``Content-Encoding`` (the simulator's
and any plain JSON backend's). Any other framing raises :class:`UncommonAnswer` before a
byte of the body is taken, and the caller asks again through aiohttp, which reads every
framing (:class:`bot.backend.transport.SmallGets`). A malformed answer is an
``httpx.RemoteProtocolError``, one too large a ``ResponseTooLarge``; nothing is buffered past
the head's limit or the caller's ``max_body``.

There are no timers here: the caller's deadline (``InstanceClient``'s per attempt) bounds
the whole call, connect included, and a call cancelled mid-answer closes its connection,
whose state is then unknown.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from dataclasses import dataclass

import httpx

from bot.errors import StarpodBotError

# The most bytes of status line and headers read before the answer is refused.
MAX_HEAD_BYTES = 64 * 1024
_HEAD_END = b"\r\n\r\n"
_NO_BODY = frozenset({204, 304})


class UncommonAnswer(StarpodBotError):
    """The answer is framed in a way this module does not read (chunked, compressed, 1xx)."""


class _StaleConnection(httpx.ReadError):
    """A reused connection closed before any byte of the answer: the backend closed it idle."""


class ResponseTooLarge(httpx.ReadError, StarpodBotError):
    """The backend sent (or announced) a body over the request's ``max_body`` bytes.

    An ``httpx.ReadError`` so it travels through httpx as the transport failure it is, and a
    ``StarpodBotError`` so it sits in the one tree; the client turns it into a
    ``BackendProtocolError`` before anyone else sees it.
    """


def refuse_announced(length: int, limit: int) -> None:
    """Raise ResponseTooLarge when an answer announces more than ``limit`` bytes of body."""
    if length > limit:
        raise ResponseTooLarge(f"the answer announces {length} bytes, over {limit}")


@dataclass(frozen=True, slots=True)
class Head:
    """What the status line and headers say about the answer that follows them."""

    status: int
    length: int
    keep_alive: bool


def read_head(head: bytes) -> Head:
    """The status line and headers (without the blank line) → :class:`Head`.

    Raises ``httpx.RemoteProtocolError`` for a malformed head and :class:`UncommonAnswer`
    for one that is well formed but not framed by ``Content-Length`` alone.
    """
    lines = head.split(b"\r\n")
    status_line = lines[0]
    if (
        len(status_line) < 12
        or status_line[:7] != b"HTTP/1."
        or status_line[7:9] not in (b"1 ", b"0 ")
        or not status_line[9:12].isdigit()
        or (len(status_line) > 12 and status_line[12:13] != b" ")
    ):
        raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {status_line[:40]!r}")
    status = int(status_line[9:12])
    keep_alive = status_line[7:8] == b"1"
    length: int | None = None
    uncommon: str | None = None
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        # No name, whitespace before the colon or an obsolete folded line: RFC 9112 says reject.
        if not colon or not name or name != name.strip(b" \t"):
            raise httpx.RemoteProtocolError(f"malformed header line: {line[:40]!r}")
        name = name.lower()
        value = value.strip(b" \t")
        if name == b"content-length":
            if not value.isdigit() or len(value) > 18:
                raise httpx.RemoteProtocolError(f"bad Content-Length: {value[:40]!r}")
            if length is not None and int(value) != length:
                raise httpx.RemoteProtocolError("two different Content-Length headers")
            length = int(value)
        elif name in (b"transfer-encoding", b"content-encoding"):
            uncommon = name.decode()
        elif name == b"connection":
            tokens = {token.strip(b" \t").lower() for token in value.split(b",")}
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
    if status < 200:
        uncommon = f"status {status}"
    if uncommon is not None:
        raise UncommonAnswer(f"the answer has {uncommon}")
    if status in _NO_BODY:
        length = 0
    if length is None:
        raise UncommonAnswer("the answer has no Content-Length")
    return Head(status, length, keep_alive)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer read from the buffer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.served = 0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._max_body = 0
        self._scanned = 0  # how far the head's end has been looked for
        self._head: Head | None = None
        self._body_at = 0
        self.keep = False  # may this connection carry another request?

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # Bytes nobody asked for (or after a failure): this connection cannot be trusted.
            self.close()
            return
        self._buffer += data
        try:
            self._advance()
        except Exception as exc:  # a malformed or uncommon answer: hand it to the caller
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost tells the waiter

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            reason = f"{exc or 'the backend closed the connection'} before the answer was complete"
            # Nothing of the answer came on a connection used before: the backend closed it
            # while idle, as it may, and the caller asks again on a new one.
            stale = self.served > 0 and not self._buffer
            waiter.set_exception(_StaleConnection(reason) if stale else httpx.ReadError(reason))

    # -- requests ------------------------------------------------------------------------

    def request(
        self, message: bytes, max_body: int, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[tuple[int, bytes]]:
        """Send ``message``; the future gets (status, body)."""
        assert self.transport is not None
        self._waiter = waiter = loop.create_future()
        self._max_body = max_body
        self._head, self._scanned, self._body_at = None, 0, 0
        self.keep = False
        self.transport.write(message)
        return waiter

    def _advance(self) -> None:
        buffer = self._buffer
        head = self._head
        if head is None:
            end = buffer.find(_HEAD_END, max(0, self._scanned - 3))
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise httpx.RemoteProtocolError(
                        f"the answer's headers pass {MAX_HEAD_BYTES} bytes"
                    )
                self._scanned = len(buffer)
                return
            if end > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError(f"the answer's headers pass {MAX_HEAD_BYTES} bytes")
            head = self._head = read_head(bytes(buffer[:end]))
            refuse_announced(head.length, self._max_body)
            self._body_at = end + 4
        done = self._body_at + head.length
        if len(buffer) < done:
            return
        body = bytes(buffer[self._body_at : done])
        # Bytes past the answer were not asked for: the connection is not reused.
        self.keep = head.keep_alive and len(buffer) == done
        buffer.clear()
        self.served += 1
        assert self._waiter is not None
        self._waiter.set_result((head.status, body))

    def _fail(self, exc: Exception) -> None:
        assert self._waiter is not None
        self._waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        self.keep = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            # Closed on our side (the pool closing): not a stale connection to ask again on.
            waiter.set_exception(httpx.ReadError("closed before the answer was complete"))
        if self.transport is not None:
            self.transport.close()


class WireGets:
    """GETs to one origin over at most ``max_connections`` keep-alive connections.

    ``head`` is the request's header block after the request line, the blank line
    included (:func:`request_head`). Idle connections are reused newest first and closed
    once idle for ``keepalive_secs``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        head: bytes,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
        keepalive_secs: float = 30.0,
    ) -> None:
        self._host, self._port, self._head = host, port, head
        self._ssl = ssl_context
        self._keepalive_secs = keepalive_secs
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()  # idle and in use
        self._retired = False

    async def get(self, target: bytes, *, max_body: int) -> tuple[int, bytes]:
        """``GET target`` (an encoded path and query): (status, body).

        Raises httpx's ``ConnectError``, ``ReadError`` or ``RemoteProtocolError``,
        :class:`ResponseTooLarge` or :class:`UncommonAnswer`.
        """
        message = b"GET " + target + b" HTTP/1.1\r\n" + self._head
        loop = asyncio.get_running_loop()
        async with self._slots:
            reused = self._reusable(loop)
            if reused is not None:
                try:
                    return await self._exchange(reused, message, max_body, loop)
                except _StaleConnection:
                    pass  # closed by the backend while idle: once more on a new connection
            return await self._exchange(await self._connect(loop), message, max_body, loop)

    async def _exchange(
        self,
        connection: _Connection,
        message: bytes,
        max_body: int,
        loop: asyncio.AbstractEventLoop,
    ) -> tuple[int, bytes]:
        try:
            answer = await connection.request(message, max_body, loop)
        except BaseException:
            # Failed, or cancelled by the caller's deadline mid-answer: its state is unknown.
            connection.close()
            raise
        if connection.keep and not connection.closed and not self._retired:
            connection.idle_since = loop.time()
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    def _reusable(self, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        idle = self._idle
        while idle:
            connection = idle.pop()
            if loop.time() - connection.idle_since >= self._keepalive_secs:
                # The newest idle connection is too old: so is every one below it.
                connection.close()
                self._close_idle()
                return None
            if not connection.closed:
                return connection
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        try:
            _, connection = await loop.create_connection(
                _Connection,
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        except (OSError, ssl.SSLError) as exc:
            where = f"{self._host}:{self._port}"
            raise httpx.ConnectError(f"cannot connect to {where}: {exc}") from exc
        self._open.add(connection)
        return connection

    def _close_idle(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    def retire(self) -> None:
        """Keep no connection from now on: close the idle ones, and each in use after its call."""
        self._retired = True
        self._close_idle()

    async def aclose(self) -> None:
        """Close every connection: a call still waiting for its answer fails (ReadError).

        The pool may be used again afterwards, on new connections.
        """
        self._idle.clear()
        for connection in list(self._open):
            connection.close()


def request_head(host_header: str, headers: dict[str, str]) -> bytes:
    """The header block of every request: ``Host``, ``headers``, then the blank line.

    Refuses a name or value that would end a header line early (a key with a newline in
    it must not add headers of its own).
    """
    lines = [f"Host: {host_header}"]
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0") or ":" in name:
            raise ValueError(f"header {name!r} cannot be sent as it is")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
