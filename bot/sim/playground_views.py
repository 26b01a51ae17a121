"""The playground's App Home, modals and shortcuts: routes over ``SlackEmulator.surfaces``.

Mounted by :meth:`bot.sim.playground.Playground.mount`; the page's side is
``playground/views.js``. Every route plays what a person does in Slack; what the bot
answers comes back through the emulator's Web API (``views.publish``, ``views.open``,
``views.update``) or in the ack (options, ``response_action``), checked as Slack checks it:

- ``GET /playground/views?user=U…``: the user's Home view, top modal (view, values,
  errors) and the shortcuts the app declares.
- ``POST /playground/home/open`` ``{"user"}``: ``app_home_opened``.
- ``POST /playground/view/action`` ``{"user", "surface": "home"|"modal", "action_id",
  "block_id", "selected_option"}``: a click on the Home or in the modal.
- ``POST /playground/view/suggest`` ``{"user", "block_id", "typed"}``: an external
  select's options for what was typed.
- ``POST /playground/view/submit`` ``{"user", "values": {block_id: value}}``: fill the
  inputs (text, an option value, ``[value, text]`` for an external select, a list for
  checkboxes), then submit; answers the outcome and the errors Slack would show.
- ``POST /playground/view/close`` ``{"user"}``: Cancel.
- ``POST /playground/shortcut`` ``{"user", "callback_id", "message_ts"?}``: a global
  shortcut, or a message shortcut on the stored message ``message_ts``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bot.sim.slack import SlackAckTimeout, SlackEmulator, SurfaceError


@dataclass(frozen=True)
class ShortcutHint:
    """A shortcut the app declares (its manifest's ``features.shortcuts``)."""

    name: str
    type: str  # "global" or "message"
    callback_id: str


class PlaygroundViews:
    """The routes; ``user_of`` maps the page's user id to one the playground knows."""

    def __init__(
        self,
        emulator: SlackEmulator,
        bot_url: str,
        user_of: Callable[[object], str],
        shortcuts: tuple[ShortcutHint, ...],
    ) -> None:
        self._emu = emulator
        self._bot_url = bot_url
        self._user_of = user_of
        self._shortcuts = shortcuts

    def mount(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        app.router.add_get("/playground/views", self._views)
        app.router.add_post("/playground/home/open", self._open_home)
        app.router.add_post("/playground/view/action", self._action)
        app.router.add_post("/playground/view/suggest", self._suggest)
        app.router.add_post("/playground/view/submit", self._submit)
        app.router.add_post("/playground/view/close", self._close)
        app.router.add_post("/playground/shortcut", self._shortcut)

    def state(self, user_id: str) -> dict[str, Any]:
        """The Home, the top modal and the shortcuts, for ``user_id``."""
        modal = self._emu.surfaces.modal(user_id)
        return {
            "version": self._emu.version,
            "user": user_id,
            "home": self._emu.surfaces.home(user_id),
            "modal": modal.to_dict() if modal is not None else None,
            "shortcuts": [
                {"name": s.name, "type": s.type, "callback_id": s.callback_id}
                for s in self._shortcuts
            ],
        }

    async def _views(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state(self._user_of(request.query.get("user"))))

    async def _open_home(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        user = self._user_of(body.get("user"))
        return await self._call(lambda: self._emu.surfaces.open_home(self._bot_url, user))

    async def _action(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        user = self._user_of(body.get("user"))
        action_id = body.get("action_id")
        if not isinstance(action_id, str):
            return _error(400, "action_id is required")
        block_id = _text(body.get("block_id"))
        selected = _text(body.get("selected_option"))
        surfaces = self._emu.surfaces
        if body.get("surface") == "modal":
            return await self._call(
                lambda: surfaces.click_modal(
                    self._bot_url,
                    user,
                    action_id,
                    block_id=block_id,
                    selected_option_value=selected,
                )
            )
        return await self._call(
            lambda: surfaces.click_home(
                self._bot_url, user, action_id, block_id=block_id, selected_option_value=selected
            )
        )

    async def _suggest(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        user = self._user_of(body.get("user"))
        block_id = body.get("block_id")
        if not isinstance(block_id, str):
            return _error(400, "block_id is required")
        typed = str(body.get("typed") or "")
        try:
            options = await self._emu.surfaces.suggest(self._bot_url, user, block_id, typed)
        except (LookupError, SurfaceError) as exc:
            return _error(400, str(exc))
        except SlackAckTimeout:
            return _error(504, "the bot did not answer within 3 seconds")
        except aiohttp.ClientError as exc:
            return _error(502, f"the bot is not reachable: {exc}")
        return web.json_response({"ok": True, "options": options})

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        user = self._user_of(body.get("user"))
        values = body.get("values") or {}
        if not isinstance(values, dict):
            return _error(400, "values must be an object")
        surfaces = self._emu.surfaces
        try:
            for block_id, value in values.items():
                if _is_external(surfaces, user, str(block_id)) and isinstance(value, list):
                    value = (str(value[0]), str(value[-1]))  # [value, the option's text]
                surfaces.fill(user, str(block_id), value)
            result = await surfaces.submit(self._bot_url, user)
        except (LookupError, SurfaceError) as exc:
            return _error(400, str(exc))
        except SlackAckTimeout:
            return _error(504, "the bot did not answer within 3 seconds")
        except aiohttp.ClientError as exc:
            return _error(502, f"the bot is not reachable: {exc}")
        return web.json_response({"ok": True, "outcome": result.outcome, "errors": result.errors})

    async def _close(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        self._emu.surfaces.close(self._user_of(body.get("user")))
        return web.json_response({"ok": True})

    async def _shortcut(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        user = self._user_of(body.get("user"))
        callback_id = body.get("callback_id")
        if not any(s.callback_id == callback_id for s in self._shortcuts):
            return _error(400, f"the app declares no shortcut {callback_id!r}")
        assert isinstance(callback_id, str)
        message_ts = _text(body.get("message_ts"))
        surfaces = self._emu.surfaces
        if message_ts is None:
            return await self._call(lambda: surfaces.shortcut(self._bot_url, callback_id, user))
        message = self._emu.workspace.find_any(message_ts)
        if message is None:
            return _error(400, f"no message {message_ts}")
        return await self._call(
            lambda: surfaces.message_shortcut(self._bot_url, callback_id, message, user)
        )

    async def _call(self, send: Callable[[], Any]) -> web.StreamResponse:
        try:
            reply = await send()
        except (LookupError, ValueError, SurfaceError) as exc:
            return _error(400, str(exc))
        except SlackAckTimeout:
            return _error(504, "the bot did not acknowledge within 3 seconds")
        except aiohttp.ClientError as exc:
            return _error(502, f"the bot is not reachable: {exc}")
        if reply.status_code != 200:
            return _error(502, f"the bot answered HTTP {reply.status_code}: {reply.text[:300]}")
        return web.json_response({"ok": True})


def _is_external(surfaces: Any, user: str, block_id: str) -> bool:
    modal = surfaces.modal(user)
    for block in (modal.view.get("blocks") if modal is not None else None) or []:
        if isinstance(block, dict) and block.get("block_id") == block_id:
            return bool((block.get("element") or {}).get("type") == "external_select")
    return False


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='{"ok": false, "error": "the body must be JSON"}') from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"ok": false, "error": "the body must be a JSON object"}')
    return body


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value != "" else None
