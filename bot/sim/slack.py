"""A Slack emulator: a real HTTP server on 127.0.0.1 that stands in for Slack.

Point the real clients at it and they cannot tell the difference where it matters::

    async with SlackEmulator() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        await client.chat_postMessage(channel="C0ALERTS", text="hi")
        assert slack.messages("C0ALERTS")[0].text == "hi"

What it serves:

- ``POST|GET /api/<method>``: the Web API methods in ``bot.sim.slack_web_api`` (JSON, form or
  query arguments; the token in ``Authorization: Bearer`` or, for form/query, a ``token`` field).
  Every request is recorded in ``calls``; rejected ones (``ok: false``) are also in
  ``violations()``, so a test can assert the bot never broke one of Slack's limits.
- ``POST /upload/v1/<token>``: the upload URL handed out by ``files.getUploadURLExternal``.
- ``POST /response/<token>``: ``response_url`` endpoints (``new_response_url``).
- ``GET /files/<id>/<name>``: the content of an uploaded file (bearer token required).

And it plays the Slack side towards the bot: ``send_slash_command``, ``send_block_action`` and
``send_view_submission`` post signed requests (aiohttp client) to the bot's request URL and
return a ``BotReply`` (``status_code``, ``text``, ``headers``, ``json()``), raising
``SlackAckTimeout`` when the bot takes longer than Slack's 3 s to acknowledge.
With ``VIA_SOCKET`` as the target they go as Socket Mode envelopes instead (see
``bot.sim.slack_socket``: ``apps.connections.open`` with ``app_token``, ``GET /link/`` the
WebSocket, ``socket_mode`` the fault controls); the ack's payload becomes the reply's body.

Deliberate differences from Slack: blocks without a ``text`` fallback are rejected with
``missing_text``, and a ``thread_ts`` naming no message is rejected with ``thread_not_found``
(house rules); messages posted to a user id stay under that user id instead of a ``D…``
channel (``conversations.open`` does give a ``D…`` id, see ``dm_channel``; messages and files
shared there are kept under that id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.sim.listening import listen
from bot.sim.slack_models import (
    ApiCall,
    BotReply,
    Message,
    ResponsePost,
    SlackAckTimeout,
    UploadedFile,
)
from bot.sim.slack_payloads import (
    action_entry,
    block_actions_payload,
    find_element,
    option_values,
    slash_command_fields,
    view_submission_payload,
)
from bot.sim.slack_responses import ResponseUrls
from bot.sim.slack_signing import compute_signature, signed_headers
from bot.sim.slack_socket import VIA_SOCKET, NoSocketConnection, SocketModeError, SocketModeServer
from bot.sim.slack_surfaces import Submission, SurfaceError, Surfaces
from bot.sim.slack_web_api import ApiError, OpenedView, WebApi, WebApiState, decode_json_body
from bot.sim.slack_workspace import Workspace, default_channel_name

__all__ = [
    "VIA_SOCKET",
    "ApiCall",
    "BotReply",
    "Delivery",
    "Message",
    "NoSocketConnection",
    "ResponsePost",
    "SlackAckTimeout",
    "SlackEmulator",
    "Submission",
    "SurfaceError",
    "UploadedFile",
]

SLACK_ACK_TIMEOUT_S = 3.0
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # uploads of long log excerpts must fit
RESPONSE_URL_FAULT_NAME = "response_url"
UPLOAD_FAULT_NAME = "file_upload"


@dataclass(frozen=True)
class Delivery:
    """A request as the emulator sent it to the bot (URL, body bytes, signed headers)."""

    target_url: str
    body: bytes
    headers: dict[str, str]


# The shapes an injected failure's body can take (see ``SlackEmulator.fail_next``).
FAULT_BODIES = frozenset({"json", "html", "text", "bad_json"})
ERROR_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>upstream error</p></body></html>"
)


@dataclass
class _Fault:
    """A pending injected failure (``fail_next``)."""

    remaining: int
    status: int
    retry_after: int
    methods: frozenset[str] | None
    drop: bool
    # "json" (Slack's error object), "html" (a proxy's error page), "text" (plain text)
    # or "bad_json" (non-JSON text labelled application/json, as some gateways send).
    body: str = "json"
    # The Slack error name of a "json" answer (default: one derived from the status).
    error: str | None = None


class SlackEmulator:
    """A Slack workspace on loopback: Web API, response URLs, uploads, signed payloads."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-emulator-token",
        app_token: str = "xapp-1-A0EMULATOR-1-emulator",
        signing_secret: str = "emulator-signing-secret",
        clock: Callable[[], float] = time.time,
        channels: Iterable[str] = ("C0ALERTS", "C0OPS", "C0GENERAL"),
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self._clock = clock
        self.url = ""
        self.api_url = ""
        self.calls: list[ApiCall] = []
        self.responses: list[ResponsePost] = []
        self.version = 0  # bumped on every recorded change; see events()
        self._changed = asyncio.Event()
        self.workspace = Workspace(clock, self._bump)
        self._state = WebApiState()
        self._api = WebApi(self.workspace, self._state, clock=clock, base_url=lambda: self.url)
        # App Home, modals, shortcuts and external selects, played towards the bot.
        self.surfaces = Surfaces(self)
        self._response_urls = ResponseUrls(self.workspace, clock)
        self.socket_mode = SocketModeServer(
            app_token=app_token, base_url=lambda: self.url, clock=clock, on_change=self._bump
        )
        self._faults: list[_Fault] = []
        self._holding = False
        self._held_methods: frozenset[str] | None = None
        self._release: asyncio.Event | None = None
        self._fault_rate = 0.0
        self._fault_rate_status = 429
        self._fault_rate_retry_after = 1
        self._fault_rng = random.Random(0)
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        # The last request sent to the bot, as it went out: ``redeliver`` sends it again.
        self.last_delivery: Delivery | None = None
        for channel in channels:
            self.add_channel(channel)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        extend: Callable[[web.Application], None] | None = None,
    ) -> str:
        """Start serving; returns the base URL (``http://127.0.0.1:PORT``).

        ``extend`` may add routes to the server's app before it starts (the demo's playground,
        see ``bot.sim.playground``); the emulator's own routes win.
        """
        if self._runner is not None:
            return self.url
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("POST", "/api/{method}", self._handle_api)
        app.router.add_route("GET", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{token}", self._handle_upload)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_get("/files/{file_id}/{name}", self._handle_file_download)
        self.socket_mode.add_routes(app)
        if extend is not None:
            extend(app)
        runner = web.AppRunner(app, access_log=None)
        bound_port = await listen(runner, host, port)
        self._runner = runner
        self.url = f"http://{host}:{bound_port}"
        self.api_url = f"{self.url}/api/"
        return self.url

    async def stop(self) -> None:
        """Stop serving and close the client used to call the bot."""
        await self.socket_mode.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- workspace setup and state ---------------------------------------------------------

    def add_channel(self, channel_id: str, name: str | None = None) -> None:
        """Make a channel exist (``name`` defaults to the id without ``C0``, lower-cased)."""
        self.workspace.channels[channel_id] = name or default_channel_name(channel_id)

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        """Make a user group (``S…``) with these members exist."""
        self.workspace.usergroups[group_id] = list(users)

    def dm_channel(self, user_id: str) -> str | None:
        """The DM id ``conversations.open`` gave for ``user_id`` (None while never opened)."""
        return next((dm for dm, user in self.workspace.dms.items() if user == user_id), None)

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel (or DM user id), oldest first."""
        return self.workspace.messages(channel)

    def thread(self, channel: str, ts: str) -> list[Message]:
        """A thread: its parent first, then the replies ([] when unknown)."""
        return self.workspace.thread(channel, ts)

    def ephemerals(self, user: str | None = None) -> list[Message]:
        """Ephemeral messages, optionally only those shown to ``user``."""
        return self.workspace.ephemerals(user)

    def find_message(self, ts: str) -> Message | None:
        """Any stored message, reply or ephemeral by its ts."""
        return self.workspace.find_any(ts)

    @property
    def files(self) -> list[UploadedFile]:
        """Files whose upload was completed, in order."""
        return self._state.files

    @property
    def opened_views(self) -> list[OpenedView]:
        """Modals opened with ``views.open``."""
        return self._state.opened_views

    @property
    def home_views(self) -> dict[str, dict[str, Any]]:
        """App Home views published per user id."""
        return self.workspace.home_views

    @property
    def web_state(self) -> WebApiState:
        """The Web API's state: files, uploads, triggers, open modals."""
        return self._state

    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id (``V…`` views, ``Ev…`` events)."""
        return self._api.new_id(prefix)

    def channel_name(self, channel_id: str) -> str:
        """A channel's name (its id-derived default when it was never named)."""
        return self._channel_name(channel_id)

    def check_view(self, view: Any, *, expected_type: str) -> list[str]:
        """What Slack would refuse in ``view`` (empty: nothing), as ``views.open`` checks it."""
        try:
            self._api.check_view(view, expected_type=expected_type)
        except ApiError as exc:
            return exc.detail or [exc.error]
        return []

    async def deliver_request(
        self,
        target_url: str,
        *,
        envelope: tuple[str, dict[str, Any], bool],
        form: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT_S,
    ) -> BotReply:
        """Send one request to the bot, signed over HTTP or as an envelope (``VIA_SOCKET``)."""
        return await self._send(
            target_url,
            form=form,
            json_body=json_body,
            envelope=envelope,
            signature=None,
            timestamp=None,
            ack_timeout=ack_timeout,
        )

    def violations(self) -> list[ApiCall]:
        """Every rejected request from the bot, in arrival order (injected faults excluded).

        Failed ``response_url`` posts are included as ``ApiCall(method="response_url")``.
        """
        found = [call for call in self.calls if not call.ok and not call.injected]
        for post in self.responses:
            if not post.ok:
                found.append(
                    ApiCall(
                        seq=post.seq,
                        method=RESPONSE_URL_FAULT_NAME,
                        args=post.body,
                        ok=False,
                        error=post.error,
                        at=post.at,
                        status=post.status,
                        detail=post.detail,
                    )
                )
        return sorted(found, key=lambda call: call.seq)

    def calls_to(self, method: str) -> list[ApiCall]:
        """The recorded calls of one Web API method."""
        return [call for call in self.calls if call.method == method]

    def snapshot(self) -> dict[str, Any]:
        """Everything as JSON-serialisable data: workspace, calls, responses, files."""
        return {
            **self.workspace.snapshot(),
            "calls": [call.to_dict() for call in self.calls],
            "responses": [post.to_dict() for post in self.responses],
            "files": [uploaded.to_dict() for uploaded in self.files],
            "version": self.version,
        }

    def reset(self) -> None:
        """Forget all traffic and messages and pending faults; channels and groups stay."""
        self.calls.clear()
        self.responses.clear()
        self._faults.clear()
        self._fault_rate = 0.0
        self._state.clear()
        self._response_urls.clear()
        self.socket_mode.forget_traffic()
        self.workspace.clear()

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        *,
        status: int = 429,
        retry_after: int = 1,
        methods: set[str] | None = None,
        drop: bool = False,
        body: str = "json",
        error: str | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail.

        429 answers carry ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``; other
        statuses answer an error body; ``drop=True`` closes the connection without an answer.
        ``body`` shapes the answer: ``"json"`` (``{"ok": false, "error": error}``, the error
        name derived from the status unless given; ``status=200, error="channel_not_found"``
        is how Slack refuses a message), ``"html"`` (an error page, ``text/html``),
        ``"text"`` (``upstream error``, ``text/plain``) or ``"bad_json"`` (that same text
        labelled ``application/json``).
        ``methods=None`` matches every Web API method; name ``"response_url"`` or
        ``"file_upload"`` in ``methods`` to fail those endpoints too.
        """
        if count <= 0:
            return
        if body not in FAULT_BODIES:
            raise ValueError(f"body must be one of {sorted(FAULT_BODIES)}, got {body!r}")
        self._faults.append(
            _Fault(
                remaining=count,
                status=status,
                retry_after=retry_after,
                methods=frozenset(methods) if methods is not None else None,
                drop=drop,
                body=body,
                error=error,
            )
        )

    def stop_failing(self) -> None:
        """End the outage: forget pending ``fail_next`` faults and the fault rate (the
        traffic and messages stay)."""
        self._faults.clear()
        self._fault_rate = 0.0

    def hold_answers(self, methods: set[str] | None = None) -> None:
        """Process matching Web API calls as usual, but keep their answers until
        :meth:`release_answers`: Slack did the work, the caller has not heard yet. That is
        the window in which a client that dies sends the message again after a restart."""
        self._held_methods = frozenset(methods) if methods is not None else None
        self._holding = True
        self._release = asyncio.Event()

    def release_answers(self) -> None:
        """Send every held answer and stop holding."""
        self._holding = False
        if self._release is not None:
            self._release.set()

    def set_fault_rate(
        self, rate: float, *, status: int = 429, retry_after: int = 1, seed: int = 0
    ) -> None:
        """Fail a random share ``rate`` (0..1) of Web API calls, reproducibly from ``seed``."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate}")
        self._fault_rate = rate
        self._fault_rate_status = status
        self._fault_rate_retry_after = retry_after
        self._fault_rng = random.Random(seed)

    def _take_fault(self, name: str, *, web_api: bool) -> _Fault | None:
        for fault in self._faults:
            matches = web_api if fault.methods is None else name in fault.methods
            if matches:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        if web_api and self._fault_rate > 0 and self._fault_rng.random() < self._fault_rate:
            return _Fault(1, self._fault_rate_status, self._fault_rate_retry_after, None, False)
        return None

    # -- waiting and change notification ---------------------------------------------------

    def _bump(self) -> None:
        self.version += 1
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 30.0,  # noqa: ASYNC109 - the agreed API takes the timeout as an argument
        *,
        what: str | None = None,
    ) -> None:
        """Wait until ``predicate()`` is true (re-checked on every change and every 10 ms).

        Raises ``TimeoutError`` naming the condition and the last calls the emulator saw.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_message(predicate, timeout, what))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.01))

    def _timeout_message(
        self, predicate: Callable[[], bool], timeout: float, what: str | None
    ) -> str:
        name = what or getattr(predicate, "__qualname__", repr(predicate))
        recent = [
            f"{call.method}: {'ok' if call.ok else call.error}" for call in self.calls[-8:]
        ] or ["(no Web API calls)"]
        posts = [f"response_url: {'ok' if p.ok else p.error}" for p in self.responses[-4:]]
        return f"condition {name!r} still false after {timeout} s; last calls: " + "; ".join(
            recent + posts
        )

    async def events(self) -> AsyncGenerator[int, None]:
        """Yield the state ``version`` after each change (for a live UI); runs until closed."""
        seen = self.version
        while True:
            if self.version == seen:
                await self._changed.wait()
            seen = self.version
            yield seen

    # -- the Slack side towards the bot ----------------------------------------------------

    def sign(self, body: bytes, timestamp: int) -> str:
        """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing secret."""
        return compute_signature(self.signing_secret, body, timestamp)

    def new_response_url(
        self,
        *,
        channel_id: str = "C0OPS",
        user_id: str = "U0OPERATOR",
        message_ts: str | None = None,
    ) -> str:
        """A fresh response_url served here (5 uses, 30 minutes, like Slack's)."""
        context = self._response_urls.issue(
            channel_id=channel_id, user_id=user_id, message_ts=message_ts
        )
        return f"{self.url}/response/{context.token}"

    def new_trigger_id(self, user_id: str | None = None) -> str:
        """A trigger_id that ``views.open`` accepts for 3 s (by the emulator's clock); with
        ``user_id``, the modal it opens is that user's (``surfaces.modal(user_id)``)."""
        trigger_id = (
            f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(8)}"
        )
        self._state.trigger_ids[trigger_id] = self._clock()
        if user_id is not None:
            self._state.trigger_users[trigger_id] = user_id
        return trigger_id

    async def send_slash_command(
        self,
        target_url: str,
        text: str,
        *,
        user_id: str = "U0OPERATOR",
        user_name: str = "operator",
        channel_id: str = "C0OPS",
        command: str = "/starpod",
        team_id: str = "T0EMULATOR",
        signature: str | None = None,
        timestamp: int | None = None,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT_S,
    ) -> BotReply:
        """Post a signed slash command to the bot, exactly as Slack does (``target_url``
        ``VIA_SOCKET``: as a ``slash_commands`` envelope on the app's Socket Mode link).

        A non-empty 200 answer is shown the way Slack shows it (an ephemeral message, or an
        in-channel one with ``response_type: in_channel``) and is checked like a
        response_url post; it is recorded in ``responses`` with ``token="ack"``.
        """
        response_url = self.new_response_url(channel_id=channel_id, user_id=user_id)
        fields = slash_command_fields(
            command=command,
            text=text,
            user_id=user_id,
            user_name=user_name,
            channel_id=channel_id,
            channel_name=self._channel_name(channel_id),
            team_id=team_id,
            response_url=response_url,
            trigger_id=self.new_trigger_id(user_id),
        )
        reply = await self._send(
            target_url,
            form=fields,
            envelope=("slash_commands", dict(fields), True),
            signature=signature,
            timestamp=timestamp,
            ack_timeout=ack_timeout,
        )
        if reply.status_code == 200 and reply.text.strip():
            self._apply_ack_body(response_url, reply)
        return reply

    async def send_block_action(
        self,
        target_url: str,
        *,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        user_id: str = "U0OPERATOR",
        user_name: str = "operator",
        channel_id: str | None = None,
        message_ts: str | None = None,
        selected_option_value: str | None = None,
        action_type: str | None = None,
        signature: str | None = None,
        timestamp: int | None = None,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT_S,
    ) -> BotReply:
        """Post a signed ``block_actions`` payload for a click on a stored message.

        With ``message_ts`` of a stored message, the element must exist in it (and be visible
        to ``user_id``), as only a rendered button can be clicked; ``block_id``, ``value`` and
        ``action_type`` then default to the element's. Raises ``LookupError``/``ValueError``
        for a click Slack could never send.
        """
        message = self._clicked_message(message_ts, user_id)
        element: dict[str, Any] | None = None
        if message is not None:
            found = find_element(message, action_id, block_id)
            if found is None:
                raise LookupError(
                    f"message {message_ts} has no element with action_id {action_id!r}"
                    + (f" in block {block_id!r}" if block_id else "")
                )
            block_id, element = found
            if selected_option_value is not None and selected_option_value not in option_values(
                element
            ):
                raise ValueError(
                    f"{action_id!r} offers no option {selected_option_value!r}; "
                    f"it has {option_values(element)}"
                )
            if value is None and selected_option_value is None:
                value = element.get("value")
        channel = channel_id or (message.channel if message else "C0OPS")
        action = action_entry(
            action_id=action_id,
            block_id=block_id or "b",
            action_type=action_type or (element or {}).get("type", "button"),
            action_ts=self.workspace.next_ts(),
            value=value,
            selected_option_value=selected_option_value,
            element=element,
        )
        payload = block_actions_payload(
            user_id=user_id,
            user_name=user_name,
            channel_id=channel,
            channel_name=self._channel_name(channel),
            message=message,
            message_ts=message_ts,
            is_ephemeral=message is not None and message.ephemeral_for is not None,
            response_url=self.new_response_url(
                channel_id=channel, user_id=user_id, message_ts=message_ts
            ),
            trigger_id=self.new_trigger_id(user_id),
            action=action,
        )
        return await self._send(
            target_url,
            form={"payload": json.dumps(payload)},
            envelope=("interactive", payload, False),
            signature=signature,
            timestamp=timestamp,
            ack_timeout=ack_timeout,
        )

    async def send_view_submission(
        self,
        target_url: str,
        *,
        callback_id: str,
        values: dict[str, dict[str, Any]] | None = None,
        private_metadata: str = "",
        user_id: str = "U0OPERATOR",
        user_name: str = "operator",
        view_id: str | None = None,
        title: str = "Starpod",
        signature: str | None = None,
        timestamp: int | None = None,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT_S,
    ) -> BotReply:
        """Post a signed ``view_submission`` (``values`` is ``view.state.values``)."""
        payload = view_submission_payload(
            user_id=user_id,
            user_name=user_name,
            view_id=view_id or self._api.new_id("V"),
            callback_id=callback_id,
            values=values or {},
            private_metadata=private_metadata,
            trigger_id=self.new_trigger_id(user_id),
            title=title,
        )
        return await self._send(
            target_url,
            form={"payload": json.dumps(payload)},
            envelope=("interactive", payload, True),
            signature=signature,
            timestamp=timestamp,
            ack_timeout=ack_timeout,
        )

    def _clicked_message(self, message_ts: str | None, user_id: str) -> Message | None:
        if message_ts is None:
            return None
        if any(m.ts == message_ts for m in self.workspace.deleted):
            raise LookupError(f"message {message_ts} was deleted; nobody can click it any more")
        message = self.workspace.find_any(message_ts)
        if message is not None and message.ephemeral_for not in (None, user_id):
            raise LookupError(
                f"message {message_ts} is ephemeral for {message.ephemeral_for}; "
                f"{user_id} cannot see it"
            )
        return message

    def _channel_name(self, channel_id: str) -> str:
        return self.workspace.channels.get(channel_id, default_channel_name(channel_id))

    async def _send(
        self,
        target_url: str,
        *,
        form: dict[str, str] | None,
        envelope: tuple[str, dict[str, Any], bool],
        signature: str | None,
        timestamp: int | None,
        ack_timeout: float | None,
        json_body: dict[str, Any] | None = None,
    ) -> BotReply:
        """Deliver a request over HTTP (signed form POST, or JSON for the Events API) or,
        for ``VIA_SOCKET``, as a Socket Mode envelope ``(type, payload,
        accepts_response_payload)``."""
        if target_url != VIA_SOCKET:
            if json_body is not None:
                body = json.dumps(json_body).encode()
                content_type = "application/json"
            else:
                body = urlencode(form or {}).encode()
                content_type = "application/x-www-form-urlencoded"
            return await self._deliver(
                target_url,
                body,
                signature=signature,
                timestamp=timestamp,
                ack_timeout=ack_timeout,
                content_type=content_type,
            )
        envelope_type, payload, accepts_response_payload = envelope
        sent = await self.socket_mode.send_envelope(
            envelope_type,
            payload,
            accepts_response_payload=accepts_response_payload,
            ack_timeout=ack_timeout,
        )
        # The ack's payload is what an HTTP ack's body would have been; none is an empty 200.
        ack_payload = (sent.ack or {}).get("payload")
        text = json.dumps(ack_payload) if ack_payload else ""
        return BotReply(
            status_code=200,
            text=text,
            headers={"X-Socket-Mode-Envelope-Id": sent.envelope_id},
            body=text.encode(),
        )

    async def wait_for_socket(self, count: int = 1, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until the app has at least ``count`` Socket Mode links open (hello sent)."""
        await self.wait_for(
            lambda: len(self.socket_mode.open_connections) >= count,
            timeout,
            what=f"{count} Socket Mode connection(s) open",
        )

    async def _deliver(
        self,
        target_url: str,
        body: bytes,
        *,
        signature: str | None,
        timestamp: int | None,
        ack_timeout: float | None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> BotReply:
        ts = int(self._clock()) if timestamp is None else timestamp
        headers = signed_headers(
            self.signing_secret, body, ts, signature=signature, content_type=content_type
        )
        self.last_delivery = Delivery(target_url, body, headers)
        return await self._post(target_url, body, headers, ack_timeout)

    async def redeliver(
        self,
        delivery: Delivery,
        *,
        target_url: str | None = None,
        retry_num: int | None = None,
        ack_timeout: float | None = SLACK_ACK_TIMEOUT_S,
    ) -> BotReply:
        """Send ``delivery`` again, to ``target_url`` (another replica) or where it went.

        Without ``retry_num``, byte for byte (a captured request replayed: same signature
        and timestamp). With it, as Slack retries a request it thinks went unanswered: the
        same body, signed now, with ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``.
        """
        headers = dict(delivery.headers)
        if retry_num is not None:
            headers = signed_headers(self.signing_secret, delivery.body, int(self._clock()))
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        url = target_url or delivery.target_url
        return await self._post(url, delivery.body, headers, ack_timeout)

    async def _post(
        self, target_url: str, body: bytes, headers: dict[str, str], ack_timeout: float | None
    ) -> BotReply:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=ack_timeout)
        try:
            async with self._session.post(
                target_url, data=body, headers=headers, timeout=timeout
            ) as response:
                raw = await response.read()
                return BotReply(
                    status_code=response.status,
                    text=raw.decode("utf-8", errors="replace"),
                    headers=dict(response.headers),
                    body=raw,
                )
        except TimeoutError as exc:
            raise SlackAckTimeout(
                f"{target_url} did not answer within {ack_timeout} s; Slack would show the "
                "user an operation_timeout error"
            ) from exc

    def _apply_ack_body(self, response_url: str, reply: BotReply) -> None:
        token = response_url.rsplit("/", 1)[-1]
        context = self._response_urls.get(token)
        if context is None:  # reset() ran while the command was in flight
            return
        try:
            body = json.loads(reply.text)
        except ValueError:
            body = {"text": reply.text}  # a plain-text ack is shown as that text
        if not isinstance(body, dict):
            body = {"text": reply.text}
        outcome = self._response_urls.apply(context, body)
        self._record_response(
            "ack", body, outcome.status, outcome.error, outcome.detail, outcome.message
        )

    # -- HTTP handlers ---------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args: dict[str, Any] = {}
        detail: list[str] = []
        try:
            # Read the body before a fault answers, so injected failures keep their args.
            args, token = await _read_args(request)
            fault = self._take_fault(method, web_api=True)
            if fault is not None:
                return self._fail(request, method, args, fault)
            answer = await self._answer_api(method, args, token)
        except ApiError as exc:
            answer = {"ok": False, "error": exc.error}
            detail = exc.detail
            if detail:
                answer["errors"] = list(detail)
                answer["response_metadata"] = {"messages": [f"[ERROR] {d}" for d in detail]}
        self._record_call(method, args, answer, detail=detail)
        if self._holding and (self._held_methods is None or method in self._held_methods):
            assert self._release is not None
            await self._release.wait()
        return web.json_response(answer)

    async def _answer_api(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        """Authenticate, then run the method; errors leave as ``ApiError``."""
        if method == "apps.connections.open":  # the one method that takes the app token
            try:
                return self.socket_mode.open_url(token)
            except SocketModeError as exc:
                raise ApiError(exc.error) from exc
        if token is None:
            raise ApiError("not_authed")
        if token != self.bot_token:
            raise ApiError("invalid_auth")
        handler = self._api.handler(method)
        if handler is None:
            raise ApiError("unknown_method")
        return await handler(args)

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault(UPLOAD_FAULT_NAME, web_api=False)
        if fault is not None:
            return self._fail(request, UPLOAD_FAULT_NAME, {}, fault)
        upload = self._state.uploads_by_token.get(request.match_info["token"])
        if upload is None:
            return web.Response(status=404, text="invalid upload url", content_type="text/plain")
        if request.content_type.startswith("multipart/"):
            content = b""
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, aiohttp.BodyPartReader):
                    content = bytes(await part.read())
                    break
        else:
            content = await request.read()
        upload.content = content
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        if _bearer(request) != self.bot_token:
            return web.Response(status=403, text="forbidden", content_type="text/plain")
        file_id = request.match_info["file_id"]
        for uploaded in self.files:
            if uploaded.file_id == file_id:
                return web.Response(body=uploaded.content, content_type="application/octet-stream")
        return web.Response(status=404, text="file_not_found", content_type="text/plain")

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = None
        fault = self._take_fault(RESPONSE_URL_FAULT_NAME, web_api=False)
        if fault is not None:
            return self._fail(request, RESPONSE_URL_FAULT_NAME, body or {}, fault)
        if not isinstance(body, dict):
            self._record_response(token, {}, 400, "invalid_payload", ["body is not a JSON object"])
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        outcome = self._response_urls.post(token, body)
        self._record_response(
            token, body, outcome.status, outcome.error, outcome.detail, outcome.message
        )
        if outcome.ok:
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "error": outcome.error}, status=outcome.status)

    def _fail(
        self, request: web.Request, name: str, args: dict[str, Any], fault: _Fault
    ) -> web.StreamResponse:
        if fault.drop:
            self._record_call(
                name, args, {"ok": False, "error": "connection_dropped"}, status=0, injected=True
            )
            if request.transport is not None:
                request.transport.abort()
            # Ends the handler without writing anything; aiohttp treats it as a lost client.
            raise asyncio.CancelledError
        headers: dict[str, str] = {}
        if fault.status == 429:
            answer = {"ok": False, "error": fault.error or "ratelimited"}
            headers["Retry-After"] = str(fault.retry_after)
        else:
            answer = {"ok": False, "error": fault.error or _status_error(fault.status)}
        if fault.body != "json":
            answer = {"ok": False, "error": f"non-JSON body ({fault.body})"}
        self._record_call(name, args, answer, status=fault.status, injected=True)
        if fault.body == "html":
            return web.Response(
                status=fault.status, text=ERROR_PAGE, content_type="text/html", headers=headers
            )
        if fault.body in ("text", "bad_json"):
            kind = "text/plain" if fault.body == "text" else "application/json"
            return web.Response(
                status=fault.status, text="upstream error", content_type=kind, headers=headers
            )
        return web.json_response(answer, status=fault.status, headers=headers)

    # -- recording -------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _record_call(
        self,
        method: str,
        args: dict[str, Any],
        answer: dict[str, Any],
        *,
        detail: list[str] | None = None,
        status: int = 200,
        injected: bool = False,
    ) -> None:
        self.calls.append(
            ApiCall(
                seq=self._next_seq(),
                method=method,
                args=args,
                ok=bool(answer.get("ok")),
                error=answer.get("error"),
                at=self._clock(),
                status=status,
                injected=injected,
                detail=list(detail or []),
                response=answer,
            )
        )
        self._bump()

    def _record_response(
        self,
        token: str,
        body: dict[str, Any],
        status: int,
        error: str | None,
        detail: list[str],
        message: Message | None = None,
    ) -> None:
        self.responses.append(
            ResponsePost(
                seq=self._next_seq(),
                token=token,
                body=body,
                ok=error is None,
                error=error,
                at=self._clock(),
                status=status,
                detail=list(detail),
                message=message,
            )
        )
        self._bump()


async def _read_args(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Merge query, form and JSON arguments; find the token as Slack does.

    The token counts from ``Authorization: Bearer`` or from a form/query ``token`` field;
    Slack ignores a token inside a JSON body, and so does this.
    """
    args: dict[str, Any] = dict(request.query)
    token = args.pop("token", None)
    content_type = request.content_type
    if request.method == "POST" and content_type == "application/json":
        body = decode_json_body(await request.read())
        body.pop("token", None)
        args.update(body)
    elif request.method == "POST" and content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        for key, value in form.items():
            args[key] = value.file.read() if isinstance(value, web.FileField) else value
        token = args.pop("token", None) or token
    bearer = _bearer(request)
    return args, bearer if bearer is not None else token


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _status_error(status: int) -> str:
    return {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable"}.get(
        status, f"http_{status}"
    )
