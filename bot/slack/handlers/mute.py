"""`/starpod mute` and `/starpod unmute`: handed to the alerts feature when it is wired."""

from __future__ import annotations

from bot.blockkit.blocks import section
from bot.blockkit.limits import reply
from bot.blockkit.mrkdwn import date, duration, escape, user
from bot.errors import UserError
from bot.slack.blocks.common import instance_label
from bot.slack.deps import Alerts
from bot.slack.handlers.common import resolve
from bot.slack.handlers.lifecycle import Announcement
from bot.slack.invocation import Invocation
from bot.slack.parser import Command
from bot.slack.services import Services

NOT_YET = "Muting arrives with the alerts feature; not available yet."


def _alerts(svc: Services) -> Alerts:
    if svc.deps.alerts is None:
        raise UserError(NOT_YET)
    return svc.deps.alerts


async def mute(svc: Services, inv: Invocation, cmd: Command, *, reason: str | None = None) -> None:
    """Silence alerts for a while (and auto-restarts with ``--no-restart``); announced,
    with the ``reason`` given in the mute form."""
    alerts = _alerts(svc)
    assert cmd.ref is not None and cmd.options.mute_for is not None
    instance = await resolve(svc, inv, cmd.ref, cmd.subcommand)
    until = svc.deps.clock() + cmd.options.mute_for
    result = await alerts.mute(instance.id, until, cmd.options.no_restart, inv.user_id)
    span = duration(cmd.options.mute_for.total_seconds())
    restarts = " Auto-restart is off too." if cmd.options.no_restart else ""
    replaced = " (replacing the previous mute)" if getattr(result, "replaced", False) else ""
    text = (
        f"🔕 {user(inv.user_id)} muted alerts for {instance_label(instance)} for {span} "
        f"(until {date(until)}){replaced}.{restarts}"
    )
    if reason:
        text += f"\nReason: {escape(reason)}"
    inv.draft.detail = f"muted for {span}" + (", no restart" if cmd.options.no_restart else "")
    if reason:
        inv.draft.detail += f"; reason: {reason[:200]}"
    await Announcement(svc, inv).post(reply(f"{instance.label} muted for {span}", [section(text)]))


async def unmute(svc: Services, inv: Invocation, cmd: Command) -> None:
    """Alerts on again; announced, unless the alerts feature already says so right here."""
    alerts = _alerts(svc)
    assert cmd.ref is not None
    instance = await resolve(svc, inv, cmd.ref, cmd.subcommand)
    result = await alerts.unmute(instance.id, inv.user_id)
    if getattr(result, "was_muted", True) is False:
        inv.draft.detail = "was not muted"
        text = f"🔔 {instance_label(instance)} was not muted; its alerts are on."
        await inv.respond(reply(f"{instance.label} was not muted", [section(text)]))
        return
    text = f"🔔 {user(inv.user_id)} unmuted alerts for {instance_label(instance)}."
    message = reply(f"{instance.label} unmuted", [section(text)])
    if _alerts_tell_this_channel(svc, inv, instance.name):
        await inv.respond(message)  # the alert channel gets the alerts feature's notice
    else:
        await Announcement(svc, inv).post(message)


def _alerts_tell_this_channel(svc: Services, inv: Invocation, name: str | None) -> bool:
    # The alerts feature posts "alerts are on again" in the instance's alert channel; a
    # second announcement there would say the same thing twice.
    policy = getattr(svc.deps.alerts, "policy", None)
    channel_for = getattr(policy, "channel_for", None)
    if callable(channel_for):
        try:
            return bool(channel_for(name) == inv.channel_id)
        except Exception:
            return False
    return inv.channel_id is not None and inv.channel_id == svc.settings.alerts.channel
