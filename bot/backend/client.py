"""The async client for the Starpod instance backend.

``InstanceClient`` speaks the contract of ``shared/design/backend-api.md`` with the httpx
API. It owns its HTTP client (use it as an async context manager), takes an injected
transport, and maps every transport failure to ``bot.backend.errors``.

Speed: httpx's own connection pool rescans every connection on each request and tops out
at a few hundred requests per second under concurrency; the default transport
(:mod:`bot.backend.transport`) keeps the httpx API on aiohttp's pool, and the sweep's
health GETs go on the wire (:mod:`bot.backend.wire`; see BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from time import perf_counter
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from bot.backend.errors import (
    BackendProtocolError,
    BackendStatusError,
    BackendUnavailable,
    InstanceNotFound,
)
from bot.backend.fast_path import health_from_json, instances_from_json
from bot.backend.fleet_cache import DEFAULT_TTL_SECS, FleetCache
from bot.backend.logparse import parse_log_line
from bot.backend.logstream import ByteBudget, LogTail, iter_log_lines, mark_cut
from bot.backend.models import HealthInfo, Instance, LogEntry, SshInfo
from bot.backend.refs import pick_instance
from bot.backend.transport import (
    MAX_BODY_EXTENSION,
    STREAM_EXTENSION,
    AiohttpTransport,
    ResponseTooLarge,
)

# Called after every request: (endpoint kind, HTTP status or error class name, seconds).
RequestObserver = Callable[[str, str, float], None]

RETRYABLE_STATUS = frozenset({502, 503, 504})
MAX_RETRIES = 2
MAX_TAIL = 100_000
# The largest answer read (with the default transport): a 100,000-instance list with inline
# health is ~40 MB; anything past this is a backend gone wrong, not a fleet.
MAX_BODY_BYTES = 64 * 1024 * 1024
OFF_LOOP_BYTES = 256 * 1024
MAX_CACHED_REQUESTS = 50_000
# What quote(safe="") leaves as it is: such an id (a UUID) skips quote's Python calls.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.~-]+")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
log = logging.getLogger(__name__)

_INSTANCE_LIST = TypeAdapter(list[Instance])
M = TypeVar("M", Instance, HealthInfo, SshInfo)
R = TypeVar("R")
# The observer's outcome label per status, without formatting an int 10,000 times a sweep.
_STATUS_TEXT = {code: str(code) for code in range(100, 600)}


def default_transport(*, max_connections: int = 100) -> httpx.AsyncBaseTransport:
    """The fastest transport measured that keeps the httpx API (bench/backend_throughput.py)."""
    return AiohttpTransport(max_connections=max_connections)


def _is_retryable_transport_error(exc: httpx.TransportError) -> bool:
    # A read timeout means the backend is slow, not gone: retrying only triples the wait.
    # An oversized answer would be as large the second time.
    return not isinstance(
        exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout | ResponseTooLarge
    )


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    # httpx-aiohttp reports a refused connection as ConnectTimeout; trust the message first.
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout) or not text:
        return f"timed out ({text})" if text else "timed out"
    return text


class InstanceClient:
    """Client for the Starpod instance backend.

    ``timeout`` is each attempt's total deadline: connect, headers and the whole body
    together, so a backend that drips one byte at a time cannot hold a call longer (a
    timed-out attempt is not retried; a GET refused or answered 502-504 is, at most
    twice). Bodies are read up to ``max_body`` bytes (enforced by the default transport).

    >>> async with InstanceClient("https://api.starpod.example.com", "key") as client:
    ...     instances = await client.list_instances()
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_backoff: float = 0.2,
        observer: RequestObserver | None = None,
        max_body: int = MAX_BODY_BYTES,
        fleet_cache_secs: float = DEFAULT_TTL_SECS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = httpx.Headers(
            {"Accept": "application/json", "User-Agent": "starpod-bot"}
            | ({"Authorization": f"Bearer {api_key}"} if api_key else {})
        )
        self._base = httpx.URL(self.base_url)
        # A base URL may carry a prefix (/api/v1): paths are appended to it as they are.
        self._prefix = self._base.raw_path.split(b"?")[0].rstrip(b"/")
        self._requests: dict[tuple[str, str, str, bool], httpx.Request] = {}
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._deadline = timeout
        self._max_body = max_body
        # The transport is called directly: httpx.AsyncClient's URL merging and cookie jar
        # cost more per request than the network does (see BENCHMARKS.md).
        self._transport = transport if transport is not None else default_transport()
        # The short GET of get_health, when the transport offers one (ours does).
        url_text = self._base.copy_with(raw_path=self._prefix or b"/").__str__().rstrip("/")
        self._short = (
            self._transport.small_gets(url_text, dict(self._headers))
            if isinstance(self._transport, AiohttpTransport)
            else None
        )
        self._retry_backoff = retry_backoff
        self._observer = observer
        # One home for resolving prefixes and names: every caller of this client (gateway,
        # Slack, instance actions) shares its fleet list for a few seconds.
        self.fleet = FleetCache(self.list_instances, ttl=fleet_cache_secs)
        # How many listed instances the last list left out as unreadable (logged on change).
        self._unreadable_listed = 0

    def __repr__(self) -> str:
        return f"InstanceClient({self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    # -- the endpoints ---------------------------------------------------------------

    async def create_instance(self, name: str | None = None, region: str | None = None) -> Instance:
        """``POST /instances``: provision a new instance."""
        body = {key: value for key, value in (("name", name), ("region", region)) if value}
        response = await self._request("create", "POST", "/instances", json=body)
        self.fleet.invalidate()  # the next name lookup must see the new instance
        return self._parse(response, Instance)

    async def list_instances(self) -> list[Instance]:
        """``GET /instances``: every instance, with inline health when the backend sends it."""
        response = await self._request("list", "GET", "/instances")
        if len(response.content) < OFF_LOOP_BYTES:
            return self._instances_from(response)
        # 10,000 instances take 0.1-0.4 s to validate; in a thread the event loop (and so
        # every Slack acknowledgement) keeps its turns instead of waiting that long.
        return await asyncio.to_thread(self._instances_from, response)

    def _instances_from(self, response: httpx.Response) -> list[Instance]:
        body = response.content
        if body.lstrip()[:1] == b"[":
            # The contract's shape: one pass in pydantic-core, about twice as fast as
            # json.loads and then validating (it matters at 10,000 instances a sweep).
            try:
                return self._all_read(instances_from_json(body))
            except ValidationError as exc:
                return self._readable_items(response, self._json(response), exc)
        data = self._json(response)
        if isinstance(data, dict):
            # Some backends wrap the array; accept the usual envelope names.
            data = next((data[k] for k in ("instances", "items", "data") if k in data), data)
        try:
            return self._all_read(_INSTANCE_LIST.validate_python(data))
        except ValidationError as exc:
            return self._readable_items(response, data, exc)

    def _all_read(self, instances: list[Instance]) -> list[Instance]:
        # Every listed instance was read: the next unreadable one is news and is said again.
        self._unreadable_listed = 0
        return instances

    def _readable_items(
        self, response: httpx.Response, data: Any, exc: ValidationError
    ) -> list[Instance]:
        """The list's readable instances, when only some of them are unreadable.

        One instance the bot cannot read (no id, an id longer than the bot stores) must
        not hide the rest: the monitor would stop watching the whole fleet. They are
        left out and a warning says how many and why, when that changes. A list with
        nothing readable in it is the protocol error it always was.
        """
        if not isinstance(data, list):
            raise self._protocol_error(response, exc) from None
        readable: list[Instance] = []
        problems: list[str] = []
        for item in data:
            try:
                readable.append(Instance.model_validate(item))
            except ValidationError as item_exc:
                problems.append(_problem(item_exc))
        if not readable:
            raise self._protocol_error(response, exc) from None
        if len(problems) != self._unreadable_listed:
            log.warning(
                "the backend listed %d instances the bot cannot read, left out (first: %s)",
                len(problems),
                problems[0] if problems else "none",
            )
        self._unreadable_listed = len(problems)
        return readable

    async def get_instance(self, instance_id: str) -> Instance:
        """``GET /instances/{id}``."""
        response = await self._request("get", "GET", self._path(instance_id))
        return self._parse(response, Instance)

    async def kill_instance(self, instance_id: str) -> None:
        """``DELETE /instances/{id}``: terminate the instance."""
        await self._request("kill", "DELETE", self._path(instance_id))

    async def pause_instance(self, instance_id: str) -> Instance | None:
        """``POST /instances/{id}/pause``. Returns the updated instance when sent."""
        response = await self._request("pause", "POST", self._path(instance_id, "pause"))
        return self._parse_optional(response, Instance)

    async def restart_instance(self, instance_id: str) -> Instance | None:
        """``POST /instances/{id}/restart``. Returns the updated instance when sent."""
        response = await self._request("restart", "POST", self._path(instance_id, "restart"))
        return self._parse_optional(response, Instance)

    async def get_ssh_info(self, instance_id: str) -> SshInfo:
        """``GET /instances/{id}/ssh``: host, port, user and maybe an ephemeral private key."""
        response = await self._request("ssh", "GET", self._path(instance_id, "ssh"))
        return self._parse(response, SshInfo)

    async def get_health(self, instance_id: str, *, until: float | None = None) -> HealthInfo:
        """``GET /instances/{id}/health``.

        The sweep calls this for every instance the list leaves without health (10,000 a
        sweep), so on the default transport it takes a short path: no httpx request or
        response objects, nothing cached per instance id (bench/sweep.py). The contract
        (errors, retries, deadline, observer, body limit) is the same as every call's.

        ``until`` (the event loop's time) bounds the whole call, retries included:
        ``TimeoutError`` is raised when it passes. It shares each attempt's timer, where an
        ``asyncio.timeout`` around the call would arm a second one per call.
        """
        path = self._path(instance_id, "health")
        short = self._short
        if short is None:
            if until is None:
                response = await self._request("health", "GET", path)
            else:
                async with asyncio.timeout_at(until):
                    response = await self._request("health", "GET", path)
            try:
                return health_from_json(response.content)
            except ValidationError as exc:
                raise self._protocol_error(response, exc) from None
        limit = self._max_body

        async def once() -> tuple[int, bytes]:
            return await short.get(path, max_body=limit)

        content = await self._retrying("health", "GET", path, once, _same, until=until)
        try:
            return health_from_json(content)
        except ValidationError as exc:
            raise BackendProtocolError(method="GET", path=path, problem=_problem(exc)) from None

    async def stream_logs(self, instance_id: str, tail: int = 50) -> AsyncIterator[LogEntry]:
        """``GET /instances/{id}/logs?tail=N``: yields entries as lines arrive.

        Lines are split as bytes arrive (in linear time), so the whole body is never
        buffered, and a line longer than 16 KiB is cut (its entry says so); a line that
        is not JSON is read as plain text, and an undecodable one never stops the stream.
        The stream itself is not bounded: a backend may send forever. :meth:`tail_logs`
        is the bounded read.
        """
        if not 1 <= tail <= MAX_TAIL:
            raise ValueError(f"tail must be between 1 and {MAX_TAIL}")
        path = self._path(instance_id, "logs")
        async with self._stream("logs", path, query=f"tail={tail}") as response:
            try:
                async for line in iter_log_lines(response.aiter_bytes()):
                    if (entry := parse_log_line(line.text)) is not None:
                        yield mark_cut(entry) if line.cut else entry
            except httpx.TransportError as exc:
                raise BackendUnavailable(method="GET", path=path, reason=_describe(exc)) from None

    async def tail_logs(
        self,
        instance_id: str,
        tail: int = 50,
        *,
        max_bytes: int = 8 * 1024 * 1024,
        max_secs: float = 20.0,
    ) -> LogTail:
        """The last ``tail`` entries, bounded whatever the backend does.

        The backend is asked for ``tail`` lines; one that ignores it, or streams without
        end, is read for at most ``max_bytes`` and ``max_secs``, keeping only the last
        ``tail`` entries in memory. The result says what was cut and why.
        """
        if not 1 <= tail <= MAX_TAIL:
            raise ValueError(f"tail must be between 1 and {MAX_TAIL}")
        path = self._path(instance_id, "logs")
        kept: deque[LogEntry] = deque(maxlen=tail)
        budget = ByteBudget(max_bytes)
        received = 0
        stopped: str | None = None
        try:
            async with (
                asyncio.timeout(max_secs),
                self._stream("logs", path, query=f"tail={tail}") as response,
            ):
                try:
                    async for line in iter_log_lines(budget.take(response.aiter_bytes())):
                        if (entry := parse_log_line(line.text)) is not None:
                            kept.append(mark_cut(entry) if line.cut else entry)
                            received += 1
                except httpx.TransportError as exc:
                    reason = _describe(exc)
                    raise BackendUnavailable(method="GET", path=path, reason=reason) from None
        except TimeoutError:
            stopped = f"the backend was still sending after {max_secs:g} s"
        if budget.exhausted:
            stopped = f"the backend sent more than {max_bytes // (1024 * 1024)} MB"
        return LogTail(list(kept), received=received, stopped=stopped)

    async def resolve(self, ref: str, *, acting: bool = True) -> Instance:
        """A full id, a unique id prefix or an exact name → the instance.

        The rule is :func:`bot.backend.refs.pick_instance`'s: with ``acting`` (the
        caller will change the instance) an id prefix needs 4 characters, or
        PrefixTooShort is raised. Raises InstanceNotFound (with the nearest names) when
        nothing matches, AmbiguousInstance (listing the candidates) when several do. A
        prefix or a name is looked up in the fleet list of :attr:`fleet` (at most one list
        per ``fleet_cache_secs``, shared by concurrent calls); an instance picked from a
        cached list is fetched again, so its state is current.
        """
        ref = ref.strip()
        if not ref:
            raise InstanceNotFound(ref=ref)
        if _UUID.match(ref):
            try:
                return await self.get_instance(ref)
            except BackendStatusError as exc:
                if exc.status_code != 404:
                    raise
                raise InstanceNotFound(ref=ref) from None
        fleet, fresh = await self.fleet.get()
        picked = pick_instance(ref, fleet, acting=acting)
        if fresh:
            return picked
        # The cached list said which instance; its state now comes from the backend.
        try:
            return await self.get_instance(picked.id)
        except BackendStatusError as exc:
            if exc.status_code != 404:
                raise
            self.fleet.invalidate()
            raise InstanceNotFound(ref=ref) from None

    # -- plumbing -----------------------------------------------------------------------

    @staticmethod
    def _path(instance_id: str, action: str | None = None) -> str:
        # Ids come from users: quote them so "../" or "?" cannot change the request.
        plain = _PLAIN_ID.fullmatch(instance_id) is not None
        base = f"/instances/{instance_id if plain else quote(instance_id, safe='')}"
        return f"{base}/{action}" if action else base

    def _observe(self, endpoint: str, outcome: str, started: float) -> None:
        if self._observer is not None:
            self._observer(endpoint, outcome, perf_counter() - started)

    def _build(
        self, method: str, path: str, *, json: Any = None, query: str = "", stream: bool = False
    ) -> httpx.Request:
        """The request for ``method path?query``.

        Requests without a body are built once and reused: building an httpx.Request
        (URL, headers) cost more than a third of a health call's time at 10,000
        instances a sweep (BENCHMARKS.md). Transports only read requests, so sharing
        one between concurrent calls is safe.
        """
        key = (method, path, query, stream)
        if json is None and (cached := self._requests.get(key)) is not None:
            return cached
        raw = self._prefix + path.encode() + (b"?" + query.encode() if query else b"")
        extensions: dict[str, Any] = {"timeout": self._timeout}
        if stream:
            extensions[STREAM_EXTENSION] = True
        else:
            extensions[MAX_BODY_EXTENSION] = self._max_body
        request = httpx.Request(
            method,
            self._base.copy_with(raw_path=raw),
            headers=self._headers,
            json=json,
            extensions=extensions,
        )
        if json is None:
            if len(self._requests) >= MAX_CACHED_REQUESTS:  # bounded: ids come and go
                self._requests.clear()
            self._requests[key] = request
        return request

    async def _send_with_retries(
        self, endpoint: str, request: httpx.Request, path: str
    ) -> httpx.Response:
        """Send ``request`` with :meth:`_retrying`; a 2xx response, its body read unless it
        streams."""

        async def once() -> tuple[int, httpx.Response]:
            response = await self._send_once(request)
            return response.status_code, response

        def body(response: httpx.Response) -> bytes:
            return response.content

        return await self._retrying(endpoint, request.method, path, once, body)

    async def _retrying(
        self,
        endpoint: str,
        method: str,
        path: str,
        once: Callable[[], Awaitable[tuple[int, R]]],
        body: Callable[[R], bytes],
        *,
        until: float | None = None,
    ) -> R:
        """Run ``once`` (one attempt: status and answer); retry idempotent GETs on
        connection errors and 502/503/504.

        Each attempt has the total deadline: connect, headers and (unless streaming) the
        whole body. A POST or DELETE that may have reached the backend is never sent twice
        behind the user's back. Returns a 2xx answer; ``body`` gives a failed one's text.
        The caller's ``until`` (loop time), when given, bounds every attempt and the
        back-off between them; ``TimeoutError`` is raised when it passes.
        """
        attempts = 1 + (MAX_RETRIES if method == "GET" else 0)
        loop = asyncio.get_running_loop()
        for attempt in range(attempts):
            started = perf_counter()
            last = attempt == attempts - 1
            deadline = loop.time() + self._deadline
            theirs = until is not None and until <= deadline
            try:
                async with asyncio.timeout_at(until if theirs else deadline):
                    status, answer = await once()
            except TimeoutError:
                # Like a read timeout: the backend is slow, not gone; no retry.
                self._observe(endpoint, "DeadlineExceeded", started)
                if theirs:
                    raise
                reason = f"timed out: no complete answer within {self._deadline:g} s"
                raise BackendUnavailable(method=method, path=path, reason=reason) from None
            except ResponseTooLarge as exc:
                self._observe(endpoint, type(exc).__name__, started)
                raise BackendProtocolError(method=method, path=path, problem=str(exc)) from None
            except httpx.TransportError as exc:
                self._observe(endpoint, type(exc).__name__, started)
                if last or not _is_retryable_transport_error(exc):
                    raise BackendUnavailable(
                        method=method, path=path, reason=_describe(exc)
                    ) from None
            else:
                self._observe(endpoint, _STATUS_TEXT.get(status) or str(status), started)
                if 200 <= status < 300:
                    return answer
                text = body(answer).decode("utf-8", errors="replace")
                if last or status not in RETRYABLE_STATUS:
                    raise BackendStatusError(
                        method=method, path=path, status_code=status, body=text
                    )
            backoff = self._retry_backoff * (3**attempt)
            if until is not None and loop.time() + backoff >= until:
                await asyncio.sleep(max(0.0, until - loop.time()))
                raise TimeoutError
            await asyncio.sleep(backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send_once(self, request: httpx.Request) -> httpx.Response:
        """One attempt: the response with its body read (a stream's only when it failed)."""
        response = await self._transport.handle_async_request(request)
        if response.is_success and request.extensions.get(STREAM_EXTENSION):
            return response
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _request(
        self, endpoint: str, method: str, path: str, *, json: Any = None
    ) -> httpx.Response:
        request = self._build(method, path, json=json)
        return await self._send_with_retries(endpoint, request, path)

    @asynccontextmanager
    async def _stream(
        self, endpoint: str, path: str, *, query: str
    ) -> AsyncIterator[httpx.Response]:
        request = self._build("GET", path, query=query, stream=True)
        response = await self._send_with_retries(endpoint, request, path)
        try:
            yield response
        finally:
            await response.aclose()

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise self._protocol_error(response, exc) from None

    def _protocol_error(self, response: httpx.Response, exc: Exception) -> BackendProtocolError:
        problem = _problem(exc) if isinstance(exc, ValidationError) else str(exc)
        return BackendProtocolError(
            method=response.request.method,
            path=response.request.url.raw_path.decode().removeprefix(self._prefix.decode()),
            problem=problem or "not JSON",
        )

    def _parse(self, response: httpx.Response, model: type[M]) -> M:
        # One pass in pydantic-core: faster than json.loads and then validating.
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise self._protocol_error(response, exc) from None

    def _parse_optional(self, response: httpx.Response, model: type[M]) -> M | None:
        if not response.content.strip():
            return None
        return self._parse(response, model)


def _problem(exc: ValidationError) -> str:
    """The first thing wrong, and where: ``disk_mb: Input should be a valid integer``."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def _same(body: bytes) -> bytes:
    return body
