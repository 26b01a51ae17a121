"""The running bot: opens everything in order, serves, and closes it all in reverse.

::

    async with Runtime(settings) as runtime:      # or: await runtime.start() … stop()
        print(runtime.url)                        # the bound web server, e.g. port 0 in tests
        await runtime.wait_for_shutdown()         # until request_shutdown() (SIGTERM/SIGINT)

Opening order, each step needing the ones before it:

1. the database, migrated to head;
2. the backend client (its requests counted in the metrics); a backend that does not
   answer yet is a warning, not a failure;
3. the Slack Web API client, and ``auth.test``: a rejected token stops the start
   (:class:`SlackTokenRejected`, a ConfigError: exit 2), since a bot that cannot talk to
   Slack is useless; an unreachable Slack stops it too (:class:`SlackUnreachable`, exit 1);
4. the health monitor and the leadership: on SQLite a second process is refused
   (``LeadershipRefused``, exit 2); on PostgreSQL a replica that does not lead stands by;
5. the alerts (incidents, outbox delivery), wired to the monitor's events and restarts;
6. one APScheduler ``AsyncIOScheduler`` shared by every job;
7. the Bolt app, then the web server on ``PORT`` (Slack events, ``/healthz``,
   ``/readyz``, ``/metrics``, the gateway under ``/api``, one-time SSH key links);
8. Socket Mode when ``SLACK_APP_TOKEN`` is set (HTTP mode otherwise).

Stopping (``stop()``; SIGTERM/SIGINT through :func:`run`): the web server and Socket Mode
stop taking requests, the scheduler starts no new job, the running sweep and outbox
delivery get 10 s in all to finish, the leadership is released, and the clients and the
database are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp
from sqlalchemy import func, select

from bot.errors import ConfigError, StarpodBotError
from bot.metrics import AckLatencyMiddleware, Metrics, create_metrics, metrics_route
from bot.probes import OK, Readiness, SlackCheck, database_check, readyz_route
from bot.web.server import freeze_startup_heap

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.alerts.service import AlertService
    from bot.backend.client import InstanceClient
    from bot.config import Settings
    from bot.monitor import HealthMonitor, MonitorHandle
    from bot.store.audit import AuditDraft
    from bot.store.database import Database
    from bot.store.ssh_links import SshLinkService
    from bot.web.server import WebServer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: Everything the running jobs (sweep, outbox delivery …) get to finish at shutdown.
SHUTDOWN_GRACE_SECS = 10.0
BACKEND_PROBE_SECS = 5.0
SSH_PURGE_JOB_ID = "starpod-ssh-links-purge"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SlackTokenRejected(ConfigError):
    """``auth.test`` refused the bot token: it is wrong, revoked, or for another workspace."""


class SlackUnreachable(StarpodBotError):
    """The Slack Web API did not answer ``auth.test``."""


def required_settings_problems(settings: Settings) -> list[str]:
    """What ``run`` cannot start without, one line each (empty when all is set)."""
    from bot.config import missing_message

    problems = []
    if not settings.backend.url:
        problems.append(missing_message("backend.url"))
    if settings.slack.bot_token is None:
        problems.append(missing_message("slack.bot_token"))
    if settings.slack.signing_secret is None and settings.slack.app_token is None:
        problems.append(
            "Slack needs SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode): "
            "export one of them"
        )
    return problems


async def slack_auth_problem(web: AsyncWebClient) -> str | None:
    """None when ``auth.test`` accepts the token, else a line saying what is wrong.

    Raises :class:`SlackUnreachable` when Slack does not answer at all.
    """
    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        await web.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        return (
            f"Slack rejected SLACK_BOT_TOKEN (auth.test: {error or 'unknown error'}): "
            "check the bot token of the installed app"
        )
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise SlackUnreachable(
            f"Slack Web API at {web.base_url} did not answer auth.test: {exc or type(exc).__name__}"
        ) from None
    return None


async def _thaw_heap() -> None:
    gc.unfreeze()


class Runtime:
    """The whole bot in one process; see the module docstring for the order of things.

    ``clock`` (aware datetimes) is handed to every part that reads time.
    ``slack_recheck_secs`` is how long ``/readyz`` trusts the last ``auth.test``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        slack_recheck_secs: float = 60.0,
        shutdown_grace_secs: float = SHUTDOWN_GRACE_SECS,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or _utcnow
        self.metrics: Metrics = create_metrics()
        self.readiness = Readiness()
        self._slack_recheck_secs = slack_recheck_secs
        self._grace = shutdown_grace_secs
        self._shutdown = asyncio.Event()
        self._closers: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self._started = False
        self._stopped = False
        self.db: Database | None = None
        self.client: InstanceClient | None = None
        self.web: AsyncWebClient | None = None
        self.monitor: HealthMonitor | None = None
        self.monitor_handle: MonitorHandle | None = None
        self.alerts: AlertService | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.slack_app: AsyncApp | None = None
        self.server: WebServer | None = None
        self.socket_mode: AsyncSocketModeHandler | None = None
        self._links: SshLinkService | None = None
        self._slack_session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"Runtime(url={self.url if self.server else None!r})"

    # -- public API ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The web server's URL, e.g. ``http://127.0.0.1:3000`` (loopback for 0.0.0.0)."""
        if self.server is None:
            raise RuntimeError("the runtime is not started")
        host = self.server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.server.port}"

    def request_shutdown(self) -> None:
        """Ask :meth:`wait_for_shutdown` to return (what SIGTERM and SIGINT do)."""
        self._shutdown.set()

    async def wait_for_shutdown(self) -> None:
        """Block until :meth:`request_shutdown`."""
        await self._shutdown.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- start -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open everything in order; on any failure, close what was opened and re-raise."""
        if self._started:
            raise RuntimeError("this Runtime was already started")
        self._started = True
        try:
            await self._open()
        except BaseException:
            await self._close_all()
            raise

    async def _open(self) -> None:
        settings = self.settings
        problems = required_settings_problems(settings)
        if problems:
            raise ConfigError("; ".join(problems))
        await self._open_database()
        await self._open_backend()
        await self._open_slack_client()
        scheduler = self._open_scheduler()
        await self._open_monitor_and_alerts(scheduler)
        await self._open_web()
        scheduler.start()
        await self._open_socket_mode()
        # The start-up heap is long-lived: keep full collections from walking it and
        # stalling Slack acknowledgements (bench/ack_latency.py: p99 76 ms → 24 ms).
        # Thawed on close, so a process that starts several runtimes (tests) leaks nothing.
        freeze_startup_heap()
        self._on_close("frozen start-up heap", _thaw_heap)
        log.info(
            "starpod-bot is up: %s, %s mode, %s",
            self.url,
            "Socket Mode" if self.socket_mode else "HTTP",
            "leading the health sweeps"
            if self.monitor and self.monitor.is_leader
            else "standing by",
        )

    def _on_close(self, name: str, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append((name, closer))

    async def _open_database(self) -> None:
        from bot.store.database import Database

        db = Database(self.settings.database.url)
        self.db = db
        self._on_close("database", db.dispose)
        await db.upgrade()
        log.info("database %s is at the latest schema", db.safe_url)
        self.readiness.add("database", database_check(db))

    async def _open_backend(self) -> None:
        from bot.backend.client import InstanceClient
        from bot.backend.errors import BackendError

        backend = self.settings.backend
        key = backend.api_key.get_secret_value() if backend.api_key else None
        client = InstanceClient(
            self.settings.require_backend_url(),
            key,
            timeout=backend.timeout_secs,
            observer=self.metrics.observe_backend,
        )
        self.client = client
        self._on_close("backend client", client.aclose)
        try:
            async with asyncio.timeout(BACKEND_PROBE_SECS):
                instances = await client.list_instances()
        except (BackendError, TimeoutError) as exc:
            # The monitor reports an outage in Slack; the bot must be up to do that.
            reason = str(exc) or f"no answer within {BACKEND_PROBE_SECS:.0f} s"
            log.warning("the backend at %s is not reachable yet: %s", client.base_url, reason)
        else:
            log.info("backend %s answers: %d instances", client.base_url, len(instances))

    async def _open_slack_client(self) -> None:
        from bot.slack.deps import build_web_client

        session = aiohttp.ClientSession()
        self._slack_session = session
        self._on_close("Slack HTTP session", session.close)
        web = build_web_client(self.settings, session=session)
        self.web = web
        problem = await slack_auth_problem(web)
        if problem is not None:
            raise SlackTokenRejected(problem)
        log.info("Slack accepted the bot token (%s)", self.settings.slack.api_url)
        check = SlackCheck(self._slack_auth_now, recheck_secs=self._slack_recheck_secs)
        check.remember(OK)
        self.readiness.add("slack", check)

    async def _slack_auth_now(self) -> str | None:
        assert self.web is not None
        try:
            return await slack_auth_problem(self.web)
        except SlackUnreachable as exc:
            return str(exc)

    def _open_scheduler(self) -> AsyncIOScheduler:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        self.scheduler = scheduler
        return scheduler

    async def _open_monitor_and_alerts(self, scheduler: AsyncIOScheduler) -> None:
        from bot.alerts.jobs import register_jobs as register_alert_jobs
        from bot.alerts.service import AlertService
        from bot.monitor import HealthMonitor
        from bot.monitor import register_jobs as register_monitor_jobs

        assert self.db is not None and self.client is not None
        settings = self.settings
        monitor = HealthMonitor.from_settings(
            self.client, self.db, settings.monitor, settings.alerts, clock=self.clock
        ).on_sweep(self.metrics.observe_sweep_report)
        self.monitor = monitor
        # Fail fast and clearly when another process holds the SQLite file.
        leading = await monitor.acquire_leadership()
        self._on_close("leadership", self._release_leadership)
        log.info(
            "health monitor: %s", "leading" if leading else "standing by (another replica leads)"
        )

        alerts = AlertService.from_settings(
            settings,
            self.db,
            clock=self.clock,
            is_leader=lambda: monitor.is_leader,
            session=self._slack_session,
        )
        alerts.attach(monitor)
        self.alerts = alerts
        self.monitor_handle = register_monitor_jobs(
            scheduler, monitor=monitor, db=self.db, settings=settings.monitor
        )
        register_alert_jobs(scheduler, service=alerts)
        self._register_ssh_purge(scheduler)
        self.readiness.add("monitor", self._monitor_check)
        self._wire_gauges()

    def _register_ssh_purge(self, scheduler: AsyncIOScheduler) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        links = self._ssh_links()

        async def purge() -> None:
            try:
                await links.purge()
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

    def _ssh_links(self) -> SshLinkService:
        from bot.store.ssh_links import SshLinkService

        if self._links is None:
            assert self.db is not None
            self._links = SshLinkService.from_settings(self.settings, self.db, clock=self.clock)
        return self._links

    async def _monitor_check(self) -> str:
        if self.monitor is None:
            return "not started"
        status = self.monitor.status()
        if not status.running:
            return "stopped: the health sweep is not scheduled"
        if self.scheduler is None or not self.scheduler.running:
            return "the scheduler is not running"
        return OK

    def _wire_gauges(self) -> None:
        from bot.store.alert_models import AlertIncident, AlertOutbox

        metrics, db, monitor = self.metrics, self.db, self.monitor
        assert db is not None and monitor is not None

        async def count(stmt: Any) -> int:
            async with db.session() as session:
                return int(await session.scalar(stmt) or 0)

        metrics.set_source("leader", lambda: monitor.is_leader)
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
        delivery = self.alerts.delivery if self.alerts else None
        if delivery is not None:
            metrics.set_counter_source("notifications_sent", lambda: delivery.sent_total)
            metrics.set_counter_source("notifications_failed", lambda: delivery.failed_total)

    async def _open_web(self) -> None:
        from bot.gateway import GatewayDeps, KeyRing, gateway_routes_for
        from bot.slack.app import create_app
        from bot.slack.deps import SlackDeps
        from bot.store.audit import AUDIT_OBSERVER, AuditLog
        from bot.web.app import create_web_app
        from bot.web.server import WebServer

        assert self.db is not None and self.client is not None and self.web is not None
        settings = self.settings
        links = self._ssh_links()
        deps = SlackDeps(
            backend=self.client,
            db=self.db,
            web=self.web,
            ssh_links=links,
            clock=self.clock,
            monitor=self.monitor,
            alerts=self.alerts,
            extra={AUDIT_OBSERVER: self._count_command},
        )
        self.slack_app = create_app(settings, deps)
        keys = KeyRing(settings.gateway.keys)
        gateway = (
            GatewayDeps(
                client=self.client,
                db=self.db,
                keys=keys,
                audit=AuditLog(self.db, self.clock),
                clock=self.clock,
                heartbeat_timeout_secs=settings.monitor.heartbeat_timeout_secs,
                metrics=self.metrics,
            )
            if keys
            else None
        )
        app = create_web_app(
            slack_app=self.slack_app,
            signing_secret=settings.slack.signing_secret,
            ssh_links=links,
            extra_routes=[
                readyz_route(self.readiness),
                metrics_route(self.metrics),
                *gateway_routes_for(gateway, public_url=settings.http.public_url),
            ],
        )
        # The runtime owns signals (WebServer turns uvicorn's off); log_config=None sends
        # uvicorn's records through the root handler, where secrets are redacted.
        server = WebServer(
            AckLatencyMiddleware(app, self.metrics),
            host=settings.http.host,
            port=settings.http.port,
            log_config=None,
        )
        await server.start()
        self.server = server
        self._on_close("web server", server.stop)
        log.info("web server listening on %s (gateway %s)", self.url, "on" if keys else "off")

    def _count_command(self, draft: AuditDraft) -> None:
        """Every Slack command and click ends in one audit row: count it there."""
        self.metrics.observe_command(draft.action, draft.result, source=draft.source)

    async def _open_socket_mode(self) -> None:
        token = self.settings.slack.app_token
        if token is None:
            return
        from bot.slack.socket_mode import start_socket_mode, stop_socket_mode

        assert self.slack_app is not None
        handler = await start_socket_mode(self.slack_app, token.get_secret_value())
        self.socket_mode = handler
        self._on_close("Socket Mode", lambda: stop_socket_mode(handler))
        _time_socket_mode_acks(handler, self.metrics)
        client = handler.client

        async def connected() -> bool:
            return bool(await client.is_connected())

        self.readiness.add("slack", SlackCheck(self._slack_auth_now, socket_connected=connected))
        log.info("Socket Mode connected")

    # -- stop --------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop taking work, let running jobs finish (bounded), close everything. Idempotent."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        self._shutdown.set()
        log.info("starpod-bot is stopping")
        await self._close_all()
        log.info("starpod-bot stopped")

    async def _close_all(self) -> None:
        # Order: stop new work first (web, Socket Mode, scheduler), then drain, then close.
        closers = list(reversed(self._closers))
        self._closers.clear()
        intake = [c for c in closers if c[0] in ("web server", "Socket Mode")]
        rest = [c for c in closers if c not in intake]
        for name, closer in intake:
            await self._close_one(name, closer)
        await self._drain_jobs()
        for name, closer in rest:
            await self._close_one(name, closer)

    @staticmethod
    async def _close_one(name: str, closer: Callable[[], Awaitable[None]]) -> None:
        try:
            await closer()
        except Exception:  # closing the rest matters more than this one failure
            log.exception("closing the %s failed", name)

    async def _drain_jobs(self) -> None:
        """No new job starts; the running ones (sweep, delivery …) get the grace period."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        deadline = time.monotonic() + self._grace
        if scheduler.running:
            scheduler.pause()
        # APScheduler 3's asyncio executor keeps its running jobs' tasks here (no public
        # accessor); waiting on them is how a sweep in progress gets to finish.
        executor = scheduler._executors.get("default") if hasattr(scheduler, "_executors") else None
        pending = {f for f in getattr(executor, "_pending_futures", set()) if not f.done()}
        if pending:
            log.info("waiting up to %.0f s for %d running jobs", self._grace, len(pending))
            _, late = await asyncio.wait(pending, timeout=self._grace)
            if late:
                log.warning(
                    "%d jobs still running after %.0f s; cancelling them", len(late), self._grace
                )
        if self.monitor is not None:
            await self.monitor.stop(wait=max(0.1, deadline - time.monotonic()))
        if self.alerts is not None and self.alerts.delivery is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    await self.alerts.delivery.aclose()
        if scheduler.running:
            scheduler.shutdown(wait=False)

    async def _release_leadership(self) -> None:
        # monitor.stop() releases a leader's lock or lease. A standby on PostgreSQL still
        # holds its dedicated connection, and a start that failed early never stopped the
        # monitor: release() covers both (it frees only what this process holds).
        leadership = getattr(self.monitor, "_leadership", None)
        if leadership is not None:
            await leadership.release()


