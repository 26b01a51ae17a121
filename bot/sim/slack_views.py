"""Modals and App Home in the Slack emulator: the open views, their inputs, and payloads.

Slack keeps, per user, a stack of open modals (at most 3): ``views.open`` starts one,
``views.push`` adds one, ``views.update`` replaces one in place (same id), and the app's
answer to a ``view_submission`` changes the top one (``response_action``: ``errors``
shows messages under inputs, ``update``/``push`` replace or stack a view, ``clear``
closes them all, an empty answer closes the submitted one). :class:`Modals` does that;
the pure builders below shape the requests Slack sends about views (Events API
``app_home_opened``, ``shortcut``, ``message_action``, ``block_suggestion``,
``block_actions`` in a view, ``view_submission``).

Slack's limits on views are checked where they bite (``check_modal``): title, submit and
close at most 24 characters, ``private_metadata`` at most 3,000, a ``callback_id`` at most
255, a ``submit`` label whenever the view has inputs; and an options answer at most 100
options (``check_options``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from bot.sim.slack_models import APP_ID, BOT_ID, TEAM_DOMAIN, TEAM_ID, Message

MAX_MODAL_STACK = 3
MAX_MODAL_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
VERIFICATION_TOKEN = "emulator-verification-token"
INPUT_ELEMENTS_WITH_OPTIONS = ("static_select", "radio_buttons", "checkboxes")


def check_modal(view: dict[str, Any]) -> list[str]:
    """Problems Slack would report for a modal view (the blocks are checked elsewhere)."""
    problems: list[str] = []
    for key in ("title", "submit", "close"):
        text = (view.get(key) or {}).get("text") if isinstance(view.get(key), dict) else None
        if key == "title" and not text:
            problems.append("a modal needs a title [json-pointer:/view/title]")
        if isinstance(text, str) and len(text) > MAX_MODAL_TITLE:
            problems.append(
                f"must be less than {MAX_MODAL_TITLE + 1} characters "
                f"[json-pointer:/view/{key}/text]"
            )
    metadata = view.get("private_metadata") or ""
    if not isinstance(metadata, str) or len(metadata) > MAX_PRIVATE_METADATA:
        problems.append(
            f"must be less than {MAX_PRIVATE_METADATA + 1} characters "
            "[json-pointer:/view/private_metadata]"
        )
    callback_id = view.get("callback_id") or ""
    if not isinstance(callback_id, str) or len(callback_id) > MAX_CALLBACK_ID:
        problems.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    has_input = any(
        b.get("type") == "input" for b in view.get("blocks") or [] if isinstance(b, dict)
    )
    if has_input and not view.get("submit"):
        problems.append("submit is required when an input block is present [json-pointer:/view]")
    return problems


def check_options(answer: Any) -> list[str]:
    """Problems with an app's answer to ``block_suggestion`` (``{"options": [...]}``)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("options"), list):
        return ["the answer must be a JSON object with an options array"]
    options = answer["options"]
    problems = []
    if len(options) > MAX_OPTIONS:
        problems.append(f"no more than {MAX_OPTIONS} options allowed")
    for index, item in enumerate(options):
        text = ((item or {}).get("text") or {}).get("text") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text or len(text) > MAX_OPTION_TEXT:
            problems.append(f"option {index}: text must be 1 to {MAX_OPTION_TEXT} characters")
        if not isinstance(value, str) or not value or len(value) > MAX_OPTION_VALUE:
            problems.append(f"option {index}: value must be 1 to {MAX_OPTION_VALUE} characters")
    return problems


