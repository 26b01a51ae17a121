"""Block Kit for incidents: the root message, its thread replies, and channel notices.

Pure functions, no I/O and no clock: each takes the facts and returns a
:class:`~bot.blockkit.limits.Reply` (``text`` fallback + blocks). Every string that came
from the backend or a user (names, regions, error text) is escaped here with
:func:`bot.blockkit.mrkdwn.escape`; ``mention`` is configuration (``<!subteam^S0123>``)
and is used as written.
"""

from __future__ import annotations

from datetime import datetime

from bot.alerts.facts import HealthSnapshot
from bot.alerts.records import IncidentView
from bot.blockkit.blocks import Block, actions, button, context, fields_section, section
from bot.blockkit.ids import ActionId, BlockId
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import code, date, duration, escape, megabytes, plain, user

STATE_EMOJI = {"open": "🔴", "acknowledged": "🟠", "resolved": "✅"}
FLEET_NAMES_SHOWN = 10


def _instance_title(view: IncidentView) -> str:
    if view.instance_name:
        return f"*{escape(view.instance_name)}* {code(view.short_id)}"
    return code(view.short_id or "?")


def _title(view: IncidentView) -> tuple[str, str]:
    """(mrkdwn, plain) title of the incident."""
    if view.is_fleet:
        if view.kind == "stale":
            members = view.facts.members
            running = view.facts.running
            of = f" of {running} running" if running else ""
            text = f"Storm: {len(members)}{of} instances have a stale heartbeat"
        else:
            text = "Backend unreachable"
        return f"🌩️ *{text}*", text
    what = view.what + (" (flapping)" if view.flapping else "")
    return f"{_instance_title(view)} — {escape(what)}", f"{view.label}: {what}"


def state_text(view: IncidentView) -> str:
    """``Open``, ``Acknowledged by <@U1>``, ``Resolved after 4 m`` (mrkdwn)."""
    if view.state == "resolved" and view.resolved_at is not None:
        after = duration((view.resolved_at - view.opened_at).total_seconds())
        return f"Resolved after {after}"
    if view.state == "acknowledged":
        return f"Acknowledged by {user(view.acknowledged_by)}"
    return "Open"


def health_text(health: HealthSnapshot | None) -> str:
    """``CPU 12.5 % · mem 512 MB · disk 2.1 GB · up 3 h`` from a stored health snapshot."""
    if health is None:
        return "no health data"
    parts = []
    if health.cpu_percent is not None:
        parts.append(f"CPU {health.cpu_percent:.1f} %")
    if health.memory_mb is not None:
        parts.append(f"mem {megabytes(health.memory_mb)}")
    if health.disk_mb is not None:
        parts.append(f"disk {megabytes(health.disk_mb)}")
    if health.uptime_secs is not None:
        parts.append(f"up {duration(health.uptime_secs)}")
    return " · ".join(parts) or "no health data"


def _action_taken(view: IncidentView, default: str) -> str:
    """What was done (escaped) and, when a person did it, a mention of them."""
    facts = view.facts
    text = escape(facts.action or default)
    if facts.action and facts.action_by:
        text += f" by {user(facts.action_by)}"
    return text


def _instance_fields(view: IncidentView) -> list[str]:
    facts = view.facts
    age = facts.heartbeat_age_secs
    fields = [
        f"*State*\n{STATE_EMOJI.get(view.state, '')} {state_text(view)}",
        f"*What happened*\n{escape(view.detail or view.what)}",
        f"*Heartbeat age*\n{duration(float(age)) if age is not None else 'unknown'}",
        f"*Health*\n{health_text(facts.health)}",
        f"*Action taken*\n{_action_taken(view, 'none yet')}",
    ]
    if view.region:
        fields.append(f"*Region*\n{escape(view.region)}")
    return fields


def _fleet_fields(view: IncidentView) -> list[str]:
    facts = view.facts
    members = facts.members
    names = facts.names
    shown = [
        escape(names.get(i) or i[:8]) for i in members[:FLEET_NAMES_SHOWN]
    ]  # names escaped one by one: the joins below are ours
    more = len(members) - len(shown)
    listing = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    fields = [
        f"*State*\n{STATE_EMOJI.get(view.state, '')} {state_text(view)}",
        f"*What happened*\n{escape(view.detail or view.what)}",
        f"*Action taken*\n{_action_taken(view, 'no per-instance restarts')}",
    ]
    if facts.backend_down:
        fields.append("*Backend*\nnot answering")
    if members:
        fields.append(f"*Stale instances*\n{listing}")
    return fields


def incident_buttons(view: IncidentView) -> Block | None:
    """Acknowledge, Restart now, Logs, Mute 1h, Reset restart budget (once it is spent) —
    as far as they still make sense."""
    value = str(view.id)
    elements: list[Block] = []
    if view.state == "open":
        elements.append(button("Acknowledge", ActionId.INCIDENT_ACK, value, style="primary"))
    if not view.is_fleet:
        if view.state != "resolved":
            elements.append(button("Restart now", ActionId.INCIDENT_RESTART, value))
        elements.append(button("Logs", ActionId.INCIDENT_LOGS, value))
        if view.state != "resolved":
            elements.append(button("Mute 1h", ActionId.INCIDENT_MUTE, value))
        if view.state != "resolved" and view.budget_spent:
            elements.append(button("Reset restart budget", ActionId.INCIDENT_BUDGET_RESET, value))
    if not elements:
        return None
    return actions(elements, block_id=f"{BlockId.INCIDENT_ACTIONS}:{view.id}")


