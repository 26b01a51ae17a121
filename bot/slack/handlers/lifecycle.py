"""Actions that change an instance: create, pause, restart, kill.

Each is announced in the channel, naming who did it, then the announcement is edited
when the backend reaches the new status (polled briefly, bounded by
``deps.action_poll_timeout``), or says it failed and why, or that the backend is still
working on it. ``kill`` from the slash command only shows a confirmation; the kill
happens on the click. One action per instance at a time: a second one (a double tap, a
colleague at the same moment) is told what is already running.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.backend.errors import BackendError, BackendStatusError
from bot.backend.models import Instance
from bot.blockkit.blocks import section
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import bold, duration, escape, user
from bot.slack import blocks
from bot.slack.blocks.common import instance_label
from bot.slack.blocks.lifecycle import Verb
from bot.slack.failures import error_id_of
from bot.slack.handlers.common import resolve
from bot.slack.invocation import Invocation
from bot.slack.parser import Command
from bot.slack.services import Services
from bot.store.queries import record_restart, record_status_change, upsert_instances
from bot.store.records import InstanceSnapshot

log = logging.getLogger(__name__)

GONE_STATUSES = frozenset({"stopped", "deleted", "terminated"})
FAILED_STATUSES = frozenset({"error"})
FRESH_UPTIME_SLACK_SECS = 2.0


class Announcement:
    """The channel message that follows one action; private when the channel refuses it."""

    def __init__(self, svc: Services, inv: Invocation) -> None:
        self._svc = svc
        self._inv = inv
        self.channel: str | None = None
        self.ts: str | None = None

    async def post(self, message: Reply) -> None:
        """Post in the invocation's channel, or tell the user privately why not."""
        web = self._svc.deps.web
        if self._inv.channel_id:
            try:
                response = await web.chat_postMessage(
                    channel=self._inv.channel_id,
                    unfurl_links=False,
                    unfurl_media=False,
                    **message.kwargs(),
                )
                self.channel, self.ts = response["channel"], response["ts"]
                return
            except SlackApiError as exc:
                reason = str(exc.response.get("error") or exc)
                log.info("could not announce in %s: %s", self._inv.channel_id, reason)
            except (SlackClientError, OSError, TimeoutError) as exc:
                reason = str(exc)
                log.warning("could not announce in %s: %s", self._inv.channel_id, reason)
        else:
            reason = "no channel"
        await self._inv.respond(blocks.not_announced_note(reason))
        await self._inv.respond(message)

    async def update(self, message: Reply) -> None:
        """Edit the announcement in place (or answer privately when it was not posted)."""
        if self.ts is not None and self.channel is not None:
            try:
                await self._svc.deps.web.chat_update(
                    channel=self.channel, ts=self.ts, **message.kwargs()
                )
                return
            except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
                log.warning("could not update the announcement %s: %s", self.ts, exc)
        await self._inv.respond(message)


@dataclass(frozen=True)
class Outcome:
    """Where the polling ended: done, failed (entered an error status) or still going."""

    state: str  # "done", "failed", "pending"
    status: str  # the raw status last seen ("deleted" when the backend forgot it)
    instance: Instance | None


async def restart(svc: Services, inv: Invocation, cmd: Command) -> None:
    """`/starpod restart <id>` (also resumes a paused instance)."""
    assert cmd.ref is not None
    await change(svc, inv, Verb.RESTART, await resolve(svc, inv, cmd.ref))


async def pause(svc: Services, inv: Invocation, cmd: Command) -> None:
    """`/starpod pause <id>`."""
    assert cmd.ref is not None
    await change(svc, inv, Verb.PAUSE, await resolve(svc, inv, cmd.ref))


async def kill_prompt(svc: Services, inv: Invocation, cmd: Command) -> None:
    """`/starpod kill <id>`: only a confirmation; nothing is killed until it is clicked."""
    assert cmd.ref is not None
    instance = await resolve(svc, inv, cmd.ref)
    inv.draft.detail = "confirmation shown; nothing killed yet"
    await inv.respond(blocks.kill_confirmation(instance))


async def kill_confirmed(
    svc: Services, inv: Invocation, instance_id: str, *, replace_prompt: bool
) -> None:
    """The confirmed kill (danger button after its confirm dialog)."""
    instance = await resolve(svc, inv, instance_id)
    if replace_prompt:
        # The confirmation goes away at once, so it cannot be clicked a second time.
        target = instance_label(instance)
        await inv.respond(blocks.kill_requested(target, instance.label), replace=True)
    await change(svc, inv, Verb.KILL, instance)


