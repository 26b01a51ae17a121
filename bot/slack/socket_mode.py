"""Socket Mode: Slack's requests over a WebSocket the bot opens, for bots without a public URL.

A thin seam over Bolt's ``AsyncSocketModeHandler`` (aiohttp); the same ``AsyncApp`` and
listeners serve both modes, and acknowledgements go back over the socket.

:class:`SocketModeLink` connects the first time itself, because the SDK's ``connect()``
never gives up: with a refused app token or an unreachable socket it retries every ping
interval forever, logging a traceback each time. The link instead:

- stops at once when ``apps.connections.open`` refuses the token for good
  (:class:`SlackAppTokenRejected`, a ConfigError naming ``SLACK_APP_TOKEN``: exit 2);
- otherwise retries with a doubling back-off (one warning line per attempt) until the
  link is up or the caller's ``stop`` event is set (SIGTERM while unreachable).

Once connected, the SDK keeps the link alive (ping/pong, reconnect on a drop, a close or a
``disconnect`` message); its connection failures are logged as one line, no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.slack.token_check import SlackAppTokenRejected

log = logging.getLogger(__name__)

AckObserver = Callable[[float], None]

#: ``apps.connections.open`` errors that no retry will fix (Slack's SDKs stop on them too).
UNRECOVERABLE_OPEN_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "user_removed_from_team",
        "team_disabled",
        "not_allowed_token_type",
    }
)
# What the SDK logs when a connection attempt fails (it then sleeps and tries again).
_SDK_FAILURES = ("Failed to connect", "Failed to retrieve WSS URL")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds between connection attempts: ``first``, doubling up to ``most``."""

    first: float = 1.0
    most: float = 30.0

    def after(self, delay: float) -> float:
        """The delay after one of ``delay``."""
        return min(delay * 2, self.most)