def root_message(view: IncidentView, *, mention: str | None = None) -> Reply:
    """The incident's one message in the alert channel, for its current state.

    ``mention`` (the on-call group) is shown while the incident is not resolved; an edit
    never notifies anyone again, so keeping it in later versions costs nothing.
    """
    title, plain_title = _title(view)
    lead = STATE_EMOJI.get(view.state, "") if not view.is_fleet else ""
    top = f"{lead} {title}".strip()
    if mention and view.state != "resolved":
        top = f"{mention} {top}"
    fields = _fleet_fields(view) if view.is_fleet else _instance_fields(view)
    notes = [f"Incident #{view.id}", f"opened {date(view.opened_at)}"]
    if view.flapping:
        notes.append(f"flapping: {view.recurrences + 1} problems, notifications quiet")
    elif view.recurrences:
        notes.append(f"recurred {view.recurrences} times")
    if view.restart_attempts:
        notes.append(f"auto-restarts: {view.restart_attempts}")
    if view.state == "acknowledged":
        # Acknowledged means someone is on it: escalations no longer mention on-call.
        notes.append("someone is on it: no more pages to on-call")
    if view.state == "resolved" and view.resolved_note:
        notes.append(escape(view.resolved_note))
    blocks: list[Block] = [
        section(top, block_id=f"{BlockId.INCIDENT_ROOT}:{view.id}"),
        fields_section(fields),
        context(" · ".join(notes)),
    ]
    buttons = incident_buttons(view)
    if buttons is not None:
        blocks.append(buttons)
    state_word = {"open": "Open", "acknowledged": "Acknowledged", "resolved": "Resolved"}
    message = reply(f"{state_word.get(view.state, view.state)}: {plain_title}", blocks)
    return _with_mention(message, mention if view.state != "resolved" else None)


def _with_mention(message: Reply, mention: str | None) -> Reply:
    """Put the on-call mention in front of the (escaped) fallback text.

    The fallback is what notifications show and it is escaped so backend text pings no
    one; the mention is configuration and must stay a live mention.
    """
    if not mention:
        return message
    return Reply(f"{mention} {message.text}", message.blocks)


def thread_note(text: str, *, fallback: str | None = None) -> Reply:
    """A thread reply: one mrkdwn section (``text`` must already be escaped).

    The notification shows ``fallback`` (plain text), by default ``text`` made plain:
    a mention there reads ``@U…``, never a literal ``<@U…>`` or ``&lt;@U…&gt;``.
    """
    return reply(fallback if fallback is not None else plain(text), [section(text)])


def restart_note(detail: str, *, ok: bool) -> Reply:
    """``🔁 auto-restart 1 of 3: …`` or ``❌ auto-restart 2 of 3 failed: …`` (escaped here)."""
    emoji = "🔁" if ok else "❌"
    return thread_note(f"{emoji} {escape(detail)}", fallback=f"{emoji} {detail}")


def recovered_note(view: IncidentView, detail: str, *, after_secs: float) -> Reply:
    """``✅ Recovered after 4 m: heartbeat fresh again (3 s old)``."""
    text = f"✅ Recovered after {duration(after_secs)}"
    if detail:
        text += f": {escape(detail)}"
    return thread_note(text)


def escalation_note(mention: str | None, text: str) -> Reply:
    """A re-mention of the on-call group (``text`` must already be escaped)."""
    lead = f"{mention} " if mention else ""
    return _with_mention(thread_note(f"📣 {lead}{text}", fallback=f"📣 {plain(text)}"), mention)


def mute_started_notice(
    label: str, until: datetime, *, actor: str | None, no_restart: bool
) -> Reply:
    """``🔕 pod-7 (a1b2c3d4) muted until … by @ana (auto-restart off)``."""
    extra = " (auto-restart off too)" if no_restart else ""
    return reply(
        f"{label} muted until {until:%Y-%m-%d %H:%M} UTC",
        [
            section(
                f"🔕 {escape(label)} muted until {date(until)} by {user(actor)}{extra}. "
                "It is still monitored; alerts stay quiet until the mute ends."
            )
        ],
    )


def mute_ended_notice(
    label: str,
    *,
    how: str,
    actor: str | None,
    muted_by: str | None,
    status: str | None,
    open_incident: int | None,
) -> Reply:
    """``🔔 Mute of pod-7 ended …; it is running now`` (expired or unmuted by someone)."""
    if how == "unmuted":
        why = f"unmuted by {user(actor)}"
    else:
        why = f"the mute set by {user(muted_by)} expired"
    text = f"🔔 Alerts for {escape(label)} are on again: {why}."
    if status:
        text += f" It is {escape(status)} now."
    if open_incident is not None:
        text += f" Incident #{open_incident} is still open and is posted now."
    return reply(f"Alerts for {label} are on again", [section(text)])