@dataclass
class OpenModal:
    """One modal as a user sees it: the app's view, what the user entered, the errors."""

    view_id: str
    user_id: str
    view: dict[str, Any]
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    version: int = 0

    @property
    def hash(self) -> str:
        """Slack's ``view.hash``: changes with every update of the view."""
        return f"{self.view_id}.{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """The modal as JSON (for the playground)."""
        return {
            "id": self.view_id,
            "view": copy.deepcopy(self.view),
            "values": copy.deepcopy(self.values),
            "errors": dict(self.errors),
        }


class Modals:
    """Every user's stack of open modals."""

    def __init__(self) -> None:
        self.by_id: dict[str, OpenModal] = {}
        self.stacks: dict[str, list[str]] = {}
        self.closed: list[OpenModal] = []

    def clear(self) -> None:
        """Close everything (the emulator's reset)."""
        self.by_id.clear()
        self.stacks.clear()
        self.closed.clear()

    def open(self, user_id: str, view_id: str, view: dict[str, Any]) -> OpenModal:
        """A new modal, replacing whatever stack the user had (``views.open``)."""
        self.close_all(user_id)
        return self.push(user_id, view_id, view)

    def push(self, user_id: str, view_id: str, view: dict[str, Any]) -> OpenModal:
        """A modal on top of the user's stack."""
        modal = OpenModal(view_id, user_id, view)
        self.by_id[view_id] = modal
        self.stacks.setdefault(user_id, []).append(view_id)
        return modal

    def update(self, view_id: str, view: dict[str, Any]) -> OpenModal:
        """Replace a modal's view in place (same id); what was typed into inputs that keep
        their block and action ids stays, as on Slack."""
        modal = self.by_id[view_id]
        modal.view = view
        modal.errors = {}
        modal.version += 1
        kept = {
            (b.get("block_id"), (b.get("element") or {}).get("action_id"))
            for b in view.get("blocks") or []
            if isinstance(b, dict) and b.get("type") == "input"
        }
        modal.values = {
            block: {a: v for a, v in actions.items() if (block, a) in kept}
            for block, actions in modal.values.items()
        }
        return modal

    def top(self, user_id: str) -> OpenModal | None:
        """The modal the user is looking at, if any."""
        stack = self.stacks.get(user_id) or []
        return self.by_id[stack[-1]] if stack else None

    def depth(self, user_id: str) -> int:
        """How many modals the user has open."""
        return len(self.stacks.get(user_id) or [])

    def close_top(self, user_id: str) -> None:
        """Close the top modal (submitted with an empty answer, or cancelled)."""
        stack = self.stacks.get(user_id) or []
        if stack:
            self.closed.append(self.by_id.pop(stack.pop()))

    def close_all(self, user_id: str) -> None:
        """Close the user's whole stack (``response_action: clear``)."""
        while self.stacks.get(user_id):
            self.close_top(user_id)

    def apply_answer(self, modal: OpenModal, answer: dict[str, Any], new_id: str) -> str:
        """Apply the app's answer to a submission of ``modal``; what happened, in a word."""
        action = answer.get("response_action")
        if action == "errors":
            errors = answer.get("errors")
            modal.errors = {str(k): str(v) for k, v in (errors or {}).items()}
            return "errors"
        if action == "update":
            initial_values(self.update(modal.view_id, dict(answer.get("view") or {})))
            return "update"
        if action == "push":
            initial_values(self.push(modal.user_id, new_id, dict(answer.get("view") or {})))
            return "push"
        if action == "clear":
            self.close_all(modal.user_id)
            return "clear"
        self.close_top(modal.user_id)
        return "closed"


def set_input(modal: OpenModal, block_id: str, value: Any) -> dict[str, Any]:
    """Type or pick ``value`` into the input block ``block_id``: the state Slack sends.

    A text input takes a string; a select or radio group an option value (a select whose
    options the app answers, an ``(value, text)`` pair); checkboxes a list of values.
    Raises ``LookupError`` for an input the modal does not have or an option it does not
    offer.
    """
    block = next(
        (
            b
            for b in modal.view.get("blocks") or []
            if isinstance(b, dict) and b.get("type") == "input" and b.get("block_id") == block_id
        ),
        None,
    )
    if block is None:
        raise LookupError(f"modal {modal.view_id} has no input block {block_id!r}")
    element = block.get("element") or {}
    kind, action_id = element.get("type"), str(element.get("action_id"))
    state: dict[str, Any] = {"type": kind}
    if kind == "plain_text_input":
        state["value"] = str(value)
    elif kind == "external_select":
        option_value, text = value if isinstance(value, tuple) else (value, value)
        state["selected_option"] = _option(text, option_value)
    elif kind in ("static_select", "radio_buttons"):
        state["selected_option"] = _offered(element, str(value))
    elif kind == "checkboxes":
        state["selected_options"] = [_offered(element, str(v)) for v in value]
    else:
        raise LookupError(f"input {block_id!r} is a {kind}, which the emulator cannot fill")
    modal.values.setdefault(block_id, {})[action_id] = state
    modal.errors.pop(block_id, None)
    return state


def initial_values(modal: OpenModal) -> None:
    """Fill the state from the view's ``initial_option``/``initial_value`` (as Slack does)."""
    for block in modal.view.get("blocks") or []:
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        element = block.get("element") or {}
        action_id = str(element.get("action_id"))
        if (block.get("block_id"), action_id) in {
            (b, a) for b, actions in modal.values.items() for a in actions
        }:
            continue
        state: dict[str, Any] = {"type": element.get("type")}
        if isinstance(element.get("initial_option"), dict):
            state["selected_option"] = copy.deepcopy(element["initial_option"])
        elif isinstance(element.get("initial_value"), str):
            state["value"] = element["initial_value"]
        else:
            continue
        modal.values.setdefault(str(block.get("block_id")), {})[action_id] = state


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text, "emoji": True}, "value": value}


