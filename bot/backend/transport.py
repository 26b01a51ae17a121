"""An httpx transport on aiohttp's connection pool, lean enough for 10,000-instance sweeps.

Measured here (BENCHMARKS.md): httpx's own pool managed ~500 req/s at 50 concurrent
requests, httpx-aiohttp's transport ~2,500-4,000, and this one ~6,000, beside ~12,000 for
a raw aiohttp client. The differences: the body is read in one call unless the request
asks to stream (``extensions={"stream": True}``), the URL is handed to aiohttp already
encoded so it is not parsed twice, and aiohttp's errors map to the httpx error that
actually happened (httpx-aiohttp reports a refused connection as a ConnectTimeout).

The sweep's health GETs go closer still (:class:`SmallGets`): on the wire
(:mod:`bot.backend.wire`) while the backend frames its answers the common way, through
aiohttp otherwise.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx
import yarl

from bot.backend.wire import (
    ResponseTooLarge,
    UncommonAnswer,
    WireGets,
    refuse_announced,
    request_head,
)

__all__ = ["MAX_BODY_EXTENSION", "STREAM_EXTENSION", "AiohttpTransport", "ResponseTooLarge"]
log = logging.getLogger(__name__)

STREAM_EXTENSION = "stream"
# The most bytes of a (non-streamed) body the transport reads before giving up on it.
MAX_BODY_EXTENSION = "max_body"


def _map_error(exc: Exception) -> httpx.TransportError:
    """aiohttp or asyncio error → the httpx error with the same meaning."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message or "read timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return httpx.ReadError(message)
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientConnectionError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message)
    return httpx.TransportError(message)


# No timer of aiohttp's own: the caller's deadline bounds the whole call, connect included.
_NO_TIMEOUT = aiohttp.ClientTimeout()


_PREPARED = "aiohttp_prepared"
_SKIPPED_REQUEST_HEADERS = ("content-length", "host")  # aiohttp sets both itself


def _prepare(
    request: httpx.Request,
) -> tuple[yarl.URL, list[tuple[str, str]], aiohttp.ClientTimeout]:
    """What aiohttp needs from an httpx request: its URL, headers and timeouts."""
    timeout = request.extensions.get("timeout", {})
    client_timeout = aiohttp.ClientTimeout(
        connect=timeout.get("pool"),
        sock_connect=timeout.get("connect"),
        sock_read=timeout.get("read"),
    )
    headers = [
        (key.decode("latin-1"), value.decode("latin-1"))
        for key, value in request.headers.raw
        if key.decode("latin-1").lower() not in _SKIPPED_REQUEST_HEADERS
    ]
    return yarl.URL(str(request.url), encoded=True), headers, client_timeout


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from exc

    async def aclose(self) -> None:
        self._response.release()


