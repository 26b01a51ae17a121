"""``build(settings)``: every part of the bot, constructed and wired, nothing opened yet.

The runtime, the demo (which runs the runtime) and the tests construct the bot here, so
there is one place that says which part talks to which::

    parts = build(settings)          # no I/O: no connection, no query, no socket bound
    await parts.db.upgrade()         # opening, in order, is the runtime's job
    ...

It must be called with an event loop running (the aiohttp session and the scheduler
belong to it). Nothing is started: the scheduler is not running, the web server is not
bound, Socket Mode is not connected; closing each part is the caller's job too (the
runtime does it in reverse order of opening).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy import func, select

from bot.backend.client import InstanceClient
from bot.collector import IdleCollector
from bot.config import WorkerScheduling
from bot.errors import ConfigError
from bot.heap import SweepTrimmer
from bot.instances import InstanceActions
from bot.metrics import AckLatencyMiddleware, Metrics, create_metrics, metrics_route
from bot.monitor.own_loop import SweepLoop
from bot.priority import precedence_of
from bot.probes import OK, Readiness, SlackCheck, database_check, readyz_route
from bot.scheduling import TrackedScheduler, new_scheduler
from bot.store.database import Database
from bot.store.errors import StoreUnwritable
from bot.tasks import TaskTracker
from bot.worker_priority import CpuPriority, StarvedSweepWarning, current_priority

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.alerts.service import AlertService
    from bot.alerts.store_outage import StoreOutageNotice
    from bot.config import Settings
    from bot.monitor import HealthMonitor, MonitorHandle
    from bot.slack.home import HomeService
    from bot.store.audit import AuditLog
    from bot.store.ssh_links import SshLinkService
    from bot.web.server import WebServer

Clock = Callable[[], datetime]

SSH_PURGE_JOB_ID = "starpod-ssh-links-purge"
AUDIT_PRUNE_JOB_ID = "starpod-audit-prune"
#: The audit prune runs this long after start, then every AUDIT_PRUNE_EVERY_SECS.
AUDIT_PRUNE_FIRST_SECS = 30.0
AUDIT_PRUNE_EVERY_SECS = 3600.0
#: The SQLite page cache of the sweep's own engine (KiB).
SWEEP_CACHE_KIB = 2048


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Parts:
    """The bot's parts, wired to each other; see :func:`build`."""

    settings: Settings
    clock: Clock
    metrics: Metrics
    readiness: Readiness
    db: Database
    client: InstanceClient
    slack_session: aiohttp.ClientSession
    web: AsyncWebClient
    slack_check: SlackCheck
    monitor: HealthMonitor
    #: None in a web process (role web): the monitor is built but never started there.
    monitor_handle: MonitorHandle | None
    #: The sweep's own loop (a thread) and what lives on it; None: the sweep shares this loop.
    sweep: SweepSide | None
    #: Gives the C heap's free memory back after every sweep (bot/heap.py).
    trimmer: SweepTrimmer
    #: A worker at idle CPU priority (bot/worker_priority.py): warns when its sweeps starve.
    starved_sweeps: StarvedSweepWarning | None
    #: Full garbage collections after each sweep, when the Slack loop is idle; the fleet's
    #: freeze after the first recorded sweep (bot/collector.py). Started by the runtime.
    collector: IdleCollector
    alerts: AlertService
    store_outage: StoreOutageNotice
    ssh_links: SshLinkService
    scheduler: TrackedScheduler
    listeners: TaskTracker
    #: None in a worker (role worker): it takes no Slack request.
    slack_app: AsyncApp | None
    #: Publishes users' App Homes; its pending debounced refresh is stopped at shutdown.
    home: HomeService | None
    server: WebServer
    gateway_on: bool


@dataclass
class SweepSide:
    """The sweep's thread and the parts built for its loop: a backend client, a database
    engine on the same URL, and the instance actions over them (auto-restarts)."""

    loop: SweepLoop
    client: InstanceClient
    db: Database
    actions: InstanceActions

    async def aclose(self) -> None:
        """Close the client and the engine on the sweep's loop, then end its thread."""
        await self.loop.aclose([self.client.aclose, self.db.dispose])


