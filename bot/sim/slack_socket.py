"""Slack's side of Socket Mode: ``apps.connections.open``, WebSocket links, envelopes, acks.

As Slack documents it: the app posts ``apps.connections.open`` with its app-level token
(``xapp-…``) and gets a single-use ``wss`` URL (here ``ws://127.0.0.1:PORT/link/?ticket=…``).
On connect the server speaks first with ``hello``; requests then arrive as envelopes
(``slash_commands`` or ``interactive``, ``payload`` being what HTTP mode would POST) and the
app acknowledges each by sending ``{"envelope_id": …}`` back, optionally with ``payload``
(the body an HTTP ack would carry). ``disconnect`` messages ask the app to reconnect.

Fault controls: ``refuse_open`` (``apps.connections.open`` answers an error),
``point_links_at`` (links to an address where no socket answers), ``drop``
(the TCP connection is aborted, no close frame), ``close`` (a clean WebSocket close),
``freeze``/``thaw`` (half-open: nothing is read or sent, pings go unanswered).

Deliberate differences from Slack: an envelope that is not acknowledged is not retried on
its own (a test retries it with ``redeliver``, which raises ``retry_attempt``); envelopes
go round-robin to links that are not frozen (to a frozen one only when no other is open,
and are then lost, as on a half-open link).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from bot.sim.slack_models import APP_ID, SlackAckTimeout

# Pass as ``target_url`` to ``SlackEmulator.send_*`` to deliver over Socket Mode.
VIA_SOCKET = "socket-mode:"
MAX_CONNECTIONS_PER_APP = 10
DISCONNECT_REASONS = frozenset(
    {"refresh_requested", "warning", "link_disabled", "too_many_websockets"}
)
# Errors Slack answers for a token it will never accept (Slack's SDKs stop retrying on them).
UNRECOVERABLE_OPEN_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "user_removed_from_team", "team_disabled"}
)


class SocketModeError(Exception):
    """``apps.connections.open`` refused: ``error`` is the Web API error name."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class NoSocketConnection(ConnectionError):
    """An envelope was to be sent, but the app has no Socket Mode connection open."""