async def create(svc: Services, inv: Invocation, cmd: Command) -> None:
    """`/starpod create [--name N] [--region R]`."""
    name, region = cmd.options.name, cmd.options.region
    target = "a new instance" + (f" {bold(name)}" if name else "")
    target += f" in {escape(region)}" if region else ""
    plain = "a new instance" + (f" {name}" if name else "") + (f" in {region}" if region else "")
    announcement = Announcement(svc, inv)
    await announcement.post(blocks.announce_started(Verb.CREATE, target, plain, inv.user_id))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        try:
            created = await svc.deps.backend.create_instance(name=name, region=region)
        except BackendError as exc:
            await _failed(announcement, inv, Verb.CREATE, target, plain, str(exc))
            return
        inv.draft.instance_id = created.id
        target, plain = instance_label(created), created.label
        outcome = await _wait(svc, Verb.CREATE, created, "creating", started)
        await _finish(svc, inv, announcement, Verb.CREATE, created, None, outcome, started)
    except Exception as exc:
        await _crashed(announcement, inv, Verb.CREATE, target, plain, exc)
        raise


async def change(svc: Services, inv: Invocation, verb: Verb, instance: Instance) -> None:
    """Pause, restart or kill ``instance``, announced and followed to the end."""
    busy = svc.inflight.claim(instance.id, verb.value, inv.user_id)
    if busy is not None:
        detail = f"{instance.label}: a {busy.verb} is already in progress"
        inv.draft.fail("error", detail)
        text = (
            f"⏳ {instance_label(instance)}: {user(busy.actor)} started a {escape(busy.verb)} "
            f"{duration(svc.inflight.age(busy))} ago and it is still running. "
            "Wait for it to finish; its announcement in the channel will say when."
        )
        await inv.respond(reply(detail, [section(text)]))
        return
    try:
        await _change(svc, inv, verb, instance)
    finally:
        svc.inflight.release(instance.id)


async def _change(svc: Services, inv: Invocation, verb: Verb, instance: Instance) -> None:
    target, plain = instance_label(instance), instance.label
    announcement = Announcement(svc, inv)
    await announcement.post(blocks.announce_started(verb, target, plain, inv.user_id))
    loop = asyncio.get_running_loop()
    started = loop.time()
    backend = svc.deps.backend
    try:
        try:
            if verb is Verb.RESTART:
                await backend.restart_instance(instance.id)
            elif verb is Verb.PAUSE:
                await backend.pause_instance(instance.id)
            else:
                await backend.kill_instance(instance.id)
        except BackendError as exc:
            await _failed(announcement, inv, verb, target, plain, str(exc))
            if verb is Verb.RESTART:
                await _store_restart(svc, inv, instance.id, ok=False, error=str(exc))
            return
        outcome = await _wait(svc, verb, instance, instance.status, started)
        await _finish(svc, inv, announcement, verb, instance, instance.status_raw, outcome, started)
    except Exception as exc:
        await _crashed(announcement, inv, verb, target, plain, exc)
        raise


async def _failed(
    announcement: Announcement, inv: Invocation, verb: Verb, target: str, plain: str, error: str
) -> None:
    inv.draft.fail("error", error)
    await announcement.update(blocks.announce_failed(verb, target, plain, inv.user_id, error))


async def _crashed(
    announcement: Announcement,
    inv: Invocation,
    verb: Verb,
    target: str,
    plain: str,
    exc: Exception,
) -> None:
    # The announcement must not stay at "restarting…" forever because of our own bug.
    error_id = error_id_of(exc)
    with_id = f"unexpected error on the bot's side (error id {error_id})"
    try:
        await announcement.update(blocks.announce_failed(verb, target, plain, inv.user_id, with_id))
    except Exception:
        log.exception("could not mark the announcement as failed")


def _reached(verb: Verb, current: Instance, before: str, elapsed: float) -> bool | None:
    """True when done, False when failed, None when still in progress."""
    status = current.status
    if status in FAILED_STATUSES and verb is not Verb.KILL:
        return False
    if verb is Verb.PAUSE:
        return status == "paused" or None
    if verb is Verb.KILL:
        return status in GONE_STATUSES or None
    if status != "running":
        return None
    if verb is Verb.CREATE or before != "running":
        return True
    # Restarting a running instance: "running" proves nothing, a fresh uptime does.
    health = current.health
    if health is not None:
        return health.uptime_secs <= elapsed + FRESH_UPTIME_SLACK_SECS or None
    return None