def _offered(element: dict[str, Any], value: str) -> dict[str, Any]:
    for option in element.get("options") or []:
        if isinstance(option, dict) and option.get("value") == value:
            return copy.deepcopy(option)
    offered = [o.get("value") for o in element.get("options") or [] if isinstance(o, dict)]
    raise LookupError(f"{element.get('action_id')!r} offers no option {value!r}; it has {offered}")


def find_view_element(
    view: dict[str, Any], action_id: str, block_id: str | None = None
) -> tuple[str, dict[str, Any]] | None:
    """The interactive element with ``action_id`` in a view, and its block's id."""
    for index, block in enumerate(view.get("blocks") or []):
        if not isinstance(block, dict):
            continue
        this_block_id = block.get("block_id") or f"b{index}"
        if block_id is not None and this_block_id != block_id:
            continue
        elements: list[Any] = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return this_block_id, element
    return None


# -- payloads -------------------------------------------------------------------------------


def _user(user_id: str, user_name: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID}


def _team() -> dict[str, Any]:
    return {"id": TEAM_ID, "domain": TEAM_DOMAIN}


def view_payload(
    view_id: str, view: dict[str, Any], *, values: dict[str, Any], hash_: str
) -> dict[str, Any]:
    """A view as Slack describes it in payloads (its state included)."""
    return {
        **copy.deepcopy(view),
        "id": view_id,
        "team_id": TEAM_ID,
        "state": {"values": copy.deepcopy(values)},
        "hash": hash_,
        "app_id": APP_ID,
        "app_installed_team_id": TEAM_ID,
        "bot_id": BOT_ID,
    }


def app_home_opened_body(
    *, user_id: str, tab: str, event_id: str, event_ts: str, view: dict[str, Any] | None
) -> dict[str, Any]:
    """The Events API callback for ``app_home_opened`` (``tab``: ``home`` or ``messages``)."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": f"D{user_id[1:]}",
        "tab": tab,
        "event_ts": event_ts,
    }
    if view is not None and tab == "home":
        event["view"] = copy.deepcopy(view)
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": TEAM_ID,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(event_ts)),
        "authorizations": [
            {"team_id": TEAM_ID, "user_id": "U0BOT", "is_bot": True, "is_enterprise_install": False}
        ],
        "is_ext_shared_channel": False,
    }


def shortcut_payload(
    *, callback_id: str, user_id: str, user_name: str, trigger_id: str, action_ts: str
) -> dict[str, Any]:
    """A global shortcut."""
    return {
        "type": "shortcut",
        "token": VERIFICATION_TOKEN,
        "action_ts": action_ts,
        "team": _team(),
        "user": _user(user_id, user_name),
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
    }


def message_action_payload(
    *,
    callback_id: str,
    user_id: str,
    user_name: str,
    trigger_id: str,
    action_ts: str,
    message: Message,
    channel_name: str,
    response_url: str,
) -> dict[str, Any]:
    """A message shortcut on ``message``."""
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": action_ts,
        "team": _team(),
        "user": _user(user_id, user_name),
        "channel": {"id": message.channel, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": message.ts,
        "message": message.to_api(),
    }


def view_block_actions_payload(
    *, user_id: str, user_name: str, trigger_id: str, view: dict[str, Any], action: dict[str, Any]
) -> dict[str, Any]:
    """A click inside a view (a modal or the App Home): no channel, no response_url."""
    return {
        "type": "block_actions",
        "user": _user(user_id, user_name),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id,
        "team": _team(),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
        "actions": [action],
    }


def block_suggestion_payload(
    *, user_id: str, user_name: str, view: dict[str, Any], action_id: str, block_id: str, value: str
) -> dict[str, Any]:
    """What the user typed into an external select of a view."""
    return {
        "type": "block_suggestion",
        "user": _user(user_id, user_name),
        "container": {"type": "view", "view_id": view["id"]},
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": _team(),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view,
    }


def submission_payload(
    *, user_id: str, user_name: str, trigger_id: str, view: dict[str, Any]
) -> dict[str, Any]:
    """A ``view_submission`` of an open modal (its state in ``view.state``)."""
    return {
        "type": "view_submission",
        "team": _team(),
        "user": _user(user_id, user_name),
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": view,
        "is_enterprise_install": False,
        "response_urls": [],
    }


def parse_answer(text: str) -> dict[str, Any]:
    """The app's ack body as JSON ({} for an empty ack)."""
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        return {"_unparsed": text}
    return body if isinstance(body, dict) else {"_unparsed": text}
