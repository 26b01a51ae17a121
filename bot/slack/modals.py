"""Modals: opened with ``views.open``, submitted (``view_submission``), then updated.

Opening: every opener runs as a listener step (after the ack, role-checked, audited) and
calls ``views.open`` with the request's ``trigger_id`` (Slack honours it for 3 s).

Submitting: Slack wants the answer *in the ack*, so a submission is read before the
ack (the listener pipeline's step 0, ``ANSWER_BUDGET_SECS``): the form's errors go back
as ``response_action: errors`` under the inputs, never as a message; a refusal replaces
the modal with the reason; a valid form turns the modal into a "working" view, the work
runs as any listener step (role checked again, audited once, through
``bot.instances``' service for instance actions), and ``views.update`` then shows its
outcome in the same modal. A step that leads to another form (the shortcut's second
step, Mute… or Kill… after picking) answers ``response_action: update`` with it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.backend.errors import BackendError
from bot.backend.models import Instance
from bot.blockkit.ids import BlockId, CallbackId
from bot.blockkit.mrkdwn import escape
from bot.blockkit.views import option
from bot.catalog import Subcommand
from bot.errors import AccessDenied, UserError
from bot.slack import actions, incident_buttons
from bot.slack.blocks import modals as views
from bot.slack.blocks.modals import ActVerb, IncidentVerb
from bot.slack.failures import translate
from bot.slack.forms import (
    CreateForm,
    Errors,
    MuteForm,
    read_choice,
    read_create,
    read_metadata,
    read_mute,
    read_picked_instance,
)
from bot.slack.handlers import info, lifecycle, mute
from bot.slack.handlers.common import resolve
from bot.slack.invocation import Invocation
from bot.slack.middleware import Answer, Route, Step
from bot.slack.parser import Command, Options
from bot.slack.services import Services

log = logging.getLogger(__name__)

LATE = Answer(
    {
        "response_action": "update",
        "view": views.result_modal(
            "Starpod", "The bot could not read this form in time. Try again.", ok=False
        ),
    }
)


# -- opening ------------------------------------------------------------------------------


async def open_modal(svc: Services, inv: Invocation, view: dict[str, Any]) -> None:
    """``views.open`` with the request's trigger; Slack's refusal is said plainly."""
    if not inv.trigger_id:
        raise UserError("Slack sent no trigger to open a form with. Try again.")
    try:
        await svc.deps.web.views_open(trigger_id=inv.trigger_id, view=view)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "error")
        raise UserError(f"Slack would not open the form ({error}). Try again.") from exc
    inv.draft.detail = "form opened"
    inv.changes_nothing = True


async def known_regions(svc: Services) -> list[str]:
    """The regions the fleet uses (from the short fleet cache); none when unreadable."""
    try:
        fleet, _ = await svc.deps.backend.fleet.get()
    except BackendError as exc:
        log.info("no known regions for the create form: %s", exc)
        return []
    return sorted({i.region for i in fleet if i.region})


async def open_create(svc: Services, inv: Invocation) -> None:
    """The create form."""
    await open_modal(svc, inv, views.create_modal(await known_regions(svc)))


async def open_mute(svc: Services, inv: Invocation, instance: Instance | None = None) -> None:
    """The mute form, with the instance picked already when one is given."""
    initial = views.instance_option(instance) if instance is not None else None
    await open_modal(svc, inv, views.mute_modal(initial=initial))


async def kill_view(svc: Services, inv: Invocation, instance_id: str) -> dict[str, Any]:
    """The kill confirmation of ``instance_id``, holding a fresh single-use token."""
    instance = await resolve(svc, inv, instance_id, Subcommand.KILL)
    token = await svc.kill_confirmations.issue(instance_id=instance.id, user_id=inv.user_id)
    uptime = instance.health.uptime_secs if instance.health is not None else None
    return views.kill_modal(instance, token, uptime)


async def open_kill(svc: Services, inv: Invocation, instance_id: str) -> None:
    """The kill confirmation; nothing is killed until it is submitted."""
    await open_modal(svc, inv, await kill_view(svc, inv, instance_id))
    inv.draft.detail = "confirmation shown; nothing killed yet"


async def open_act(svc: Services, inv: Invocation) -> None:
    """The global shortcut's first step: pick an instance."""
    await open_modal(svc, inv, views.act_modal())


