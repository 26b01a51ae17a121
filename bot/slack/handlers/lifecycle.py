"""Actions that change an instance: create, pause, restart, kill.

Each is announced in the channel, naming who did it, then the announcement is edited
when the backend reaches the new status (polled briefly, bounded by
``deps.action_poll_timeout``), or says it failed and why, or that the backend is still
working on it. ``kill`` from the slash command only shows a confirmation; the kill
happens on the click. The work itself (the lock, the backend call, the wait, the
records) is :class:`bot.instances.InstanceActions`'s; this module presents its results. One
action per instance at a time, across replicas: a second one (a double tap, a colleague
at the same moment on another replica) is told what is already running.
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.backend.models import Instance
from bot.blockkit.blocks import section
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import bold, duration, escape, user
from bot.catalog import Subcommand
from bot.instances import Actor, Busy, Done, Failed, Holder, Hooks, Pending, Source
from bot.instances import Verb as ActionVerb
from bot.slack import blocks
from bot.slack.blocks.common import instance_label
from bot.slack.blocks.lifecycle import Verb
from bot.slack.failures import error_id_of
from bot.slack.handlers.common import resolve
from bot.slack.invocation import Invocation
from bot.slack.parser import Command
from bot.slack.services import Services
from bot.store.errors import StoreUnwritable

log = logging.getLogger(__name__)

#: How long the announcement of an action cut short by shutdown may take to be edited.
CUT_SHORT_UPDATE_SECS = 2.0


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


async def restart(svc: Services, inv: Invocation, cmd: Command) -> None:
    """`/starpod restart <id>` (also resumes a paused instance)."""
    assert cmd.ref is not None
    await change(svc, inv, Verb.RESTART, await resolve(svc, inv, cmd.ref, cmd.subcommand))


async def pause(svc: Services, inv: Invocation, cmd: Command) -> None:
    """`/starpod pause <id>`."""
    assert cmd.ref is not None
    await change(svc, inv, Verb.PAUSE, await resolve(svc, inv, cmd.ref, cmd.subcommand))


async def kill_prompt(svc: Services, inv: Invocation, cmd: Command) -> None:
    """`/starpod kill <id>`: only a confirmation; nothing is killed until it is clicked."""
    assert cmd.ref is not None
    instance = await resolve(svc, inv, cmd.ref, cmd.subcommand)
    token = await svc.kill_confirmations.issue(instance_id=instance.id, user_id=inv.user_id)
    inv.draft.detail = "confirmation shown; nothing killed yet"
    inv.changes_nothing = True
    await inv.respond(blocks.kill_confirmation(instance, token))


async def kill_confirmed(
    svc: Services, inv: Invocation, instance_id: str, *, replace_prompt: bool
) -> None:
    """The confirmed kill (danger button after its confirm dialog)."""
    instance = await resolve(svc, inv, instance_id, Subcommand.KILL)
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

    async def announce(_instance: Instance | None) -> None:
        await announcement.post(blocks.announce_started(Verb.CREATE, target, plain, inv.user_id))

    try:
        result = await svc.actions.create(
            Actor.slack(inv.user_id),
            name=name,
            region=region,
            wait_secs=svc.deps.action_poll_timeout,
            hooks=Hooks(on_started=announce, while_waiting=svc.work.waiting),
        )
        if result.instance is not None:
            inv.draft.instance_id = result.instance.id
            target, plain = instance_label(result.instance), result.instance.label
        await _present(inv, announcement, result, target, plain)
    except asyncio.CancelledError:
        await _cut_short(announcement, inv, Verb.CREATE, target, plain)
        raise
    except Exception as exc:
        await _crashed(announcement, inv, Verb.CREATE, target, plain, exc)
        raise


async def change(svc: Services, inv: Invocation, verb: Verb, instance: Instance) -> None:
    """Pause, restart or kill ``instance``, announced and followed to the end.

    A second action on the instance while one runs (here or on another replica) is told
    what is already running, and nothing is announced.
    """
    target, plain = instance_label(instance), instance.label
    announcement = Announcement(svc, inv)

    async def announce(_instance: Instance | None) -> None:
        await announcement.post(blocks.announce_started(verb, target, plain, inv.user_id))

    try:
        result = await svc.actions.run(
            ActionVerb(verb.value),
            instance,
            Actor.slack(inv.user_id),
            wait_secs=svc.deps.action_poll_timeout,
            hooks=Hooks(on_started=announce, while_waiting=svc.work.waiting),
        )
        if isinstance(result, Busy):
            await _busy(inv, instance, result)
            return
        await _present(inv, announcement, result, target, plain)
    except asyncio.CancelledError:
        await _cut_short(announcement, inv, verb, target, plain)
        raise
    except Exception as exc:
        await _crashed(announcement, inv, verb, target, plain, exc)
        raise


def running_who(holder: Holder) -> str:
    """Who holds a lease, in mrkdwn: a Slack mention, a gateway key, or the monitor."""
    who = holder.who
    if who.source in (Source.SLACK, Source.INCIDENT) and who.id:
        return user(who.id)
    if who.source is Source.MONITOR or not who.id:
        return "the health monitor"
    return f"`{escape(who.id)}`"


def busy_text(label: str, busy: Busy) -> str:
    """``⏳ <label>: <who> started a <verb> <age> ago and it is still running.``"""
    running = busy.running
    return (
        f"⏳ {label}: {running_who(running)} started a {escape(running.verb)} "
        f"{duration(busy.age_secs)} ago and it is still running."
    )


async def _busy(inv: Invocation, instance: Instance, busy: Busy) -> None:
    detail = f"{instance.label}: a {busy.running.verb} is already in progress"
    inv.draft.fail("error", detail)
    text = busy_text(instance_label(instance), busy) + " Wait for it to finish"
    # Only an action asked for in Slack has an announcement in a channel to watch.
    announced = busy.running.who.source in (Source.SLACK, Source.INCIDENT)
    text += "; its announcement in the channel will say when." if announced else "."
    await inv.respond(reply(detail, [section(text)]))


async def _present(
    inv: Invocation,
    announcement: Announcement,
    result: Done | Failed | Pending,
    target: str,
    plain: str,
) -> None:
    """Edit the announcement to say how the action ended (the store already says it)."""
    verb = Verb(result.verb.value)
    elapsed = result.elapsed
    if isinstance(result, Done):
        inv.draft.detail = f"{verb.value} done after {elapsed:.1f} s ({result.status})"
        await announcement.update(
            blocks.announce_succeeded(verb, target, plain, inv.user_id, elapsed)
        )
    elif isinstance(result, Failed):
        await _failed(announcement, inv, verb, target, plain, result.error)
    else:
        inv.draft.detail = f"{verb.value} accepted; still {result.status} after {elapsed:.0f} s"
        await announcement.update(
            blocks.announce_unconfirmed(verb, target, plain, inv.user_id, elapsed, result.status)
        )


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
    if isinstance(exc, StoreUnwritable):
        if announcement.ts is None:
            return  # nothing announced: the error answer (failures.py) says it once
        with_id = str(exc)
    else:
        with_id = f"unexpected error on the bot's side (error id {error_id_of(exc)})"
    try:
        await announcement.update(blocks.announce_failed(verb, target, plain, inv.user_id, with_id))
    except Exception:
        log.exception("could not mark the announcement as failed")


async def _cut_short(
    announcement: Announcement, inv: Invocation, verb: Verb, target: str, plain: str
) -> None:
    # Shutdown cancelled the work (its grace ran out) while the backend was asked or
    # followed: nothing failed that we saw, so say the outcome is unknown and how to check
    # (the audit row says "interrupted", written by the listener pipeline).
    try:
        async with asyncio.timeout(CUT_SHORT_UPDATE_SECS):
            await announcement.update(blocks.announce_cut_short(verb, target, plain, inv.user_id))
    except Exception:
        log.warning("could not say that the %s of %s was cut short", verb.value, plain)
