"""Help, usage answers and error answers."""

from __future__ import annotations

from bot.backend.errors import (
    AmbiguousInstance,
    BackendError,
    BackendUnavailable,
    InstanceNotFound,
    PrefixTooShort,
)
from bot.blockkit.blocks import context, section
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import code, escape, escape_keep_channel_links, plain
from bot.catalog import COMMAND, SPECS, Role, Subcommand
from bot.slack.blocks.common import status_emoji
from bot.slack.parser import UsageProblem

_GROUPS: tuple[tuple[str, tuple[Subcommand, ...]], ...] = (
    (
        "*Look* (everyone)",
        (
            Subcommand.LIST,
            Subcommand.HEALTH,
            Subcommand.LOGS,
            Subcommand.HISTORY,
            Subcommand.AUDIT,
            Subcommand.STATUS,
        ),
    ),
    (
        "*Act* (operators; changes are announced in the channel)",
        (
            Subcommand.CREATE,
            Subcommand.RESTART,
            Subcommand.PAUSE,
            Subcommand.SSH,
            Subcommand.MUTE,
            Subcommand.UNMUTE,
            Subcommand.MAINTENANCE,
            Subcommand.BUDGET,
        ),
    ),
    ("*Kill* (admins; asks you to confirm)", (Subcommand.KILL,)),
)

_EXAMPLES: dict[Subcommand, tuple[str, ...]] = {
    Subcommand.LIST: ("list", "list --status error", "list --region eu-west-1"),
    Subcommand.CREATE: ("create", "create --name web-3 --region us-east-1"),
    Subcommand.HEALTH: ("health a1b2", "health web-3"),
    Subcommand.LOGS: (
        "logs web-3",
        "logs web-3 --tail 500 --level warn",
        'logs web-3 --grep "timeout"',
    ),
    Subcommand.SSH: ("ssh web-3",),
    Subcommand.PAUSE: ("pause web-3",),
    Subcommand.RESTART: ("restart web-3",),
    Subcommand.KILL: ("kill web-3",),
    Subcommand.HISTORY: ("history web-3",),
    Subcommand.MUTE: ("mute web-3 2h", "mute web-3 1d --no-restart"),
    Subcommand.UNMUTE: ("unmute web-3",),
    Subcommand.BUDGET: ("budget reset web-3",),
    Subcommand.AUDIT: ("audit", "audit web-3"),
    Subcommand.STATUS: ("status",),
    Subcommand.MAINTENANCE: (
        'maintenance add web-* now 2h --reason "kernel upgrade"',
        "maintenance add all 2026-12-01T22:00Z 30m --no-restart",
        "maintenance add db-[12] +15m 1h",
        "maintenance list",
        "maintenance cancel 3",
    ),
    Subcommand.HELP: ("help logs",),
}


def help_message(
    *, topic: Subcommand | None = None, role: Role | None = None, open_access: bool = False
) -> Reply:
    """The help answer: every subcommand grouped by who may run it, or one topic in detail."""
    if topic is not None:
        return _topic_help(topic)
    blocks = [
        section(
            f"*{COMMAND}* manages Starpod instances. "
            f"{code('<id>')} is a full id, a unique id prefix ({code('a1b2')}) or an exact name."
        )
    ]
    for title, subs in _GROUPS:
        lines = [title]
        lines += [f"{code(SPECS[s].usage_line)}  {escape(SPECS[s].summary)}" for s in subs]
        blocks.append(section("\n".join(lines)))
    footer = [f"{code(COMMAND + ' help <subcommand>')} shows examples."]
    if open_access:
        footer.append("No access lists are configured: everyone here is an operator.")
    elif role is not None:
        footer.append(f"Your role: *{role.label}*.")
    else:
        footer.append("You have no role yet: ask an admin of the bot.")
    blocks.append(context(" ".join(footer)))
    return reply(f"{COMMAND} help", blocks)


def _topic_help(topic: Subcommand) -> Reply:
    spec = SPECS[topic]
    lines = [
        f"{code(spec.usage_line)}",
        f"{escape(spec.summary).capitalize()}. Needs the *{spec.role.label}* role.",
    ]
    if topic is Subcommand.LOGS:
        lines.append(
            f"{code('--level warn')} shows warnings and errors; {code('--grep')} matches "
            "case-insensitively inside the fetched lines."
        )
    if topic is Subcommand.MUTE:
        lines.append("Durations: 30m, 2h, 1d (1 minute to 30 days).")
    if topic is Subcommand.MAINTENANCE:
        lines.append(
            f"Start: {code('now')}, {code('+30m')}, {code('14:00')} (UTC, the next one) or "
            f"{code('2026-12-01T14:00Z')}. Duration: 1 minute to 7 days. While a window runs "
            "no incident opens for the instances whose name matches (an open one stays open); "
            f"auto-restart goes on unless {code('--no-restart')}. Its start and end are said "
            "in the alert channel."
        )
    examples = "\n".join(code(f"{COMMAND} {e}") for e in _EXAMPLES.get(topic, ()))
    blocks = [section("\n".join(lines))]
    if examples:
        blocks.append(section("*Examples*\n" + examples))
    return reply(f"{spec.usage_line}: {spec.summary}", blocks)