@dataclass
class SocketConnection:
    """One WebSocket link of the app, from the server's side."""

    connection_id: int
    ws: web.WebSocketResponse
    request: web.Request
    opened_at: float
    envelopes_sent: int = 0
    frozen: bool = False
    closed: bool = False
    close_reason: str = ""  # "client", "close", "drop", "disconnect:<reason>", "server stop"
    thawed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Envelope:
    """An envelope sent to the app and what became of it."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    connection_id: int
    sent_at: float
    acked_at: float | None = None
    ack: dict[str, Any] | None = None  # the whole ack message the app sent
    retry_attempt: int = 0
    retry_reason: str = ""


@dataclass
class _OpenRefusal:
    error: str
    remaining: int | None  # None: until accept_open()


class SocketModeServer:
    """The Socket Mode endpoint of one app; ``SlackEmulator.socket_mode`` holds one."""

    def __init__(
        self,
        *,
        app_token: str,
        base_url: Callable[[], str],
        clock: Callable[[], float],
        on_change: Callable[[], None],
        max_connections: int = MAX_CONNECTIONS_PER_APP,
    ) -> None:
        self.app_token = app_token
        self.max_connections = max_connections
        self.connections: list[SocketConnection] = []  # every link ever opened, in order
        self.envelopes: list[Envelope] = []
        self.stray_messages: list[Any] = []  # frames that ack no known envelope
        self.opens = 0  # successful apps.connections.open answers
        self._base_url = base_url
        self._clock = clock
        self._on_change = on_change
        self._tickets: set[str] = set()
        self._refusals: list[_OpenRefusal] = []
        self._link_base: str | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._round_robin = itertools.count()

    def add_routes(self, app: web.Application) -> None:
        """Serve the WebSocket links under ``/link/``."""
        app.router.add_get("/link/", self._handle_link)

    # -- apps.connections.open -------------------------------------------------------------

    def open_url(self, token: str | None) -> dict[str, Any]:
        """Answer ``apps.connections.open``: a fresh single-use link, or ``SocketModeError``."""
        if token is None:
            raise SocketModeError("not_authed")
        if token.startswith(("xoxb-", "xoxp-")):
            raise SocketModeError("not_allowed_token_type")
        if token != self.app_token:
            raise SocketModeError("invalid_auth")
        for refusal in self._refusals:
            if refusal.remaining is not None:
                refusal.remaining -= 1
                if refusal.remaining <= 0:
                    self._refusals.remove(refusal)
            raise SocketModeError(refusal.error)
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        self.opens += 1
        ws_base = self._link_base or self._base_url().replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_base}/link/?ticket={ticket}&app_id={APP_ID}"}

    def refuse_open(self, error: str = "invalid_auth", *, count: int | None = None) -> None:
        """Make ``apps.connections.open`` answer ``error`` (``count`` times; None: until
        :meth:`accept_open`)."""
        self._refusals.append(_OpenRefusal(error, count))

    def point_links_at(self, ws_base: str | None) -> None:
        """Hand out links under ``ws_base`` (e.g. ``ws://127.0.0.1:<closed port>``: the
        socket cannot be reached); None: this server's own links again."""
        self._link_base = ws_base

    def accept_open(self) -> None:
        """Stop refusing ``apps.connections.open``."""
        self._refusals.clear()

    # -- state -----------------------------------------------------------------------------

    @property
    def open_connections(self) -> list[SocketConnection]:
        """The links that are open now, oldest first."""
        return [c for c in self.connections if not c.closed]

    def acked(self) -> list[Envelope]:
        """Envelopes the app acknowledged."""
        return [e for e in self.envelopes if e.acked_at is not None]

    def forget_traffic(self) -> None:
        """Forget recorded envelopes and stray frames (links stay open)."""
        self.envelopes.clear()
        self.stray_messages.clear()

    # -- envelopes -------------------------------------------------------------------------

    async def send_envelope(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        ack_timeout: float | None,
        connection: SocketConnection | None = None,
    ) -> Envelope:
        """Send one envelope and wait for its ack; raises ``SlackAckTimeout`` after
        ``ack_timeout`` s, ``NoSocketConnection`` when no link is open."""
        target = connection or self._pick_connection()
        envelope = Envelope(
            envelope_id=secrets.token_hex(16),
            type=envelope_type,
            payload=payload,
            accepts_response_payload=accepts_response_payload,
            connection_id=target.connection_id,
            sent_at=self._clock(),
        )
        return await self._deliver(envelope, target, ack_timeout)

    async def redeliver(
        self,
        envelope: Envelope,
        *,
        ack_timeout: float | None,
        retry_reason: str = "timeout",
        connection: SocketConnection | None = None,
    ) -> Envelope:
        """Send ``envelope`` again, as Slack retries one it saw no ack for: same
        ``envelope_id`` and payload, ``retry_attempt`` one higher (possibly to another link).
        Returns the new record; an ack by that ``envelope_id`` answers it."""
        target = connection or self._pick_connection()
        retry = Envelope(
            envelope_id=envelope.envelope_id,
            type=envelope.type,
            payload=envelope.payload,
            accepts_response_payload=envelope.accepts_response_payload,
            connection_id=target.connection_id,
            sent_at=self._clock(),
            retry_attempt=envelope.retry_attempt + 1,
            retry_reason=retry_reason,
        )
        return await self._deliver(retry, target, ack_timeout)

    async def _deliver(
        self, envelope: Envelope, target: SocketConnection, ack_timeout: float | None
    ) -> Envelope:
        message = {
            "envelope_id": envelope.envelope_id,
            "type": envelope.type,
            "payload": envelope.payload,
            "accepts_response_payload": envelope.accepts_response_payload,
            "retry_attempt": envelope.retry_attempt,
            "retry_reason": envelope.retry_reason,
        }
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope.envelope_id] = waiter
        self.envelopes.append(envelope)
        try:
            if not target.frozen:  # a frozen link loses what is sent, as a half-open one does
                await target.ws.send_str(json.dumps(message))
            target.envelopes_sent += 1
            self._on_change()
            ack = await asyncio.wait_for(waiter, timeout=ack_timeout)
        except TimeoutError as exc:
            raise SlackAckTimeout(
                f"envelope {envelope.envelope_id} ({envelope.type}) was not acknowledged "
                f"within {ack_timeout} s; Slack would show the user an operation_timeout error"
            ) from exc
        finally:
            if self._pending.get(envelope.envelope_id) is waiter:
                del self._pending[envelope.envelope_id]
        envelope.ack = ack
        envelope.acked_at = self._clock()
        self._on_change()
        return envelope

    def _pick_connection(self) -> SocketConnection:
        live = [c for c in self.open_connections if not c.frozen]
        candidates = live or self.open_connections
        if not candidates:
            raise NoSocketConnection("the app has no Socket Mode connection open")
        return candidates[next(self._round_robin) % len(candidates)]

    # -- disconnects and faults ------------------------------------------------------------

    async def send_disconnect(
        self, reason: str, *, connection: SocketConnection | None = None, close: bool = False
    ) -> None:
        """Send ``{"type": "disconnect", "reason": reason}`` on one link (default: every open
        one); with ``close=True`` the server then closes it, as Slack does after a warning."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"unknown disconnect reason {reason!r}")
        for target in [connection] if connection else self.open_connections:
            await self._send_disconnect(target, reason)
            if close:
                await self._close(target, f"disconnect:{reason}")

    async def close(self, connection: SocketConnection | None = None, code: int = 1000) -> None:
        """Close a link (default: every open one) cleanly with a close frame."""
        for target in [connection] if connection else self.open_connections:
            await self._close(target, "close", code=code)

    def drop(self, connection: SocketConnection | None = None) -> None:
        """Abort a link's TCP connection without a close frame (default: every open one)."""
        for target in [connection] if connection else self.open_connections:
            if target.request.transport is not None:
                target.request.transport.abort()
            self._mark_closed(target, "drop")

    def freeze(self, connection: SocketConnection | None = None) -> None:
        """Stop reading and sending on a link (default: every open one): half-open."""
        for target in [connection] if connection else self.open_connections:
            target.frozen = True
            target.thawed.clear()
            if target.request.transport is not None:
                target.request.transport.pause_reading()
        self._on_change()

    def thaw(self, connection: SocketConnection | None = None) -> None:
        """Undo :meth:`freeze` (default: every frozen link)."""
        for target in [connection] if connection else self.connections:
            if target.frozen:
                target.frozen = False
                target.thawed.set()
                if target.request.transport is not None and not target.closed:
                    target.request.transport.resume_reading()
        self._on_change()

    async def stop(self) -> None:
        """Close every link (the server is going away)."""
        for target in self.open_connections:
            self.thaw(target)
            await self._close(target, "server stop", code=1001)
        for waiter in self._pending.values():
            waiter.cancel()

    # -- the WebSocket handler -------------------------------------------------------------

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(
                status=401, text="invalid or used ticket", content_type="text/plain"
            )
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = SocketConnection(next(self._ids), ws, request, self._clock())
        connection.thawed.set()
        self.connections.append(connection)
        if len(self.open_connections) > self.max_connections:
            # Slack refuses the link over the limit with a disconnect message.
            await self._send_disconnect(connection, "too_many_websockets")
            await self._close(connection, "disconnect:too_many_websockets")
            return ws
        await ws.send_str(json.dumps(self._hello()))
        self._on_change()
        try:
            await self._read(connection)
        finally:
            self._mark_closed(connection, connection.close_reason or "client")
        return ws

    async def _read(self, connection: SocketConnection) -> None:
        while not connection.closed:
            await connection.thawed.wait()
            message = await connection.ws.receive()
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if message.type is WSMsgType.ERROR:
                return
            if message.type is WSMsgType.TEXT:
                self._on_text(message.data)

    def _on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self.stray_messages.append(data)
            self._on_change()
            return
        envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
        waiter = self._pending.get(envelope_id) if isinstance(envelope_id, str) else None
        if waiter is None or waiter.done():
            self.stray_messages.append(message)  # a late, repeated or unknown ack
        else:
            waiter.set_result(message)
        self._on_change()

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self.open_connections),
            "debug_info": {
                "host": "applink-emulator",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        }

    async def _send_disconnect(self, connection: SocketConnection, reason: str) -> None:
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "emulator"}}
        with contextlib.suppress(ConnectionError, RuntimeError):
            await connection.ws.send_str(json.dumps(message))

    async def _close(self, connection: SocketConnection, reason: str, *, code: int = 1000) -> None:
        connection.close_reason = reason
        if connection.frozen:
            self.thaw(connection)
        with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
            # A close frame; don't wait long for the app's answer to it.
            await asyncio.wait_for(connection.ws.close(code=code), timeout=1.0)
        self._mark_closed(connection, reason)

    def _mark_closed(self, connection: SocketConnection, reason: str) -> None:
        if connection.closed:
            return
        connection.closed = True
        connection.close_reason = connection.close_reason or reason
        connection.thawed.set()  # let the reader loop end
        self._on_change()
