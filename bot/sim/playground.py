"""A browser playground on the Slack emulator: a channel view of what the bot posted.

Mounted on the emulator's own server (``SlackEmulator.start(extend=playground.mount)``), it
serves a vanilla-JS page (``bot/sim/playground/``: no build step, no CDN) that renders the
bot's Block Kit messages as Slack would, and turns what a person does there into what Slack
would send the bot:

- ``GET /``, ``GET /static/{name}``: the page and its files.
- ``GET /playground/state?user=U…``: channels, messages (threads, edits), the ephemerals that
  user sees, uploaded files, the users and the command hints, as JSON.
- ``GET /playground/events``: server-sent events, one ``data: <version>`` per change of the
  emulator's state (the page refetches the state).
- ``POST /playground/command`` ``{"text": "/starpod list", "user": "U…", "channel": "C…",
  "thread_ts"?}``: a signed slash command to the bot; plain text is posted as that user's
  message, in the thread of ``thread_ts`` when given. A slash command in a thread is refused
  as Slack refuses it (``/starpod is not supported in threads. Sorry!``, only to that user):
  Slack does not send slash commands from threads to apps.
- ``POST /playground/action`` ``{"message_ts", "action_id", "block_id", "value",
  "selected_option", "user"}``: a signed ``block_actions`` click on a stored message.
- App Home, modals, shortcuts and external selects: ``bot.sim.playground_views``
  (``/playground/views``, ``/playground/home/open``, ``/playground/view/…``,
  ``/playground/shortcut``), drawn by ``playground/views.js``.

Everything the bot answers arrives through the emulator's Web API as usual; these routes only
start the conversation. Errors come back as ``{"ok": false, "error": "…"}`` for the page to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.sim.playground_views import PlaygroundViews, ShortcutHint
from bot.sim.slack import SlackAckTimeout, SlackEmulator

STATIC_FILES = {
    "app.js": "text/javascript",
    "blocks.js": "text/javascript",
    "dom.js": "text/javascript",
    "emoji.js": "text/javascript",
    "emoji.json": "application/json",
    "menus.js": "text/javascript",
    "thread.js": "text/javascript",
    "mrkdwn.js": "text/javascript",
    "style.css": "text/css",
    "views.js": "text/javascript",
    "views.css": "text/css",
}
SSE_KEEPALIVE_S = 15.0
SLACKBOT = "USLACKBOT"  # Slack's own user, the author of its notices
_CLOSING: web.AppKey[asyncio.Event] = web.AppKey("playground_closing", asyncio.Event)


def static_dir() -> Path:
    """The folder of the page's files (shipped inside the package, so the wheel has them)."""
    return Path(str(resources.files("bot.sim") / "playground"))


@dataclass(frozen=True)
class PlaygroundUser:
    """Someone the page can act as; ``role`` is only a label for the user switcher."""

    id: str
    name: str
    role: str = ""


@dataclass(frozen=True)
class CommandHint:
    """A usage line the composer suggests while typing ``/``."""

    usage: str
    summary: str


DEFAULT_USERS = (
    PlaygroundUser("U0OPERATOR", "operator", "operator"),
    PlaygroundUser("U0VIEWER", "viewer", "viewer"),
    PlaygroundUser("U0ADMIN", "admin", "admin"),
)