def usage_answer(problem: UsageProblem) -> Reply:
    """A bad command: what is wrong, the usage line, and the nearest valid word."""
    text = f"⚠️ {escape(problem.message)}"
    blocks = [section(text)]
    if problem.usage:
        blocks.append(context(f"Usage: {code(problem.usage)}"))
    return reply(f"⚠️ {problem.message}", blocks)


def backend_error_answer(error: BackendError, *, doing: str | None = None) -> Reply:
    """A backend failure: its status and body (already in the message), never a trace."""
    if isinstance(error, InstanceNotFound):
        return not_found_answer(error)
    if isinstance(error, AmbiguousInstance):
        return ambiguous_answer(error)
    if isinstance(error, PrefixTooShort):
        return too_short_answer(error)
    prefix = f"Could not {doing}: " if doing else ""
    text = f"❌ {prefix}{escape(str(error))}"
    hints = []
    if isinstance(error, BackendUnavailable):
        hints.append(
            "The Starpod backend is not answering; the bot itself is up. "
            f"Try again in a minute or see {code(COMMAND + ' status')}."
        )
    blocks = [section(text)]
    if hints:
        blocks.append(context(*hints))
    return reply(f"❌ {prefix}{error}", blocks)


def not_found_answer(error: InstanceNotFound) -> Reply:
    """No instance matched what the user typed: the nearest names, if any."""
    text = f"🔍 No instance matches {code(error.ref)} (by id, id prefix or name)."
    fallback = f"No instance matches {error.ref}"
    if error.suggestions:
        text += f" Did you mean {_or_list([code(n) for n in error.suggestions])}?"
        fallback += f"; did you mean {_or_list(error.suggestions)}?"
    text += f" {code(COMMAND + ' list')} shows them all."
    return reply(fallback, [section(text)])


def too_short_answer(error: PrefixTooShort) -> Reply:
    """An action named a short id prefix: nothing done; what it matches, and what to type."""
    shown = error.candidates[: PrefixTooShort.MAX_LISTED]
    lines = [
        f"⚠️ {code(error.ref)} is too short to act on: type at least {error.minimum} "
        "characters of the id, or the exact name. Nothing was done."
    ]
    lines.append("It matches:" if len(error.candidates) > 1 else "Did you mean:")
    for c in shown:
        name = f" {escape(c.name)}" if c.name else ""
        lines.append(f"{status_emoji(c.status)} {code(c.id)}{name} ({escape(c.status_raw)})")
    more = len(error.candidates) - len(shown)
    if more > 0:
        lines.append(f"…and {more} more.")
    return reply(f"{error.ref} is too short to act on", [section("\n".join(lines))])


def _or_list(words: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def ambiguous_answer(error: AmbiguousInstance) -> Reply:
    """Several instances matched: list the candidates so the user can type more."""
    shown = error.candidates[: AmbiguousInstance.MAX_LISTED]
    lines = [f"🤔 {code(error.ref)} matches {len(error.candidates)} instances:"]
    for c in shown:
        name = f" {escape(c.name)}" if c.name else ""
        lines.append(f"{status_emoji(c.status)} {code(c.id)}{name} ({escape(c.status_raw)})")
    more = len(error.candidates) - len(shown)
    if more > 0:
        lines.append(f"…and {more} more.")
    lines.append("Type more of the id, or the exact name.")
    return reply(
        f"{error.ref} matches {len(error.candidates)} instances", [section("\n".join(lines))]
    )


def refusal_answer(message: str) -> Reply:
    """An access refusal (the message names the role needed).

    The message is plain text but may hold channel links (``<#C…>``); the fallback shows
    them as ``#C…``, the block as links.
    """
    shown = escape_keep_channel_links(message)
    return reply(f"🔒 {plain(shown)}", [section(f"🔒 {shown}")])


def user_error_answer(message: str) -> Reply:
    """A request we refuse or cannot do, in the user's words."""
    return reply(f"⚠️ {message}", [section(f"⚠️ {escape(message)}")])


def unexpected_error_answer(error_id: str) -> Reply:
    """A bug on our side: an id the user can quote, nothing else."""
    text = (
        f"💥 Something went wrong on my side (error id {code(error_id)}). "
        "It is logged; give this id to whoever runs the bot."
    )
    return reply(f"Something went wrong (error id {error_id})", [section(text)])


def not_available_answer(what: str) -> Reply:
    """A feature that is not wired in this deployment."""
    return reply(what, [section(f":information_source: {escape(what)}")])