# -- submitting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    """What a valid form asks for: ``work`` (then the outcome in the modal), or
    ``next_view`` (another form in its place)."""

    action: str  # the audit action and what the role check is about
    title: str = "Starpod"
    working: str = "Working on it…"
    done: str = "Done."
    work: Callable[[], Awaitable[None]] | None = None
    instance_id: str | None = None
    next_view: dict[str, Any] | None = None


Reader = Callable[[Services, Invocation, dict[str, Any]], Awaitable[Submitted | Errors]]


def _values(view: dict[str, Any]) -> dict[str, Any]:
    values = (view.get("state") or {}).get("values") or {}
    return values if isinstance(values, dict) else {}


async def read_create_view(
    svc: Services, inv: Invocation, view: dict[str, Any]
) -> Submitted | Errors:
    form = read_create(_values(view))
    if not isinstance(form, CreateForm):
        return form
    what = form.name or "a new instance"
    command = Command(Subcommand.CREATE, options=Options(name=form.name, region=form.region))
    return Submitted(
        Subcommand.CREATE.value,
        title="New instance",
        working=f"Creating {what}…",
        done=f"Asked the backend for {what}.",
        work=partial(lifecycle.create, svc, inv, command),
    )


async def read_mute_view(
    svc: Services, inv: Invocation, view: dict[str, Any]
) -> Submitted | Errors:
    form = read_mute(_values(view))
    if not isinstance(form, MuteForm):
        return form
    command = Command(
        Subcommand.MUTE,
        ref=form.instance_id,
        options=Options(mute_for=form.mute_for, no_restart=form.no_restart),
    )
    return Submitted(
        Subcommand.MUTE.value,
        title="Mute alerts",
        working="Muting…",
        done="Muted.",
        work=partial(mute.mute, svc, inv, command, reason=form.reason),
        instance_id=form.instance_id,
    )


async def read_kill_view(
    svc: Services, inv: Invocation, view: dict[str, Any]
) -> Submitted | Errors:
    meta = read_metadata(view)
    instance_id, token = str(meta.get("i") or ""), meta.get("t")
    return Submitted(
        Subcommand.KILL.value,
        title="Kill instance",
        working="Killing…",
        done="Killed.",
        work=partial(
            actions.spend_then_kill,
            svc,
            inv,
            instance_id,
            token if isinstance(token, str) else None,
            replace_prompt=False,
        ),
        instance_id=instance_id or None,
    )


async def read_act_view(svc: Services, inv: Invocation, view: dict[str, Any]) -> Submitted | Errors:
    picked = read_picked_instance(_values(view))
    if picked is None:
        return {BlockId.INSTANCE: "Pick an instance."}
    try:
        instance = await svc.deps.backend.resolve(picked[0])
    except BackendError as exc:
        return {BlockId.INSTANCE: str(exc)[:300]}
    return Submitted(
        Subcommand.LIST.value,
        instance_id=instance.id,
        next_view=views.act_choice_modal(instance),
    )


async def read_act_choice_view(
    svc: Services, inv: Invocation, view: dict[str, Any]
) -> Submitted | Errors:
    meta = read_metadata(view)
    instance_id, label = str(meta.get("i") or ""), str(meta.get("n") or meta.get("i") or "")
    choice = read_choice(_values(view))
    try:
        verb = ActVerb(choice or "")
    except ValueError:
        return {BlockId.ACT_VERB: "Pick what to do."}
    command = Command(Subcommand(verb.value), ref=instance_id)
    if verb is ActVerb.MUTE:
        initial = option(label, instance_id)
        return Submitted(
            verb.value, instance_id=instance_id, next_view=views.mute_modal(initial=initial)
        )
    if verb is ActVerb.KILL:
        return Submitted(
            verb.value, instance_id=instance_id, next_view=await kill_view(svc, inv, instance_id)
        )
    work: dict[ActVerb, tuple[Callable[..., Awaitable[None]], str, str]] = {
        ActVerb.HEALTH: (
            info.show_health,
            "Reading its health…",
            "The health card is in your messages with Starpod.",
        ),
        ActVerb.LOGS: (
            info.show_logs,
            "Reading its logs…",
            "The logs are in your messages with Starpod.",
        ),
        ActVerb.RESTART: (lifecycle.restart, f"Restarting {label}…", "Restarted."),
        ActVerb.PAUSE: (lifecycle.pause, f"Pausing {label}…", "Paused."),
    }
    handler, working, done = work[verb]
    return Submitted(
        verb.value,
        title="Act on an instance",
        working=working,
        done=done,
        work=partial(handler, svc, inv, command),
        instance_id=instance_id,
    )


async def read_incident_view(
    svc: Services, inv: Invocation, view: dict[str, Any]
) -> Submitted | Errors:
    meta = read_metadata(view)
    choice = read_choice(_values(view))
    try:
        verb = IncidentVerb(choice or "")
    except ValueError:
        return {BlockId.ACT_VERB: "Pick what to do."}
    alerts = incident_buttons.alerts_of(svc)
    incident = await alerts.get_incident(str(meta.get("incident") or ""))
    if incident is None:
        return {BlockId.ACT_VERB: "This incident does not exist any more."}
    title = f"Incident #{incident.id}"
    if verb is IncidentVerb.ACKNOWLEDGE:
        return Submitted(
            incident_buttons.ACKNOWLEDGE,
            title=title,
            working="Acknowledging…",
            done="Acknowledged.",
            work=partial(incident_buttons.on_acknowledge, svc, inv, incident),
            instance_id=incident.instance_id,
        )
    if incident.instance_id is None:
        return {BlockId.ACT_VERB: "This is a fleet-wide incident: only Acknowledge applies."}
    if verb is IncidentVerb.RESTART:
        return Submitted(
            Subcommand.RESTART.value,
            title=title,
            working=f"Restarting {incident.label}…",
            done="Restart asked; the incident's thread follows it.",
            work=partial(incident_buttons.on_restart, svc, inv, incident),
            instance_id=incident.instance_id,
        )
    initial = option(incident.label, incident.instance_id)
    return Submitted(
        Subcommand.MUTE.value,
        instance_id=incident.instance_id,
        next_view=views.mute_modal(initial=initial),
    )


READERS: dict[str, tuple[str, Reader]] = {
    CallbackId.CREATE: (Subcommand.CREATE.value, read_create_view),
    CallbackId.MUTE: (Subcommand.MUTE.value, read_mute_view),
    CallbackId.KILL: (Subcommand.KILL.value, read_kill_view),
    CallbackId.ACT: (Subcommand.LIST.value, read_act_view),
    CallbackId.ACT_CHOICE: (Subcommand.LIST.value, read_act_choice_view),
    CallbackId.INCIDENT: (incident_buttons.ACKNOWLEDGE, read_incident_view),
}


async def answer_submission(svc: Services, inv: Invocation, body: dict[str, Any]) -> Answer:
    """Step 0 of a submission: errors, a refusal, the next form, or the working view."""
    view = body.get("view") or {}
    action, reader = READERS[str(view.get("callback_id"))]
    inv.prepared = Submitted(action)  # until the form is read: answered here, nothing to do
    try:
        got = await reader(svc, inv, view)
    except UserError as exc:  # the instance or incident is gone, alerts are off …
        inv.draft.fail("error", str(exc))
        return _replace(views.result_modal("Starpod", escape(str(exc)), ok=False))
    except BackendError as exc:
        inv.draft.fail("error", str(exc))
        return _replace(views.result_modal("Starpod", escape(str(exc)), ok=False))
    if not isinstance(got, Submitted):
        inv.draft.fail("usage", "; ".join(got.values())[:500])
        return Answer({"response_action": "errors", "errors": got})
    inv.draft.action = got.action
    if got.instance_id:
        inv.draft.instance_id = got.instance_id
    try:
        await svc.access.check(inv.user_id, None, got.action, anywhere=True)
    except AccessDenied as exc:
        inv.draft.fail("refused", str(exc))
        inv.prepared = Submitted(got.action)
        return _replace(views.result_modal(got.title, escape(str(exc)), ok=False))
    inv.prepared = got
    if got.next_view is not None:
        inv.draft.detail = "next form shown"
        inv.changes_nothing = True
        return _replace(got.next_view)
    return _replace(views.working_modal(got.title, escape(got.working)))


def _replace(view: dict[str, Any]) -> Answer:
    return Answer({"response_action": "update", "view": view})


async def plan_submission(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """The work a valid form asked for (nothing when the ack already answered it all)."""
    got = inv.prepared
    if not isinstance(got, Submitted) or got.work is None:
        action = got.action if isinstance(got, Submitted) else inv.draft.action
        return Step(action, _nothing, check_role=False)
    view_id = str((body.get("view") or {}).get("id") or "")
    act = partial(_work_then_show, svc, inv, got, view_id)
    return Step(got.action, act, instance_id=got.instance_id)


async def _nothing() -> None:
    return None


async def _work_then_show(svc: Services, inv: Invocation, got: Submitted, view_id: str) -> None:
    assert got.work is not None
    try:
        await got.work()
    except Exception as exc:
        detail = escape(translate(exc).detail)
        await _show(svc, view_id, views.result_modal(got.title, detail, ok=False))
        raise
    ok = inv.draft.result == "ok"
    text = got.done if ok else (inv.draft.detail or "It did not work.")
    await _show(svc, view_id, views.result_modal(got.title, escape(text), ok=ok))


async def _show(svc: Services, view_id: str, view: dict[str, Any]) -> None:
    # The user may have closed the modal meanwhile: the announcement still tells them.
    try:
        await svc.deps.web.views_update(view_id=view_id, view=view)
    except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
        log.info("could not show the outcome in modal %s: %s", view_id, exc)


ROUTES = tuple(
    Route("view", callback, action, plan_submission, answer=answer_submission, late=LATE)
    for callback, (action, _) in READERS.items()
)