async def _read_at_most(response: aiohttp.ClientResponse, limit: int | None) -> bytes:
    """The whole body, or ResponseTooLarge as soon as it passes ``limit`` bytes."""
    if limit is None:
        return await response.read()
    length = response.content_length
    # A compressed body's length says nothing of what it inflates to: count what is read.
    plain = "Content-Encoding" not in response.headers
    if plain and length is not None:
        refuse_announced(length, limit)
        return await response.read()  # the common case: one call, no copies
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"the answer passed {limit} bytes")
    return bytes(body)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx transport over one aiohttp ``ClientSession`` (created on first use, in the loop)."""

    def __init__(self, *, max_connections: int = 100, keepalive_secs: float = 30.0) -> None:
        self.max_connections = max_connections
        self.keepalive_secs = keepalive_secs
        self._session: aiohttp.ClientSession | None = None
        self._small_gets: list[SmallGets] = []

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=self.keepalive_secs
            )
            # Decompression and cookies stay with httpx's conventions: none needed here.
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        prepared = request.extensions.get(_PREPARED)
        if prepared is None:
            # Kept on the request: a client that reuses requests pays for this once.
            prepared = request.extensions[_PREPARED] = _prepare(request)
        url, headers, client_timeout = prepared
        stream = bool(request.extensions.get(STREAM_EXTENSION))
        try:
            response = await self._get_session().request(
                request.method,
                url,
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                timeout=client_timeout,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from exc
        raw_headers = [
            (k, v)
            for k, v in response.raw_headers
            # aiohttp already decoded the body; httpx must not decode or size-check it again.
            if k.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        if stream:
            return httpx.Response(
                response.status,
                headers=raw_headers,
                stream=_ResponseStream(response),
                request=request,
            )
        try:
            body = await _read_at_most(response, request.extensions.get(MAX_BODY_EXTENSION))
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from exc
        finally:
            response.release()
        # stream= rather than content=: httpx then skips re-encoding the body and its
        # headers (12 µs → 2 µs a response); the caller's aread() takes it as it is.
        return httpx.Response(
            response.status,
            headers=raw_headers,
            stream=httpx.ByteStream(body),
            request=request,
        )

    def small_gets(self, base_url: str, headers: dict[str, str]) -> SmallGets:
        """GETs of small answers from ``base_url`` with ``headers``: see :class:`SmallGets`."""
        gets = SmallGets(self, base_url, headers)
        self._small_gets.append(gets)
        return gets

    async def get_small(
        self, url: str, headers: dict[str, str], *, max_body: int
    ) -> tuple[int, bytes]:
        """``GET url`` through aiohttp: the status and the whole body (at most ``max_body``).

        :class:`SmallGets`'s way for answers in any framing. ``url`` must already be
        percent-encoded; no timer is armed (the caller's deadline bounds the call). Errors
        are the httpx ones, as for :meth:`handle_async_request`.
        """
        try:
            response = await self._get_session().request(
                "GET",
                yarl.URL(url, encoded=True),
                headers=headers,
                allow_redirects=False,
                timeout=_NO_TIMEOUT,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from exc
        try:
            return response.status, await _read_at_most(response, max_body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _map_error(exc) from exc
        finally:
            response.release()

    async def aclose(self) -> None:
        for gets in self._small_gets:
            await gets.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None


class SmallGets:
    """GETs of small answers from one backend: the short path of ``get_health``.

    On the wire (:class:`~bot.backend.wire.WireGets`) while the backend answers in the
    common shape; from its first answer in another framing (chunked, compressed) on,
    through aiohttp, which reads them all. That answer is asked for again through aiohttp:
    a GET may be sent twice. ``headers`` go with every request, so they are checked once,
    here: a value with a line break in it is refused.
    """

    def __init__(self, transport: AiohttpTransport, base_url: str, headers: dict[str, str]) -> None:
        url = httpx.URL(base_url)
        self._transport = transport
        self._base = base_url.rstrip("/")
        self._prefix = url.raw_path.split(b"?")[0].rstrip(b"/")
        self._headers = headers
        self._wire: WireGets | None = None
        if url.scheme in ("http", "https") and url.raw_host:
            secure = url.scheme == "https"
            self._wire = WireGets(
                url.raw_host.decode("ascii"),
                url.port or (443 if secure else 80),
                request_head(url.netloc.decode("ascii"), headers),
                ssl_context=ssl.create_default_context() if secure else None,
                max_connections=transport.max_connections,
                keepalive_secs=transport.keepalive_secs,
            )

    @property
    def on_the_wire(self) -> bool:
        """True until the backend's first answer in a framing the wire path does not read."""
        return self._wire is not None

    async def get(self, path: str, *, max_body: int) -> tuple[int, bytes]:
        """``GET path`` (percent-encoded, below the base URL): the status and the body."""
        wire = self._wire
        if wire is not None:
            try:
                return await wire.get(self._prefix + path.encode("ascii"), max_body=max_body)
            except UncommonAnswer as exc:
                log.info("the backend frames its answers otherwise (%s): aiohttp reads them", exc)
                self._wire = None
                wire.retire()  # calls in flight on it finish as they are
        return await self._transport.get_small(self._base + path, self._headers, max_body=max_body)

    async def aclose(self) -> None:
        if self._wire is not None:
            await self._wire.aclose()
