"""`/starpod mute` and `/starpod unmute`: handed to the alerts feature when it is wired."""

from __future__ import annotations

from bot.errors import UserError
from bot.slack.blocks.common import instance_label, section
from bot.slack.deps import Alerts
from bot.slack.handlers.common import resolve
from bot.slack.handlers.lifecycle import Announcement
from bot.slack.invocation import Invocation
from bot.slack.limits import reply
from bot.slack.mrkdwn import date, duration, user
from bot.slack.parser import Command
from bot.slack.services import Services

NOT_YET = "Muting arrives with the alerts feature; not available yet."


def _alerts(svc: Services) -> Alerts:
    if svc.deps.alerts is None:
        raise UserError(NOT_YET)
    return svc.deps.alerts


async def mute(svc: Services, inv: Invocation, cmd: Command) -> None:
    """Silence alerts for a while (and auto-restarts with ``--no-restart``); announced."""
    alerts = _alerts(svc)
    assert cmd.ref is not None and cmd.options.mute_for is not None
    instance = await resolve(svc, inv, cmd.ref)
    until = svc.deps.clock() + cmd.options.mute_for
    await alerts.mute(instance.id, until, cmd.options.no_restart, inv.user_id)
    span = duration(cmd.options.mute_for.total_seconds())
    restarts = " Auto-restart is off too." if cmd.options.no_restart else ""
    text = (
        f"🔕 {user(inv.user_id)} muted alerts for {instance_label(instance)} for {span} "
        f"(until {date(until)}).{restarts}"
    )
    inv.draft.detail = f"muted for {span}" + (", no restart" if cmd.options.no_restart else "")
    await Announcement(svc, inv).post(reply(f"{instance.label} muted for {span}", [section(text)]))


async def unmute(svc: Services, inv: Invocation, cmd: Command) -> None:
    """Alerts on again; announced."""
    alerts = _alerts(svc)
    assert cmd.ref is not None
    instance = await resolve(svc, inv, cmd.ref)
    await alerts.unmute(instance.id, inv.user_id)
    text = f"🔔 {user(inv.user_id)} unmuted alerts for {instance_label(instance)}."
    await Announcement(svc, inv).post(reply(f"{instance.label} unmuted", [section(text)]))