def required_settings_problems(settings: Settings) -> list[str]:
    """What the bot cannot start without, one line each (empty when all is set)."""
    from bot.config import missing_message

    problems = []
    if not settings.backend.url:
        problems.append(missing_message("backend.url"))
    if settings.slack.bot_token is None:
        problems.append(missing_message("slack.bot_token"))
    if (
        settings.serves_slack
        and settings.slack.signing_secret is None
        and settings.slack.app_token is None
    ):
        problems.append(
            "Slack needs SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode): "
            "export one of them"
        )
    return problems


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    slack_recheck_secs: float = 60.0,
    priority: CpuPriority | None = None,
) -> Parts:
    """Construct every part for ``settings``; raises ConfigError naming each missing setting.

    ``clock`` (aware datetimes) is handed to every part that reads time; ``metrics``
    defaults to a private registry; ``slack_recheck_secs`` is how long ``/readyz`` trusts
    the last ``auth.test``; ``priority`` is the CPU priority the process runs at (default:
    the calling thread's, as the kernel reports it; bot/worker_priority.py).
    """
    from bot.alerts.jobs import register_jobs as register_alert_jobs
    from bot.alerts.service import AlertService
    from bot.alerts.store_outage import check_every_secs
    from bot.alerts.store_outage import register_job as register_outage_job
    from bot.monitor import HealthMonitor
    from bot.monitor import register_jobs as register_monitor_jobs
    from bot.slack.deps import build_web_client
    from bot.slack.token_check import slack_auth_now
    from bot.store.audit import AuditLog
    from bot.store.ssh_links import SshLinkService

    problems = required_settings_problems(settings)
    if problems:
        raise ConfigError("; ".join(problems))
    clock = clock or _utcnow
    metrics = metrics or create_metrics()
    db = Database(settings.database.url)
    backend = settings.backend

    def new_client() -> InstanceClient:
        return InstanceClient(
            settings.require_backend_url(),
            backend.api_key.get_secret_value() if backend.api_key else None,
            timeout=backend.timeout_secs,
            observer=metrics.observe_backend,
        )

    client = new_client()
    slack_session = aiohttp.ClientSession()
    web = build_web_client(settings, session=slack_session)
    # One instance-action service for Slack, the gateway and the monitor's auto-restarts.
    actions = InstanceActions(client, db, clock=clock)
    # The Slack loop's busy mark when it is a foreground loop (the CLI runs the bot on one:
    # bot.priority); the sweep's loop and the collector let that loop's work pass first.
    slack_gate = precedence_of(asyncio.get_running_loop())
    # The sweep runs on a loop of its own, in a thread, so Slack acknowledgements never wait
    # behind it; loop-bound parts (HTTP pool, database connections) are its own. An
    # in-memory SQLite database cannot be shared by two engines: the sweep stays here.
    sweep: SweepSide | None = None
    runs_monitor = settings.runs_monitor
    if runs_monitor and (db.dialect != "sqlite" or db.sqlite_path is not None):
        # One refusal episode for the database, whichever loop's write met it first. The
        # sweep writes samples and reads a few statuses: a small page cache. At the
        # default size its cache filled with index pages, +2 MB RSS a sweep at 10,000
        # instances until 32 MiB (bench/soak.py).
        sweep_db = Database(settings.database.url, writes=db.writes, cache_kib=SWEEP_CACHE_KIB)
        sweep_client = new_client()
        sweep = SweepSide(
            SweepLoop(gate=slack_gate),
            sweep_client,
            sweep_db,
            InstanceActions(sweep_client, sweep_db, clock=clock),
        )
    # A sweep's working set is freed when it ends, but glibc keeps the pages: without a
    # trim the RSS stays at the largest sweep's high-water mark (BENCHMARKS.md, soak).
    trimmer = SweepTrimmer()
    # CPython's own full collections came mid-sweep and stalled Slack's acks (GIL): they
    # run after each sweep instead, once the Slack loop is idle.
    collector = IdleCollector(slack_gate)
    monitor = (
        HealthMonitor.from_settings(
            sweep.client if sweep else client,
            sweep.db if sweep else db,
            settings.monitor,
            settings.alerts,
            clock=clock,
        )
        .with_actions(sweep.actions if sweep else actions)
        .on_sweep(metrics.observe_sweep_report)
        .on_sweep(trimmer)
        .on_sweep(collector)
        .on_own_loop(sweep.loop if sweep else None)
    )
    # At idle priority a busy host can starve the sweeps; the worker cannot take its
    # priority back without privileges, so its log says what to change. From the priority
    # the process got (the CLI took it before any thread), not the one it asked for.
    starved_sweeps = None
    if (priority or current_priority()).policy == WorkerScheduling.IDLE and runs_monitor:
        starved_sweeps = StarvedSweepWarning(monitor.fetch_deadline_secs)
        monitor.on_sweep(starved_sweeps)
    alerts = AlertService.from_settings(
        settings,
        db,
        clock=clock,
        # A web process never campaigns, so never leads: the worker delivers.
        is_leader=lambda: monitor.is_leader,
        session=slack_session,
        client=client,
    )
    links = SshLinkService.from_settings(settings, db, clock=clock)
    outage = _store_outage_notice(settings, db, web, monitor)

    scheduler = new_scheduler()
    handle: MonitorHandle | None = None
    if runs_monitor:
        # The sweeps' side: a web process (role web) schedules none of it; its monitor is
        # built (Slack's answers read nothing from it) but never started.
        alerts.attach(monitor)
        handle = register_monitor_jobs(scheduler, monitor=monitor, db=db, settings=settings.monitor)
        register_alert_jobs(scheduler, service=alerts)
        register_outage_job(scheduler, outage, check_every_secs(settings.monitor.interval_secs))
        _register_ssh_purge(scheduler, links)
        audit = AuditLog(db, clock)
        register_audit_prune(scheduler, audit, keep_days=settings.database.audit_retention_days)

    async def auth_now() -> str | None:
        return await slack_auth_now(web)

    slack_check = SlackCheck(auth_now, recheck_secs=slack_recheck_secs)
    readiness = Readiness()
    readiness.add("database", database_check(db))
    readiness.add("slack", slack_check)
    if runs_monitor:
        readiness.add("monitor", _monitor_check(monitor, scheduler))
    _wire_gauges(metrics, db, monitor, alerts)
    if sweep is not None and sweep.loop.gate is not None:
        gate = sweep.loop.gate
        metrics.set_counter_source("sweep_yield_seconds", lambda: gate.yielded_secs)
    metrics.set_counter_source("gc_full_collection_seconds", lambda: collector.collected_secs)
    metrics.set_source("ready", lambda: _is_ready(readiness))

    listeners = TaskTracker("Slack listeners")
    slack_app: AsyncApp | None = None
    home: HomeService | None = None
    if settings.serves_slack:
        slack_app, home = _slack_app(
            settings,
            metrics,
            db,
            client,
            web,
            links,
            monitor if runs_monitor else None,
            alerts,
            actions,
            listeners,
            clock,
        )
    server, gateway_on = _web_server(
        settings, metrics, readiness, db, client, links, slack_app, actions, clock
    )
    return Parts(
        settings=settings,
        clock=clock,
        metrics=metrics,
        readiness=readiness,
        db=db,
        client=client,
        slack_session=slack_session,
        web=web,
        slack_check=slack_check,
        monitor=monitor,
        monitor_handle=handle,
        sweep=sweep,
        trimmer=trimmer,
        starved_sweeps=starved_sweeps,
        collector=collector,
        alerts=alerts,
        store_outage=outage,
        ssh_links=links,
        scheduler=scheduler,
        listeners=listeners,
        slack_app=slack_app,
        home=home,
        server=server,
        gateway_on=gateway_on,
    )