@dataclass
class Playground:
    """The playground's settings; ``mount`` adds its routes to the emulator's app.

    ``bot_url`` is where "Slack" posts commands and clicks (the bot's ``/slack/events``).
    ``command`` is the one slash command installed; ``default_channel`` opens first.
    """

    emulator: SlackEmulator
    bot_url: str
    users: tuple[PlaygroundUser, ...] = DEFAULT_USERS
    command: str = "/starpod"
    hints: tuple[CommandHint, ...] = ()
    default_channel: str = "C0OPS"
    title: str = "Starpod demo"
    # Extra JSON for the page, per user (the demo's sidebar notes follow the user switch).
    extra_state: Callable[[str], dict[str, Any]] | None = None
    # App Home, modals and shortcuts (``playground_views``): the app's declared shortcuts.
    shortcuts: tuple[ShortcutHint, ...] = ()
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def mount(self, app: web.Application) -> None:
        """Add the page, its files and its API to ``app`` (before it starts)."""
        app[_CLOSING] = asyncio.Event()
        app.on_shutdown.append(self._on_shutdown)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/playground/state", self._state)
        app.router.add_get("/playground/events", self._events)
        app.router.add_post("/playground/command", self._command)
        app.router.add_post("/playground/action", self._action)
        views = PlaygroundViews(
            self.emulator, self.bot_url, lambda value: self._user(value).id, self.shortcuts
        )
        views.mount(app)

    # -- state -----------------------------------------------------------------------------

    def state(self, user: str | None) -> dict[str, Any]:
        """What the page shows to ``user``: the workspace as that user sees it."""
        workspace = self.emulator.workspace.snapshot()
        user_id = user or self.users[0].id
        data: dict[str, Any] = {
            "version": self.emulator.version,
            "title": self.title,
            "command": self.command,
            "user": user_id,
            "default_channel": self.default_channel,
            "users": [{"id": u.id, "name": u.name, "role": u.role} for u in self.users],
            "hints": [{"usage": h.usage, "summary": h.summary} for h in self.hints],
            "channels": workspace["channels"],
            "ephemerals": [m for m in workspace["ephemerals"] if m["ephemeral_for"] == user_id],
            "files": [f.to_dict() for f in self.emulator.files],
            "usergroups": workspace["usergroups"],
        }
        if self.extra_state is not None:
            data["extra"] = self.extra_state(user_id)
        return data

    # -- handlers --------------------------------------------------------------------------

    async def _index(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            static_dir() / "index.html", headers={"Cache-Control": "no-store", **_SECURITY}
        )

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        content_type = STATIC_FILES.get(name)
        if content_type is None:  # a fixed list: no path ever reaches the file system
            raise web.HTTPNotFound(text="no such file")
        body = (static_dir() / name).read_bytes()
        return web.Response(
            body=body,
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "no-store", **_SECURITY},
        )

    async def _state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state(request.query.get("user")))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """One SSE ``data: <version>`` per change; ends when the server shuts down."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        closing = request.app[_CLOSING]
        changes = self.emulator.events()
        # One pending read of the change stream, kept across keep-alives: cancelling it would
        # end the generator.
        pending: asyncio.Future[int] | None = None
        try:
            await response.write(f"data: {self.emulator.version}\n\n".encode())
            while not closing.is_set():
                if pending is None:
                    pending = asyncio.ensure_future(anext(changes))
                stop = asyncio.ensure_future(closing.wait())
                waiting: set[asyncio.Future[Any]] = {pending, stop}
                done, _ = await asyncio.wait(
                    waiting, timeout=SSE_KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                stop.cancel()
                if pending in done:
                    version, pending = pending.result(), None
                    await response.write(f"data: {version}\n\n".encode())
                elif not closing.is_set():
                    await response.write(b": keep-alive\n\n")
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass  # the tab went away
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
            await changes.aclose()
        return response

    async def _command(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        text = str(body.get("text", "")).strip()
        user = self._user(body.get("user"))
        channel = str(body.get("channel") or self.default_channel)
        if channel not in self.emulator.workspace.channels:
            return _error(400, f"no channel {channel}")
        if not text:
            return _error(400, "type a message or a command")
        thread_ts = _str_or_none(body.get("thread_ts"))
        workspace = self.emulator.workspace
        parent = workspace.thread_parent(channel, thread_ts) if thread_ts is not None else None
        if thread_ts is not None and parent is None:
            return _error(400, f"no thread {thread_ts} in {channel}")
        if not text.startswith("/"):
            # A plain message: shown in the channel (or thread) as the user's, as in Slack.
            workspace.post(channel, text=_escape(text), user=user.id, thread_ts=thread_ts)
            return web.json_response({"ok": True, "kind": "message"})
        command, _, rest = text.partition(" ")
        if parent is not None:
            # Slack's own answer, shown only to the user in the thread; nothing reaches the app.
            notice = workspace.post_ephemeral(
                channel,
                user.id,
                text=f"{_escape(command)} is not supported in threads. Sorry!",
                thread_ts=parent.ts,
            )
            notice.user = SLACKBOT  # set before anything can read the state (no await between)
            return web.json_response({"ok": True, "kind": "refused"})
        if command != self.command:
            return _error(400, f"{command} is not a valid command. Try {self.command} help")
        try:
            reply = await self.emulator.send_slash_command(
                self.bot_url,
                rest.strip(),
                user_id=user.id,
                user_name=user.name,
                channel_id=channel,
                command=self.command,
            )
        except SlackAckTimeout:
            return _error(504, f'{self.command} failed with the error "operation_timeout"')
        except aiohttp.ClientError as exc:
            return _error(502, f"the bot is not reachable at {self.bot_url}: {exc}")
        return self._bot_answer(reply.status_code, reply.text)

    async def _action(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        user = self._user(body.get("user"))
        message_ts = body.get("message_ts")
        action_id = body.get("action_id")
        if not isinstance(message_ts, str) or not isinstance(action_id, str):
            return _error(400, "message_ts and action_id are required")
        selected = body.get("selected_option")
        try:
            reply = await self.emulator.send_block_action(
                self.bot_url,
                action_id=action_id,
                block_id=_str_or_none(body.get("block_id")),
                value=_str_or_none(body.get("value")),
                selected_option_value=_str_or_none(selected),
                message_ts=message_ts,
                user_id=user.id,
                user_name=user.name,
            )
        except (LookupError, ValueError) as exc:
            return _error(400, str(exc))
        except SlackAckTimeout:
            return _error(504, "the bot did not acknowledge the click within 3 seconds")
        except aiohttp.ClientError as exc:
            return _error(502, f"the bot is not reachable at {self.bot_url}: {exc}")
        return self._bot_answer(reply.status_code, reply.text)

    def _bot_answer(self, status: int, text: str) -> web.StreamResponse:
        if status != 200:
            # Slack shows the user a generic failure; the page shows the bot's status too.
            return _error(502, f"the bot answered HTTP {status}: {text[:300]}")
        return web.json_response({"ok": True, "bot_status": status})

    def _user(self, value: object) -> PlaygroundUser:
        for user in self.users:
            if user.id == value:
                return user
        return self.users[0]

    async def _on_shutdown(self, app: web.Application) -> None:
        app[_CLOSING].set()  # ends open event streams, so shutdown does not wait on them


# The page loads nothing from elsewhere and runs no inline script.
_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, json.JSONDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "the body must be JSON"}),
            content_type="application/json",
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"ok": False, "error": "the body must be a JSON object"}),
            content_type="application/json",
        )
    return body


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _escape(text: str) -> str:
    """What Slack stores for typed text: ``&``, ``<`` and ``>`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
