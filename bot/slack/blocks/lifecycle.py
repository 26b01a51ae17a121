"""Announcements of actions that change an instance, and the kill confirmation.

An announcement is posted in the channel when the action starts ("@ana is restarting
pod-7…") and edited in place when it ends ("✅ pod-7 running again after 14 s").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.backend.models import Instance
from bot.blockkit.blocks import Block, actions, button, context, section
from bot.blockkit.ids import ActionId, BlockId, confirmed_block_id
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import code, duration, escape, user
from bot.slack.blocks.health import kill_button


class Verb(StrEnum):
    """The actions that change an instance and are announced in the channel."""

    CREATE = "create"
    PAUSE = "pause"
    RESTART = "restart"
    KILL = "kill"


@dataclass(frozen=True)
class _Words:
    emoji: str
    doing: str  # "is restarting"
    done: str  # "running again"
    noun: str  # "restart"


WORDS = {
    Verb.CREATE: _Words("🆕", "is creating", "created and running", "creation"),
    Verb.PAUSE: _Words("⏸️", "is pausing", "paused", "pause"),
    Verb.RESTART: _Words("🔄", "is restarting", "running again", "restart"),
    Verb.KILL: _Words("🗑️", "is killing", "killed", "kill"),
}


def _announcement(text: str, fallback: str, note: str | None = None) -> Reply:
    blocks: list[Block] = [section(text, block_id=BlockId.ANNOUNCEMENT)]
    if note:
        blocks.append(context(note))
    return reply(fallback, blocks)


def announce_started(verb: Verb, target: str, target_plain: str, actor: str) -> Reply:
    """``🔄 @ana is restarting *pod-7* `a1b2c3d4`…`` (``target`` is escaped mrkdwn)."""
    words = WORDS[verb]
    return _announcement(
        f"{words.emoji} {user(actor)} {words.doing} {target}…",
        f"{words.doing.removeprefix('is ').capitalize()} {target_plain}…",
    )


def announce_succeeded(
    verb: Verb, target: str, target_plain: str, actor: str, elapsed_secs: float
) -> Reply:
    """``✅ *pod-7* running again after 14 s`` and who asked."""
    words = WORDS[verb]
    emoji = "✅" if verb in (Verb.CREATE, Verb.RESTART) else words.emoji
    return _announcement(
        f"{emoji} {target} {words.done} after {duration(elapsed_secs)}",
        f"{target_plain} {words.done} after {duration(elapsed_secs)}",
        note=f"{words.noun.capitalize()} asked by {user(actor)}",
    )


def announce_failed(verb: Verb, target: str, target_plain: str, actor: str, error: str) -> Reply:
    """``❌ restart of *pod-7* failed: Backend returned 409 …`` (the error is escaped here)."""
    words = WORDS[verb]
    return _announcement(
        f"❌ {words.noun.capitalize()} of {target} failed: {escape(error)}",
        f"{words.noun.capitalize()} of {target_plain} failed: {error}",
        note=f"Asked by {user(actor)}",
    )


def announce_unconfirmed(
    verb: Verb, target: str, target_plain: str, actor: str, elapsed_secs: float, status: str
) -> Reply:
    """The backend accepted the action but did not reach the end state in time."""
    words = WORDS[verb]
    return _announcement(
        f"⏳ {words.noun.capitalize()} of {target} accepted, but it is still "
        f"*{escape(status)}* after {duration(elapsed_secs)}. "
        f"{code('/starpod health ' + target_plain.split(' ')[0])} shows the latest.",
        f"{words.noun.capitalize()} of {target_plain}: still {status} "
        f"after {duration(elapsed_secs)}",
        note=f"Asked by {user(actor)}",
    )


def announce_cut_short(verb: Verb, target: str, target_plain: str, actor: str) -> Reply:
    """The bot stopped while it waited for the backend: the outcome is unknown, not failed."""
    words = WORDS[verb]
    ref = target_plain.split(" ")[0]
    check = f"/starpod health {ref}" if verb is not Verb.CREATE else "/starpod list"
    return _announcement(
        f"⚠️ {words.noun.capitalize()} of {target}: outcome unknown, the bot was stopped "
        f"while it waited for the backend. Check with {code(check)}.",
        f"{words.noun.capitalize()} of {target_plain}: outcome unknown "
        f"(the bot was stopped while it waited): check with {check}",
        note=f"Asked by {user(actor)}",
    )


def kill_confirmation(instance: Instance, token: str | None = None) -> Reply:
    """The answer to `/starpod kill`: nothing happens until the danger button is clicked.

    ``token`` is the prompt's single-use kill confirmation (carried in the block id);
    without one the button is refused when clicked.
    """
    details = ", ".join(escape(x) for x in (instance.status_raw, instance.region or "") if x)
    label = (
        f"*{escape(instance.name)}* {code(instance.short_id)}"
        if instance.name
        else code(instance.short_id)
    )
    text = (
        f"⚠️ Kill {label} ({details})? This terminates the instance and cannot be undone. "
        "Nothing happens until you confirm."
    )
    buttons = [
        kill_button(instance, text=f"Kill {instance.name or instance.short_id}"),
        button("Cancel", ActionId.KILL_CANCEL, instance.id),
    ]
    return reply(
        f"Confirm: kill {instance.label}?",
        [section(text), actions(buttons, block_id=confirmed_block_id(BlockId.KILL_ACTIONS, token))],
    )


def kill_requested(target: str, target_plain: str) -> Reply:
    """Replaces the confirmation once clicked, so it cannot be clicked again."""
    return reply(
        f"Kill of {target_plain} requested",
        [section(f"🗑️ Kill of {target} requested; the channel follows its progress.")],
    )


def kill_cancelled(target: str, target_plain: str) -> Reply:
    """Replaces the confirmation after Cancel."""
    return reply(
        f"Kept {target_plain}",
        [section(f"👍 Kept {target}. Nothing was killed.")],
    )


def not_announced_note(error: str) -> Reply:
    """Told privately when the channel announcement could not be posted."""
    return reply(
        "I could not announce this in the channel",
        [
            section(
                f":information_source: I could not post in this channel ({escape(error)}), "
                "so only you see progress here. "
                "Invite me with `/invite @starpod` so the team sees actions."
            )
        ],
    )
