"""Read-only answers (ephemeral): help, list, health, logs, history, audit, status."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.backend.errors import BackendError
from bot.backend.models import HealthInfo
from bot.blockkit.sparkline import bucketize
from bot.config import Role
from bot.monitor.liveness import STALL_INTERVALS
from bot.slack import blocks
from bot.slack.blocks.fleet import ListQuery
from bot.slack.handlers.common import resolve, resolve_past
from bot.slack.invocation import Invocation
from bot.slack.parser import Command
from bot.slack.services import Services
from bot.store.database import Database
from bot.store.errors import StoreUnwritable
from bot.store.heartbeats.reads import last_recorded_at
from bot.store.queries import heartbeat_history, status_history, uptime_ratio
from bot.store.write_probe import write_refusal

log = logging.getLogger(__name__)

SPARK_BUCKETS = 30  # two minutes each over the last hour: fits a phone's width
STATUS_PROBE_TIMEOUT = 5.0


async def _write_refusal(db: Database) -> str | None:
    """The readiness probe's write check, bounded: a status answer must come back."""
    try:
        async with asyncio.timeout(STATUS_PROBE_TIMEOUT):
            return await write_refusal(db)
    except TimeoutError:
        return f"a write did not commit within {STATUS_PROBE_TIMEOUT:.0f} s"
    except Exception as exc:
        log.exception("write probe failed")
        return f"write probe failed: {type(exc).__name__}"


async def show_help(svc: Services, inv: Invocation, cmd: Command) -> None:
    """Help, with the asker's role at the bottom."""
    role = await svc.access.role_of(inv.user_id)
    reply = blocks.help_message(
        topic=cmd.options.topic, role=role, open_access=not svc.access.configured
    )
    await inv.respond(reply)


async def show_list(svc: Services, inv: Invocation, cmd: Command) -> None:
    """The first page of the fleet, filtered."""
    await show_list_page(svc, inv, ListQuery(cmd.options.status, cmd.options.region, 0))


async def show_list_page(
    svc: Services, inv: Invocation, query: ListQuery, *, replace: bool = False
) -> None:
    """One page of the fleet (``replace``: in place of the page the user paged from)."""
    instances = await svc.deps.backend.list_instances()
    reply = blocks.list_page(
        instances, query, now=svc.deps.clock(), per_page=svc.deps.list_page_size
    )
    await inv.respond(reply, replace=replace)


async def show_health(svc: Services, inv: Invocation, cmd: Command) -> None:
    """Live figures from the backend, the last hour and 24 h uptime from the store."""
    assert cmd.ref is not None
    instance = await resolve(svc, inv, cmd.ref, cmd.subcommand)
    health: HealthInfo | None = None
    health_error: str | None = None
    try:
        health = await svc.deps.backend.get_health(instance.id)
    except BackendError as exc:
        health_error = str(exc)
    now = svc.deps.clock()
    start = now - timedelta(hours=1)
    cpu: list[float | None] = []
    memory: list[float | None] = []
    samples = 0
    ratio: float | None = None
    try:
        async with svc.deps.db.session() as session:
            history = await heartbeat_history(session, instance.id, since=start, until=now)
            ratio = await uptime_ratio(
                session, instance.id, since=now - timedelta(hours=24), until=now
            )
        samples = len(history)
        if history:
            cpu = bucketize(
                [(s.sampled_at, s.cpu_percent) for s in history],
                start=start,
                end=now,
                buckets=SPARK_BUCKETS,
            )
            memory = bucketize(
                [(s.sampled_at, float(s.memory_mb)) for s in history],
                start=start,
                end=now,
                buckets=SPARK_BUCKETS,
            )
    except Exception:
        # The live figures are what matters at 3 a.m.; a store hiccup only hides history.
        log.exception("could not read stored history of %s", instance.id)
    try:
        # The card's kill button works once, for the user it is shown to.
        kill_token: str | None = await svc.kill_confirmations.issue(
            instance_id=instance.id, user_id=inv.user_id
        )
    except StoreUnwritable as exc:
        # The card still answers; its kill button is refused (a kill needs writes anyway).
        log.debug("health card without a kill confirmation: %s", exc)
        kill_token = None
    view = blocks.HealthView(
        instance=instance,
        now=now,
        stale_after_secs=svc.settings.monitor.heartbeat_timeout_secs,
        health=health,
        health_error=health_error,
        cpu=cpu,
        memory=memory,
        samples=samples,
        uptime_24h=ratio,
        kill_token=kill_token,
    )
    await inv.respond(blocks.health_card(view))