def _slack_app(
    settings: Settings,
    metrics: Metrics,
    db: Database,
    client: InstanceClient,
    web: AsyncWebClient,
    links: SshLinkService,
    monitor: HealthMonitor | None,
    alerts: AlertService,
    actions: InstanceActions,
    listeners: TaskTracker,
    clock: Clock,
) -> tuple[AsyncApp, HomeService]:
    from bot.slack.app import create_app
    from bot.slack.deps import SlackDeps
    from bot.slack.services import Services
    from bot.store.audit import AUDIT_OBSERVER, AuditDraft

    def count_command(draft: AuditDraft) -> None:
        # Every Slack command and click ends in one audit row: count it there.
        metrics.observe_command(draft.action, draft.result, source=draft.source)

    deps = SlackDeps(
        backend=client,
        db=db,
        web=web,
        ssh_links=links,
        clock=clock,
        monitor=monitor,
        alerts=alerts,
        actions=actions,
        extra={AUDIT_OBSERVER: count_command},
    )
    services = Services.build(settings, deps)
    # Each request's listener work runs as a tracked task: shutdown drains it.
    app = create_app(settings, deps, services=services, start_work=listeners.track)
    return app, services.home


def _web_server(
    settings: Settings,
    metrics: Metrics,
    readiness: Readiness,
    db: Database,
    client: InstanceClient,
    links: SshLinkService,
    slack_app: AsyncApp | None,
    actions: InstanceActions,
    clock: Clock,
) -> tuple[WebServer, bool]:
    from bot.web.app import create_probe_app
    from bot.web.server import WebServer

    probes = [readyz_route(readiness), metrics_route(metrics)]
    app: Any
    if slack_app is None:
        # A worker (role worker) answers the probes and metrics only: Slack's requests, the
        # gateway and the SSH key links are the web process's.
        app, gateway_on = create_probe_app(probes), False
    else:
        app, gateway_on = _slack_web_app(
            settings, metrics, db, client, links, slack_app, actions, clock, probes
        )
    # log_config=None sends uvicorn's records through the root handler, where secrets are
    # redacted; signals stay with the runtime (see EmbeddedServer).
    server = WebServer(app, host=settings.http.host, port=settings.http.port, log_config=None)
    return server, gateway_on