async def _wait(
    svc: Services, verb: Verb, instance: Instance, before: str, started: float
) -> Outcome:
    """Poll the backend until the action's end state, a failure, or the time limit."""
    deps = svc.deps
    loop = asyncio.get_running_loop()
    deadline = started + deps.action_poll_timeout
    last_status, last = instance.status_raw, instance
    while True:
        elapsed = loop.time() - started
        try:
            current = await deps.backend.get_instance(instance.id)
            if (
                verb is Verb.RESTART
                and current.status == "running"
                and before == "running"
                and current.health is None
            ):
                health = await deps.backend.get_health(instance.id)
                current = current.model_copy(update={"health": health})
        except BackendStatusError as exc:
            if exc.status_code == 404 and verb is Verb.KILL:
                return Outcome("done", "deleted", None)
            log.info("polling %s after %s: %s", instance.id, verb, exc)
            current = None
        except BackendError as exc:
            log.info("polling %s after %s: %s", instance.id, verb, exc)
            current = None
        if current is not None:
            last_status, last = current.status_raw, current
            reached = _reached(verb, current, before, elapsed)
            if reached is True:
                return Outcome("done", current.status_raw, current)
            if reached is False:
                return Outcome("failed", current.status_raw, current)
        if loop.time() >= deadline:
            return Outcome("pending", last_status, last)
        # Waiting is not working: the slot goes to another request meanwhile.
        async with svc.work.waiting():
            await asyncio.sleep(min(deps.action_poll_interval, max(0.0, deadline - loop.time())))


async def _finish(
    svc: Services,
    inv: Invocation,
    announcement: Announcement,
    verb: Verb,
    instance: Instance,
    before_raw: str | None,
    outcome: Outcome,
    started: float,
) -> None:
    elapsed = asyncio.get_running_loop().time() - started
    target, plain = instance_label(instance), instance.label
    # The store first: once the channel says "done", history must already say who did it.
    final = outcome.instance or instance
    if outcome.state == "done":
        await _store_change(svc, inv, verb, final, before_raw, outcome.status)
        inv.draft.detail = f"{verb.value} done after {elapsed:.1f} s ({outcome.status})"
        await announcement.update(
            blocks.announce_succeeded(verb, target, plain, inv.user_id, elapsed)
        )
        return
    if outcome.state == "failed":
        error = f"the instance ended in status {outcome.status}"
        await _store_change(svc, inv, verb, final, before_raw, outcome.status)
        if verb is Verb.RESTART:
            await _store_restart(svc, inv, instance.id, ok=False, error=error)
        await _failed(announcement, inv, verb, target, plain, error)
        return
    inv.draft.detail = f"{verb.value} accepted; still {outcome.status} after {elapsed:.0f} s"
    await announcement.update(
        blocks.announce_unconfirmed(verb, target, plain, inv.user_id, elapsed, outcome.status)
    )


async def _store_change(
    svc: Services,
    inv: Invocation,
    verb: Verb,
    instance: Instance,
    before_raw: str | None,
    after_raw: str,
) -> None:
    """Record who changed the status (history shows it), and the new status as known.

    The instance row gets the new status too, so the monitor's next sweep does not record
    the same change again as one it discovered.
    """
    now = svc.deps.clock()
    snapshot = InstanceSnapshot(instance.id, instance.name, instance.region, after_raw)

    async def _write(session: AsyncSession) -> None:
        await upsert_instances(session, instances=[snapshot], seen_at=now)
        if before_raw is None or before_raw.lower() != after_raw.lower():
            await record_status_change(
                session,
                instance_id=instance.id,
                from_status=before_raw,
                to_status=after_raw,
                at=now,
                cause="user",
                actor=inv.user_id,
                reason=f"{verb.value} from Slack",
            )
        if verb is Verb.RESTART:
            await record_restart(
                session, instance_id=instance.id, at=now, cause="user", actor=inv.user_id
            )

    try:
        await svc.deps.db.run(_write)
    except Exception:
        log.exception("could not record the %s of %s in the store", verb.value, instance.id)


async def _store_restart(
    svc: Services, inv: Invocation, instance_id: str, *, ok: bool, error: str | None
) -> None:
    now = svc.deps.clock()

    async def _write(session: AsyncSession) -> None:
        await record_restart(
            session,
            instance_id=instance_id,
            at=now,
            cause="user",
            actor=inv.user_id,
            ok=ok,
            error=error,
        )

    try:
        await svc.deps.db.run(_write)
    except Exception:
        log.exception("could not record the failed restart of %s", instance_id)