def _time_socket_mode_acks(handler: AsyncSocketModeHandler, metrics: Metrics) -> None:
    """Observe the time from a Socket Mode envelope's arrival to its acknowledgement."""
    client = handler.client
    arrived: dict[str, float] = {}

    async def note_arrival(_client: Any, request: Any) -> None:
        if len(arrived) > 10_000:  # envelopes never acknowledged must not pile up
            arrived.clear()
        arrived[request.envelope_id] = time.perf_counter()

    client.socket_mode_request_listeners.insert(0, note_arrival)
    send = client.send_socket_mode_response

    async def timed_send(response: Any) -> None:
        # slack-sdk accepts a SocketModeResponse or a plain dict here.
        envelope = (
            response.get("envelope_id")
            if isinstance(response, dict)
            else getattr(response, "envelope_id", None)
        )
        started = arrived.pop(envelope, None) if envelope else None
        if started is not None:
            metrics.observe_ack(time.perf_counter() - started)
        await send(response)

    client.send_socket_mode_response = timed_send  # type: ignore[method-assign]


async def run(settings: Settings) -> int:
    """Run the bot until SIGTERM or SIGINT; the exit code of ``starpod-bot run``.

    Logging must already be configured (the CLI does it). A ConfigError (a missing or
    rejected setting) or LeadershipRefused is one line and exit code 2; any other failure
    to start is one line and exit code 1.
    """
    from bot.store.errors import LeadershipRefused, StoreError

    runtime = Runtime(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, runtime, sig)
    try:
        try:
            await runtime.start()
        except ConfigError as exc:
            for line in str(exc).split("; "):  # one line per problem
                log.error("cannot start: %s", line)
            return EXIT_CONFIG
        except LeadershipRefused as exc:
            log.error("cannot start: %s", exc)
            return EXIT_CONFIG
        except (StarpodBotError, StoreError, OSError) as exc:
            log.error("cannot start: %s", exc)
            return EXIT_FAILED
        except Exception as exc:  # one line for the operator; the traceback at debug level
            log.error("cannot start: %s: %s", type(exc).__name__, exc)
            log.debug("start failure", exc_info=True)
            return EXIT_FAILED
        await runtime.wait_for_shutdown()
        await runtime.stop()
        return EXIT_OK
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _on_signal(runtime: Runtime, sig: signal.Signals) -> None:
    if runtime._shutdown.is_set():
        log.info("%s again: already stopping", sig.name)
        return
    log.info("%s received: stopping", sig.name)
    runtime.request_shutdown()
