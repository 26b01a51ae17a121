"""The Slack side of App Home, modals, shortcuts and external selects, towards the bot.

``SlackEmulator.surfaces`` plays a person in front of those surfaces, over HTTP (signed;
the Events API as JSON) or Socket Mode (``VIA_SOCKET``)::

    await slack.surfaces.open_home(url, "U0OP")              # app_home_opened
    home = slack.home_views["U0OP"]                          # what views.publish put there
    await slack.surfaces.click_home(url, "U0OP", action_id, selected_option_value=…)
    await slack.surfaces.shortcut(url, "starpod_act", "U0OP")  # → the bot opens a modal
    modal = slack.surfaces.modal("U0OP")
    options = await slack.surfaces.suggest(url, "U0OP", block_id, "web")   # typed text
    slack.surfaces.fill("U0OP", block_id, ("<id>", "web-1"))  # pick, type, tick
    outcome = await slack.surfaces.submit(url, "U0OP")         # "errors", "update", …

Only what a person could do is possible: an element must be in the view, an option must
be offered, a modal must be open. The bot's answers (options, ``response_action``) are
checked against Slack's limits; a breach raises :class:`SurfaceError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.sim.slack_models import BotReply, Message
from bot.sim.slack_payloads import action_entry
from bot.sim.slack_views import (
    OpenModal,
    app_home_opened_body,
    block_suggestion_payload,
    check_options,
    find_view_element,
    message_action_payload,
    parse_answer,
    set_input,
    shortcut_payload,
    submission_payload,
    view_block_actions_payload,
    view_payload,
)

if TYPE_CHECKING:
    from bot.sim.slack import SlackEmulator

ACK_TIMEOUT_S = 3.0


class SurfaceError(Exception):
    """The bot answered a view request in a way Slack would refuse."""


@dataclass(frozen=True)
class Submission:
    """What a submission became: ``errors``, ``update``, ``push``, ``clear``, ``closed``."""

    outcome: str
    reply: BotReply
    errors: dict[str, str]


class Surfaces:
    """App Home, modals, shortcuts and suggestions, for one emulator."""

    def __init__(self, emulator: SlackEmulator) -> None:
        self._emu = emulator

    # -- reading ---------------------------------------------------------------------------

    def modal(self, user_id: str) -> OpenModal | None:
        """The modal ``user_id`` is looking at (the top of their stack), if any."""
        return self._emu.web_state.modals.top(user_id)

    def home(self, user_id: str) -> dict[str, Any] | None:
        """The user's published App Home view, if any."""
        return self._emu.home_views.get(user_id)

    # -- App Home --------------------------------------------------------------------------

    async def open_home(
        self,
        target_url: str,
        user_id: str,
        *,
        tab: str = "home",
        ack_timeout: float = ACK_TIMEOUT_S,
    ) -> BotReply:
        """The user opens the app's Home (or Messages) tab: ``app_home_opened``."""
        ts = self._emu.workspace.next_ts()
        body = app_home_opened_body(
            user_id=user_id,
            tab=tab,
            event_id=self._emu.new_id("Ev"),
            event_ts=ts,
            view=self.home(user_id),
        )
        return await self._emu.deliver_request(
            target_url,
            json_body=body,
            envelope=("events_api", body, False),
            ack_timeout=ack_timeout,
        )

    async def click_home(
        self,
        target_url: str,
        user_id: str,
        action_id: str,
        *,
        block_id: str | None = None,
        selected_option_value: str | None = None,
        user_name: str | None = None,
    ) -> BotReply:
        """A click on the user's Home (a button, or an option of a menu)."""
        view = self.home(user_id)
        if view is None:
            raise LookupError(f"{user_id} has no App Home published")
        return await self._click(
            target_url, user_id, view, action_id, block_id, selected_option_value, user_name
        )

    # -- shortcuts -------------------------------------------------------------------------

    async def shortcut(
        self, target_url: str, callback_id: str, user_id: str, *, user_name: str | None = None
    ) -> BotReply:
        """A global shortcut from the shortcuts menu."""
        payload = shortcut_payload(
            callback_id=callback_id,
            user_id=user_id,
            user_name=user_name or user_id.lower(),
            trigger_id=self._emu.new_trigger_id(user_id),
            action_ts=self._emu.workspace.next_ts(),
        )
        return await self._interactive(target_url, payload, accepts_payload=False)

    async def message_shortcut(
        self,
        target_url: str,
        callback_id: str,
        message: Message,
        user_id: str,
        *,
        user_name: str | None = None,
    ) -> BotReply:
        """A message shortcut from a message's ⋯ menu (the message must be visible)."""
        if message.ephemeral_for is not None:
            raise LookupError("Slack offers no message shortcuts on ephemeral messages")
        payload = message_action_payload(
            callback_id=callback_id,
            user_id=user_id,
            user_name=user_name or user_id.lower(),
            trigger_id=self._emu.new_trigger_id(user_id),
            action_ts=self._emu.workspace.next_ts(),
            message=message,
            channel_name=self._emu.channel_name(message.channel),
            response_url=self._emu.new_response_url(
                channel_id=message.channel, user_id=user_id, message_ts=message.ts
            ),
        )
        return await self._interactive(target_url, payload, accepts_payload=False)

    # -- modals ----------------------------------------------------------------------------

    def fill(self, user_id: str, block_id: str, value: Any) -> None:
        """Type, pick or tick in the user's open modal (see ``slack_views.set_input``)."""
        modal = self._require_modal(user_id)
        set_input(modal, block_id, value)
        self._emu.workspace.touch()

    async def suggest(
        self, target_url: str, user_id: str, block_id: str, typed: str
    ) -> list[dict[str, Any]]:
        """Type ``typed`` into an external select of the user's modal: the bot's options."""
        modal = self._require_modal(user_id)
        found = find_view_element(modal.view, _action_of(modal, block_id), block_id)
        if found is None or found[1].get("type") != "external_select":
            raise LookupError(f"input {block_id!r} is not an external select")
        payload = block_suggestion_payload(
            user_id=user_id,
            user_name=user_id.lower(),
            view=self._payload_view(modal),
            action_id=str(found[1].get("action_id")),
            block_id=block_id,
            value=typed,
        )
        reply = await self._interactive(target_url, payload, accepts_payload=True)
        answer = parse_answer(reply.text)
        problems = check_options(answer)
        if reply.status_code != 200 or problems:
            raise SurfaceError(f"options answer refused: {problems or reply.status_code}")
        options: list[dict[str, Any]] = answer["options"]
        return options

    async def click_modal(
        self,
        target_url: str,
        user_id: str,
        action_id: str,
        *,
        block_id: str | None = None,
        selected_option_value: str | None = None,
    ) -> BotReply:
        """A click on a button or menu of the user's open modal."""
        modal = self._require_modal(user_id)
        return await self._click(
            target_url,
            user_id,
            self._payload_view(modal),
            action_id,
            block_id,
            selected_option_value,
            None,
        )

    async def submit(self, target_url: str, user_id: str) -> Submission:
        """Press the modal's submit button; the bot's answer is applied as Slack does."""
        modal = self._require_modal(user_id)
        if not modal.view.get("submit"):
            raise LookupError(f"modal {modal.view_id} has no submit button")
        payload = submission_payload(
            user_id=user_id,
            user_name=user_id.lower(),
            trigger_id=self._emu.new_trigger_id(user_id),
            view=self._payload_view(modal),
        )
        sent_version = modal.version
        reply = await self._interactive(target_url, payload, accepts_payload=True)
        if reply.status_code != 200:
            raise SurfaceError(f"the bot answered HTTP {reply.status_code}: {reply.text[:300]}")
        answer = parse_answer(reply.text)
        if answer.get("response_action") == "update" and modal.version != sent_version:
            # The bot already replaced the view with views.update (after it acked): on Slack
            # the ack reached Slack first, so that later update is what the user sees.
            return Submission("update", reply, {})
        outcome = self._apply(modal, answer)
        return Submission(outcome, reply, dict(modal.errors) if outcome == "errors" else {})

    def close(self, user_id: str) -> None:
        """The user closes the top modal (Cancel / ✕)."""
        self._emu.web_state.modals.close_top(user_id)
        self._emu.workspace.touch()

    # -- internals -------------------------------------------------------------------------

    def _require_modal(self, user_id: str) -> OpenModal:
        modal = self.modal(user_id)
        if modal is None:
            raise LookupError(f"{user_id} has no modal open")
        return modal

    def _payload_view(self, modal: OpenModal) -> dict[str, Any]:
        return view_payload(modal.view_id, modal.view, values=modal.values, hash_=modal.hash)

    def _apply(self, modal: OpenModal, answer: dict[str, Any]) -> str:
        action = answer.get("response_action")
        if "_unparsed" in answer or action not in (None, "errors", "update", "push", "clear"):
            raise SurfaceError(f"Slack cannot read this answer to a submission: {answer}")
        if action == "errors":
            errors = answer.get("errors")
            inputs = {
                b.get("block_id")
                for b in modal.view.get("blocks") or []
                if b.get("type") == "input"
            }
            if not isinstance(errors, dict) or not errors or not set(errors) <= inputs:
                raise SurfaceError(f"errors must name input blocks of the view: {errors}")
        if action in ("update", "push"):
            # The same checks as views.open: a view Slack refuses fails the submission.
            problems = self._emu.check_view(answer.get("view"), expected_type="modal")
            if problems:
                raise SurfaceError(f"the {action} view is invalid: {problems}")
        outcome = self._emu.web_state.modals.apply_answer(modal, answer, self._emu.new_id("V"))
        self._emu.workspace.touch()
        return outcome

    async def _click(
        self,
        target_url: str,
        user_id: str,
        view: dict[str, Any],
        action_id: str,
        block_id: str | None,
        selected_option_value: str | None,
        user_name: str | None,
    ) -> BotReply:
        found = find_view_element(view, action_id, block_id)
        if found is None:
            raise LookupError(f"the view has no element with action_id {action_id!r}")
        block_id, element = found
        if selected_option_value is not None:
            offered = [o.get("value") for o in element.get("options") or [] if isinstance(o, dict)]
            if selected_option_value not in offered:
                raise ValueError(f"{action_id!r} offers no option {selected_option_value!r}")
        action = action_entry(
            action_id=action_id,
            block_id=block_id,
            action_type=str(element.get("type", "button")),
            action_ts=self._emu.workspace.next_ts(),
            value=None if selected_option_value is not None else element.get("value"),
            selected_option_value=selected_option_value,
            element=element,
        )
        payload = view_block_actions_payload(
            user_id=user_id,
            user_name=user_name or user_id.lower(),
            trigger_id=self._emu.new_trigger_id(user_id),
            view=view,
            action=action,
        )
        return await self._interactive(target_url, payload, accepts_payload=False)

    async def _interactive(
        self, target_url: str, payload: dict[str, Any], *, accepts_payload: bool
    ) -> BotReply:
        return await self._emu.deliver_request(
            target_url,
            form={"payload": json.dumps(payload)},
            envelope=("interactive", payload, accepts_payload),
            ack_timeout=ACK_TIMEOUT_S,
        )


def _action_of(modal: OpenModal, block_id: str) -> str:
    for block in modal.view.get("blocks") or []:
        if isinstance(block, dict) and block.get("block_id") == block_id:
            return str((block.get("element") or {}).get("action_id"))
    raise LookupError(f"modal {modal.view_id} has no block {block_id!r}")