class _SdkLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The SDK's logger: connection failures as one warning line (no traceback), reported.

    While ``quiet()`` (the link's own first connection, which logs its own line per
    attempt) they go to debug.
    """

    def __init__(
        self,
        logger: logging.Logger,
        on_failure: Callable[[str], None],
        quiet: Callable[[], bool],
    ) -> None:
        super().__init__(logger, {})
        self._on_failure = on_failure
        self._quiet = quiet

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log as asked, except the SDK's failed attempts: one line, and reported."""
        text = str(msg)
        if text.startswith(_SDK_FAILURES):
            self._on_failure(text)
            level = logging.DEBUG if self._quiet() else logging.WARNING
            kwargs["exc_info"] = None
        super().log(level, msg, *args, **kwargs)

    @property
    def level(self) -> int:
        """The logger's own level (Bolt reads it to decide on debug lines)."""
        return int(self.logger.level)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        """No extra context."""
        return msg, kwargs


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's handler, reporting how long each envelope took until its acknowledgement.

    ``handle`` is the handler's documented override point: it runs the app (which returns
    once the listener acknowledged) and sends the acknowledgement back over the socket.
    """

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        on_ack: AckObserver | None = None,
        ping_interval: float = 10.0,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(app, app_token, logger=logger, ping_interval=ping_interval)
        self._on_ack = on_ack

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        """Answer one envelope, then report the seconds from its arrival to the answer sent."""
        started = time.perf_counter()
        await super().handle(client, req)  # type: ignore[arg-type]
        if self._on_ack is not None:
            self._on_ack(time.perf_counter() - started)


class SocketModeLink:
    """The bot's Socket Mode connection: first connect with back-off, then the SDK's care.

    ``attempt_secs`` bounds one attempt (a link that does not open in that time, e.g. a
    half-open network, counts as a failure).
    """

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        on_ack: AckObserver | None = None,
        ping_interval: float = 10.0,
        backoff: Backoff | None = None,
        attempt_secs: float = 10.0,
    ) -> None:
        self._failed = asyncio.Event()
        self._failure = ""
        self._connecting = False
        sdk_log = _SdkLog(
            logging.getLogger(f"{__name__}.sdk"), self._on_sdk_failure, lambda: self._connecting
        )
        self.handler = TimedSocketModeHandler(
            app,
            app_token,
            on_ack=on_ack,
            ping_interval=ping_interval,
            logger=sdk_log,  # type: ignore[arg-type]  # the SDK only calls Logger's methods
        )
        self._backoff = backoff or Backoff()
        self._attempt_secs = attempt_secs
        self._closed = False

    def _on_sdk_failure(self, text: str) -> None:
        # "Failed to connect (error: <why>); Retrying..." → "the socket did not answer: <why>"
        why = text.removeprefix("Failed to connect (error: ").removesuffix("); Retrying...")
        self._failure = f"the socket did not answer: {why}"
        self._failed.set()

    async def is_connected(self) -> bool:
        """True while a link is open and answering pings."""
        return bool(await self.handler.client.is_connected())

    async def connect(self, stop: asyncio.Event) -> bool:
        """Connect, retrying with back-off: True once connected, False when ``stop`` was set.

        Raises :class:`SlackAppTokenRejected` when Slack refuses the app token for good.
        """
        self._connecting = True
        try:
            return await self._connect(stop)
        finally:
            self._connecting = False

    async def _connect(self, stop: asyncio.Event) -> bool:
        delay = self._backoff.first
        while not stop.is_set():
            attempt = asyncio.ensure_future(self._attempt())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({attempt, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not attempt.done():
                attempt.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await attempt
                return False
            problem = attempt.result()  # raises SlackAppTokenRejected
            if problem is None:
                return True
            log.warning("Socket Mode is not connected (%s); next attempt in %.0f s", problem, delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = self._backoff.after(delay)
        return False

    async def _attempt(self) -> str | None:
        """One attempt: None when connected, else why not."""
        client = self.handler.client
        try:
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "unknown error")
            if error in UNRECOVERABLE_OPEN_ERRORS:
                raise SlackAppTokenRejected(
                    f"Slack refused SLACK_APP_TOKEN (apps.connections.open: {error}): "
                    "use the app-level token (xapp-…) with the connections:write scope"
                ) from None
            return f"apps.connections.open answered {error}"
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            return f"apps.connections.open failed: {exc or type(exc).__name__}"
        self._failed.clear()
        connecting = asyncio.ensure_future(client.connect())  # type: ignore[no-untyped-call]
        failing = asyncio.ensure_future(self._failed.wait())
        try:
            done, _ = await asyncio.wait(
                {connecting, failing},
                timeout=self._attempt_secs,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            failing.cancel()
            if not connecting.done():
                # The SDK would retry the same single-use URL forever: stop it here.
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connecting
        if connecting in done and not connecting.cancelled():
            connecting.result()
            if await client.is_connected():
                return None
        if failing in done:
            return self._failure
        return f"no link within {self._attempt_secs:.0f} s"

    async def close(self) -> None:
        """Disconnect and close the socket client (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self.handler.close_async()  # type: ignore[no-untyped-call]  # Bolt's is unannotated


async def start_socket_mode(
    app: AsyncApp,
    app_token: str,
    *,
    on_ack: AckObserver | None = None,
    ping_interval: float = 10.0,
) -> AsyncSocketModeHandler:
    """Connect to Slack with the app-level token (``xapp-…``); returns the handler to close.

    ``ping_interval`` (s) is how often the link is checked; a dead link is replaced within
    about that time (tests shorten it). Raises :class:`SlackAppTokenRejected` when Slack
    refuses the token; retries (every second, doubling) while the socket cannot be reached.
    """
    link = SocketModeLink(app, app_token, on_ack=on_ack, ping_interval=ping_interval)
    await link.connect(asyncio.Event())
    return link.handler


async def stop_socket_mode(handler: AsyncSocketModeHandler) -> None:
    """Disconnect and close the socket client."""
    await handler.close_async()  # type: ignore[no-untyped-call]  # Bolt's is unannotated
