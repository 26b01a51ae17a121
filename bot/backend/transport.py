"""An httpx transport on aiohttp's connection pool, lean enough for 10,000-instance sweeps.

Measured here (BENCHMARKS.md): httpx's own pool managed ~500 req/s at 50 concurrent
requests, httpx-aiohttp's transport ~2,500-4,000, and this one ~6,000, beside ~12,000 for
a raw aiohttp client. The differences: the body is read in one call unless the request
asks to stream (``extensions={"stream": True}``), the URL is handed to aiohttp already
encoded so it is not parsed twice, and aiohttp's errors map to the httpx error that
actually happened (httpx-aiohttp reports a refused connection as a ConnectTimeout).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import aiohttp
import httpx
import yarl

from bot.errors import StarpodBotError

STREAM_EXTENSION = "stream"
# The most bytes of a (non-streamed) body the transport reads before giving up on it.
MAX_BODY_EXTENSION = "max_body"


class ResponseTooLarge(httpx.ReadError, StarpodBotError):
    """The backend sent (or announced) a body over the request's ``max_body`` bytes.

    An ``httpx.ReadError`` so it travels through httpx as the transport failure it is, and a
    ``StarpodBotError`` so it sits in the one tree; the client turns it into a
    ``BackendProtocolError`` before anyone else sees it.
    """


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


@functools.lru_cache(maxsize=8)
def _connect_timeout(secs: float) -> aiohttp.ClientTimeout:
    # One shared object per deadline rather than one per request.
    return aiohttp.ClientTimeout(connect=secs, sock_connect=secs)


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
    if plain and length is not None and length <= limit:
        return await response.read()  # the common case: one call, no copies
    if plain and length is not None:
        raise ResponseTooLarge(f"the answer announces {length} bytes, over {limit}")
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"the answer passed {limit} bytes")
    return bytes(body)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx transport over one aiohttp ``ClientSession`` (created on first use, in the loop)."""

    def __init__(self, *, max_connections: int = 100, keepalive_secs: float = 30.0) -> None:
        self._max_connections = max_connections
        self._keepalive_secs = keepalive_secs
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=self._keepalive_secs
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

    async def get_small(
        self, url: str, headers: dict[str, str], *, connect_secs: float, max_body: int
    ) -> tuple[int, bytes]:
        """``GET url``: the status and the whole body (at most ``max_body`` bytes).

        The short path of :meth:`InstanceClient.get_health` (10,000 a sweep): no
        ``httpx.Request`` or ``httpx.Response`` is built, the body is read in one call, and
        no read timer is armed per chunk (the caller's total deadline bounds the call).
        ``url`` must already be percent-encoded. Errors are the httpx ones, as for
        :meth:`handle_async_request`.
        """
        try:
            response = await self._get_session().request(
                "GET",
                yarl.URL(url, encoded=True),
                headers=headers,
                allow_redirects=False,
                timeout=_connect_timeout(connect_secs),
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
        if self._session is not None:
            await self._session.close()
            self._session = None