def _slack_web_app(
    settings: Settings,
    metrics: Metrics,
    db: Database,
    client: InstanceClient,
    links: SshLinkService,
    slack_app: AsyncApp,
    actions: InstanceActions,
    clock: Clock,
    probes: list[Any],
) -> tuple[Any, bool]:
    """Slack's events, the SSH key links, the probes and the gateway (with a key), each
    request's acknowledgement timed; and whether the gateway is on."""
    from bot.gateway import KeyRing, gateway_routes_for
    from bot.store.audit import AuditLog
    from bot.web.app import create_web_app

    keys = KeyRing(settings.gateway.keys)
    gateway = None
    if keys:
        # Here, not above: with no key the bot never imports FastAPI (bot/gateway).
        from bot.gateway import GatewayDeps

        gateway = GatewayDeps(
            client=client,
            db=db,
            keys=keys,
            audit=AuditLog(db, clock),
            clock=clock,
            heartbeat_timeout_secs=settings.monitor.heartbeat_timeout_secs,
            metrics=metrics,
            actions=actions,
        )
    app = create_web_app(
        slack_app=slack_app,
        signing_secret=settings.slack.signing_secret,
        ssh_links=links,
        extra_routes=[*probes, *gateway_routes_for(gateway, public_url=settings.http.public_url)],
    )
    return AckLatencyMiddleware(app, metrics), bool(keys)


