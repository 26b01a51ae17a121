"""`/starpod maintenance add|list|cancel`: planned windows, handed to the alerts feature.

The windows' rules (targets, starts, lengths) and their effect live in
:mod:`bot.alerts.maintenance`; a plan or a cancel is announced in the channel where it was
typed, and the window's own start and end in the alert channel (through the outbox).
"""

from __future__ import annotations

from bot.alerts.maintenance import MaintenanceWindows
from bot.alerts.maintenance_blocks import span, target_words, windows_message
from bot.alerts.maintenance_records import WindowView
from bot.alerts.maintenance_rules import check_start
from bot.blockkit.blocks import context, section
from bot.blockkit.limits import reply
from bot.blockkit.mrkdwn import escape, user
from bot.errors import UserError
from bot.slack.handlers.lifecycle import Announcement
from bot.slack.invocation import Invocation
from bot.slack.parser import Command
from bot.slack.services import Services

NOT_RUNNING = "Maintenance windows need the alerts feature, which is not running in this bot."


def _windows(svc: Services) -> MaintenanceWindows:
    windows = getattr(svc.deps.alerts, "maintenance", None)
    if not isinstance(windows, MaintenanceWindows):
        raise UserError(NOT_RUNNING)
    return windows


async def maintenance(svc: Services, inv: Invocation, cmd: Command) -> None:
    """Dispatch on the action the parser read."""
    request = cmd.options.maintenance
    assert request is not None
    windows = _windows(svc)
    if request.action == "list":
        inv.draft.detail = "list"
        await inv.respond(windows_message(await windows.listing(), svc.deps.clock()))
    elif request.action == "cancel":
        assert request.window_id is not None
        await _cancel(svc, inv, windows, request.window_id)
    else:
        await _add(svc, inv, cmd, windows)


async def _add(svc: Services, inv: Invocation, cmd: Command, windows: MaintenanceWindows) -> None:
    request = cmd.options.maintenance
    assert request is not None and request.target is not None
    assert request.start is not None and request.length is not None
    now = svc.deps.clock()
    starts_at = request.start.resolve(now)
    try:
        check_start(starts_at, now)
        result = await windows.add(
            request.target,
            starts_at,
            request.length,
            no_restart=cmd.options.no_restart,
            reason=request.reason,
            actor=inv.user_id,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    view = result.window
    inv.draft.detail = _detail(view, "planned")
    when = "now" if view.starts_at <= now else "planned"
    restarts = "Auto-restart is off for them." if view.no_restart else "Auto-restart stays on."
    reason = f" Reason: {escape(view.reason)}." if view.reason else ""
    text = (
        f"🛠 {user(inv.user_id)} planned maintenance #{view.id} for {target_words(view)} "
        f"{span(view)} ({when}): no incident opens for them while it runs. {restarts}{reason}"
    )
    blocks = [section(text)]
    if result.matching:
        shown = ", ".join(escape(label) for label in result.matching[:20])
        more = f" and {len(result.matching) - 20} more" if len(result.matching) > 20 else ""
        blocks.append(context(f"Matches now: {shown}{more}"))
    else:
        blocks.append(
            context("Matches no instance the bot knows yet; instances named so later are covered.")
        )
    await Announcement(svc, inv).post(reply(f"Maintenance #{view.id} planned", blocks))


async def _cancel(
    svc: Services, inv: Invocation, windows: MaintenanceWindows, window_id: int
) -> None:
    result = await windows.cancel(window_id, inv.user_id)
    view = result.window
    if result.outcome == "not_found" or view is None:
        raise UserError(
            f"There is no maintenance window #{window_id}: see `/starpod maintenance list`."
        )
    if result.outcome == "already":
        raise UserError(f"Maintenance #{window_id} was already cancelled.")
    if result.outcome == "ended":
        raise UserError(f"Maintenance #{window_id} has already ended; nothing to cancel.")
    inv.draft.detail = _detail(view, "cancelled")
    text = (
        f"🛠 {user(inv.user_id)} cancelled maintenance #{view.id} for {target_words(view)} "
        f"({span(view)}): incidents open for them again."
    )
    await Announcement(svc, inv).post(reply(f"Maintenance #{view.id} cancelled", [section(text)]))


def _detail(view: WindowView, verb: str) -> str:
    # The audit row says what was planned, in plain text.
    flags = ", no restart" if view.no_restart else ""
    return (
        f"{verb} #{view.id} {view.target} {view.starts_at:%Y-%m-%d %H:%M}"
        f" to {view.ends_at:%Y-%m-%d %H:%M} UTC{flags}"
    )