async def show_logs(svc: Services, inv: Invocation, cmd: Command) -> None:
    """The last N lines, filtered; uploaded to the user's DM when too long for a message."""
    assert cmd.ref is not None
    instance = await resolve(svc, inv, cmd.ref, cmd.subcommand)
    opts = cmd.options
    fetched = await svc.deps.backend.tail_logs(instance.id, tail=opts.tail)
    entries = fetched.entries
    shown = blocks.filter_entries(entries, level=opts.level, grep=opts.grep)
    answer = blocks.log_answer(
        instance,
        shown,
        fetched=len(entries),
        tail=opts.tail,
        level=opts.level,
        grep=opts.grep,
        truncated=fetched.truncated,
    )
    if answer.file is not None:
        try:
            # The file goes to the user's DM with the bot, so a read-only answer stays
            # private, as the ephemeral message is. Slack shares files in conversations only
            # (C…/G…/D… ids, never a user id): conversations.open gives the DM's id.
            opened = await svc.deps.web.conversations_open(users=inv.user_id)
            await svc.deps.web.files_upload_v2(
                content=answer.file.content,
                filename=answer.file.filename,
                title=answer.file.title,
                channel=opened["channel"]["id"],
            )
        except (SlackApiError, SlackClientError, OSError, TimeoutError) as exc:
            log.warning("log upload for %s failed: %s", inv.user_id, exc)
            inv.draft.fail("error", f"log file upload failed: {exc}")
            await inv.respond(
                blocks.user_error_answer(
                    f"{len(shown)} log lines are too long for a message and the file upload "
                    f"failed ({exc}). Try a smaller --tail or a --grep."
                )
            )
            return
    await inv.respond(answer.reply)


async def show_history(svc: Services, inv: Invocation, cmd: Command) -> None:
    """The latest recorded status changes, even for an instance that is gone."""
    assert cmd.ref is not None
    instance = await resolve_past(svc, inv, cmd.ref, cmd.subcommand)
    async with svc.deps.db.session() as session:
        changes = await status_history(session, instance.id, limit=20)
    await inv.respond(blocks.history_message(instance, changes, now=svc.deps.clock()))


async def show_audit(svc: Services, inv: Invocation, cmd: Command) -> None:
    """The latest 20 audit entries, of everything or of one instance."""
    instance_id: str | None = None
    if cmd.ref is not None:
        instance_id = (await resolve_past(svc, inv, cmd.ref, cmd.subcommand)).id
    entries = await svc.audit.latest(instance_id=instance_id, limit=20)
    await inv.respond(blocks.audit_message(entries, instance_ref=cmd.ref))


async def show_status(svc: Services, inv: Invocation, cmd: Command) -> None:
    """The bot's own health: backend, database, monitor, incidents."""
    deps = svc.deps
    started = time.perf_counter()
    try:
        instances = await asyncio.wait_for(
            deps.backend.list_instances(), timeout=STATUS_PROBE_TIMEOUT
        )
        took = (time.perf_counter() - started) * 1000
        backend_ok, detail = True, f"answered in {took:.0f} ms, {len(instances)} instances"
        fleet: int | None = len(instances)
    except TimeoutError:
        fleet = None
        backend_ok, detail = False, f"no answer within {STATUS_PROBE_TIMEOUT:.0f} s"
    except BackendError as exc:
        backend_ok, detail, fleet = False, str(exc), None
    incidents = None
    incidents_error = None
    if deps.alerts is not None:
        try:
            incidents = list(await deps.alerts.open_incidents())
        except Exception as exc:
            log.exception("could not list open incidents")
            incidents_error = type(exc).__name__
    database_ok = await deps.db.ping()
    refusal = await _write_refusal(deps.db) if database_ok else None
    worker = None
    if deps.monitor is None and svc.settings.role == Role.WEB and database_ok:
        worker = await _worker_view(svc, expects_samples=fleet != 0)
    view = blocks.BotStatusView(
        now=deps.clock(),
        version=deps.version,
        backend_ok=backend_ok,
        backend_detail=detail,
        database_ok=database_ok,
        database_refusal=refusal,
        monitor=deps.monitor.status() if deps.monitor is not None else None,
        incidents=incidents,
        incidents_error=incidents_error,
        worker=worker,
    )
    await inv.respond(blocks.status_message(view))


async def _worker_view(svc: Services, *, expects_samples: bool) -> blocks.WorkerView | None:
    """A web process's view of the worker: when its sweeps last recorded samples."""
    try:
        async with svc.deps.db.session() as session:
            at = await last_recorded_at(session)
    except Exception as exc:  # the database line already says what is wrong with it
        log.warning("could not read when the worker last recorded samples: %s", exc)
        return None
    return blocks.WorkerView(
        last_recorded_at=at,
        stalled_after_secs=STALL_INTERVALS * svc.settings.monitor.interval_secs,
        expects_samples=expects_samples,
    )