def _register_ssh_purge(scheduler: TrackedScheduler, links: SshLinkService) -> None:
    import logging

    from apscheduler.triggers.interval import IntervalTrigger

    log = logging.getLogger(__name__)

    async def purge() -> None:
        try:
            await links.purge()
        except StoreUnwritable as exc:
            log.debug("SSH key link purge waits for the database: %s", exc)  # logged once
        except Exception:
            log.exception("purging expired SSH key links failed")

    scheduler.add_job(
        purge,
        trigger=IntervalTrigger(seconds=60, jitter=5),
        id=SSH_PURGE_JOB_ID,
        name="SSH key link purge",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )


def register_audit_prune(
    scheduler: TrackedScheduler,
    audit: AuditLog,
    *,
    keep_days: int,
    first_secs: float = AUDIT_PRUNE_FIRST_SECS,
    every_secs: float = AUDIT_PRUNE_EVERY_SECS,
) -> None:
    """Delete audit rows older than ``keep_days``: ``first_secs`` after start, then hourly."""
    import logging
    from datetime import timedelta

    from apscheduler.triggers.interval import IntervalTrigger

    log = logging.getLogger(__name__)

    async def prune() -> None:
        try:
            deleted = await audit.prune(keep_days=keep_days)
        except StoreUnwritable as exc:
            log.debug("audit prune waits for the database: %s", exc)  # logged once
            return
        except Exception:
            log.exception("pruning the audit log failed")
            return
        if deleted:
            log.info("pruned %d audit rows older than %d days", deleted, keep_days)

    scheduler.add_job(
        prune,
        trigger=IntervalTrigger(seconds=every_secs, jitter=min(60.0, every_secs / 10)),
        id=AUDIT_PRUNE_JOB_ID,
        name="audit log prune",
        # Shortly after start too: a bot restarted more often than hourly still prunes.
        next_run_time=datetime.now(UTC) + timedelta(seconds=first_secs),
        max_instances=1,
        coalesce=True,
        replace_existing=True,
    )


def _store_outage_notice(
    settings: Settings, db: Database, web: AsyncWebClient, monitor: HealthMonitor
) -> StoreOutageNotice:
    from bot.alerts.store_outage import StoreOutageNotice

    # SQLite has one sweeping process; on PostgreSQL the leader speaks for the replicas. (A
    # web process schedules no outage check: the worker posts.)
    sqlite = db.dialect == "sqlite"
    return StoreOutageNotice(
        db, web, settings.alerts.channel, may_post=lambda: sqlite or monitor.is_leader
    )


def _monitor_check(monitor: HealthMonitor, scheduler: TrackedScheduler) -> Callable[[], Any]:
    async def check() -> str:
        if not monitor.status().running:
            return "stopped: the health sweep is not scheduled"
        if not scheduler.running:
            return "the scheduler is not running"
        return monitor.status().problem or OK

    return check


async def _is_ready(readiness: Readiness) -> bool:
    # The same checks as /readyz, so the alert on this gauge says what the probe says.
    return (await readiness.report()).ready


def _wire_gauges(
    metrics: Metrics, db: Database, monitor: HealthMonitor, alerts: AlertService
) -> None:
    from bot.store.alert_models import AlertIncident, AlertOutbox

    async def count(stmt: Any) -> int:
        async with db.session() as session:
            return int(await session.scalar(stmt) or 0)

    metrics.set_source("leader", lambda: monitor.is_leader)
    metrics.set_source("last_sweep_timestamp", lambda: monitor.last_sweep_timestamp())
    metrics.set_source("monitor_stalled", lambda: monitor.status().problem is not None)
    metrics.set_source("database_writable", lambda: db.writes.writable)
    metrics.set_source(
        "open_incidents",
        lambda: count(
            select(func.count())
            .select_from(AlertIncident)
            .where(AlertIncident.open_key.is_not(None))
        ),
    )
    metrics.set_source(
        "notifications_pending",
        lambda: count(
            select(func.count()).select_from(AlertOutbox).where(AlertOutbox.state == "pending")
        ),
    )
    delivery = alerts.delivery
    if delivery is not None:
        metrics.set_counter_source("notifications_sent", lambda: delivery.sent_total)
        metrics.set_counter_source("notifications_failed", lambda: delivery.failed_total)
