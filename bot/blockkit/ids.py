"""Every ``action_id``, ``block_id`` and ``callback_id`` the bot uses, in one place.

Listeners match on these, builders emit them; a rename here changes both. The values are
namespaced (``starpod.``) so they never collide with another app's in a shared workspace.
"""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    """Interactive elements."""

    # The overflow menu of a row in /starpod list; option values are "<verb>:<instance id>".
    ROW_MENU = "starpod.row_menu"
    # "Previous"/"Next" under a list page; the value carries page and filters as JSON.
    LIST_PAGE_PREV = "starpod.list_page.prev"
    LIST_PAGE_NEXT = "starpod.list_page.next"
    # Buttons on an instance card (health answer); the value is the instance id.
    CARD_LOGS = "starpod.card.logs"
    CARD_HISTORY = "starpod.card.history"
    CARD_SSH = "starpod.card.ssh"
    CARD_RESTART = "starpod.card.restart"
    CARD_PAUSE = "starpod.card.pause"
    # The danger button (with a Block Kit confirm dialog) that actually kills.
    KILL_CONFIRM = "starpod.kill.confirm"
    KILL_CANCEL = "starpod.kill.cancel"
    # Reserved for the alerts feature's incident message.
    INCIDENT_ACK = "starpod.incident.ack"
    INCIDENT_RESTART = "starpod.incident.restart"
    INCIDENT_LOGS = "starpod.incident.logs"
    INCIDENT_MUTE = "starpod.incident.mute"
    INCIDENT_BUDGET_RESET = "starpod.incident.budget_reset"
    # Every instance picker (an external_select answered by the bot's block_suggestion
    # listener): one action_id, so one listener answers them all; values are instance ids.
    INSTANCE_PICK = "starpod.instance.pick"
    # App Home: a row's menu ("<verb>:<instance id>"), the pager, the modal openers.
    HOME_ROW_MENU = "starpod.home.row_menu"
    HOME_PAGE_PREV = "starpod.home.page.prev"
    HOME_PAGE_NEXT = "starpod.home.page.next"
    HOME_CREATE = "starpod.home.create"
    HOME_MUTE = "starpod.home.mute"
    # Modal inputs (the action_id inside each input block).
    CREATE_NAME = "starpod.create.name"
    CREATE_REGION = "starpod.create.region"
    CREATE_REGION_TYPED = "starpod.create.region_typed"
    MUTE_DURATION = "starpod.mute.duration"
    MUTE_DURATION_TYPED = "starpod.mute.duration_typed"
    MUTE_OPTIONS = "starpod.mute.options"
    MUTE_REASON = "starpod.mute.reason"
    ACT_VERB = "starpod.act.verb"


class BlockId(StrEnum):
    """Blocks that listeners or tests look for; row blocks add ``:<instance id>``."""

    LIST_SUMMARY = "starpod.list.summary"
    LIST_ROW = "starpod.list.row"
    LIST_PAGER = "starpod.list.pager"
    CARD_ACTIONS = "starpod.card.actions"
    KILL_ACTIONS = "starpod.kill.actions"
    ANNOUNCEMENT = "starpod.announcement"
    # The alerts feature's incident message; both add ":<incident id>".
    INCIDENT_ROOT = "starpod.incident.root"
    INCIDENT_ACTIONS = "starpod.incident.actions"
    INCIDENT_DIAGNOSTICS = "starpod.incident.diagnostics"
    # App Home and modals.
    HOME_SUMMARY = "starpod.home.summary"
    HOME_ROW = "starpod.home.row"
    HOME_PAGER = "starpod.home.pager"
    HOME_INCIDENT = "starpod.home.incident"
    HOME_MAINTENANCE = "starpod.home.maintenance"
    HOME_MUTES = "starpod.home.mutes"
    # A submitted modal's outcome (``:ok`` or ``:failed`` added).
    MODAL_OUTCOME = "starpod.modal.outcome"
    # Input blocks of the modals: ``response_action: errors`` names these.
    INSTANCE = "starpod.input.instance"
    CREATE_NAME = "starpod.input.name"
    CREATE_REGION = "starpod.input.region"
    CREATE_REGION_TYPED = "starpod.input.region_typed"
    MUTE_DURATION = "starpod.input.duration"
    MUTE_DURATION_TYPED = "starpod.input.duration_typed"
    MUTE_OPTIONS = "starpod.input.mute_options"
    MUTE_REASON = "starpod.input.reason"
    ACT_VERB = "starpod.input.verb"


class CallbackId(StrEnum):
    """Modals (``view.callback_id``) and shortcuts (the manifest's ``callback_id``)."""

    CREATE = "starpod.modal.create"
    MUTE = "starpod.modal.mute"
    KILL = "starpod.modal.kill"
    ACT = "starpod.modal.act"  # the global shortcut's modal: first an instance…
    ACT_CHOICE = "starpod.modal.act_choice"  # … then what to do with it
    INCIDENT = "starpod.modal.incident"  # the message shortcut's modal on an incident
    RESULT = "starpod.modal.result"  # what a submitted modal became (no submit button)
    # Shortcuts, as declared in app-manifest.yml.
    ACT_SHORTCUT = "starpod_act"
    INCIDENT_SHORTCUT = "starpod_incident"


class MenuChoice(StrEnum):
    """The verbs of the row menu and the card buttons."""

    HEALTH = "health"
    LOGS = "logs"
    HISTORY = "history"
    SSH = "ssh"
    RESTART = "restart"
    PAUSE = "pause"
    KILL = "kill"


def row_block_id(instance_id: str) -> str:
    """The block id of one list row (ids stay under Slack's 255 characters)."""
    return f"{BlockId.LIST_ROW}:{instance_id}"[:255]


def menu_value(choice: MenuChoice, instance_id: str) -> str:
    """An overflow option value: ``"restart:<id>"``."""
    return f"{choice.value}:{instance_id}"


def parse_menu_value(value: str) -> tuple[MenuChoice, str] | None:
    """``"restart:<id>"`` → (RESTART, id); None for anything else."""
    verb, sep, instance_id = value.partition(":")
    if not sep or not instance_id:
        return None
    try:
        return MenuChoice(verb), instance_id
    except ValueError:
        return None


def confirmed_block_id(block: BlockId, token: str | None) -> str:
    """A block holding a kill button, carrying its confirmation token: ``"<block>:<token>"``."""
    return f"{block}:{token}" if token else str(block)


def split_confirmed_block_id(block_id: str) -> tuple[str, str | None]:
    """``"<block>:<token>"`` → (block, token); a block id without a token → (block, None)."""
    block, sep, token = block_id.partition(":")
    return block, (token if sep and token else None)
