"""The running bot: opens everything in order, serves, and closes it all in reverse.

::

    async with Runtime(settings) as runtime:      # or: await runtime.start() … stop()
        print(runtime.url)                        # the bound web server, e.g. port 0 in tests
        await runtime.wait_for_shutdown()         # until request_shutdown() (SIGTERM/SIGINT)

Opening order, each step needing the ones before it:

1. the database, migrated to head (one it cannot open is DatabaseUnavailable, exit 2);
2. the backend client (its requests counted in the metrics); a backend that does not
   answer yet is a warning, not a failure;
3. the Slack Web API client, and ``auth.test``: a rejected token stops the start
   (:class:`SlackTokenRejected`, a ConfigError: exit 2), since a bot that cannot talk to
   Slack is useless; an unreachable Slack stops it too (:class:`SlackUnreachable`, exit 1);
4. the health monitor and the leadership: on SQLite a second process is refused
   (``LeadershipRefused``, exit 2); on PostgreSQL a replica that does not lead stands by.
   The sweep (and the election) run on an event loop of their own, in a thread, with
   their own backend client and database engine (:mod:`bot.monitor.own_loop`), so Slack
   acknowledgements never queue behind a sweep;
5. the alerts (incidents, outbox delivery), wired to the monitor's events and restarts;
6. one APScheduler ``AsyncIOScheduler`` shared by every job;
7. the Bolt app, then the web server on ``PORT`` (Slack events, ``/healthz``,
   ``/readyz``, ``/metrics``, the gateway under ``/api``, one-time SSH key links).

In Socket Mode (``SLACK_APP_TOKEN`` set) the web server starts right after step 3, then
the socket is connected, and only then the monitor (steps 4-6): ``/readyz`` answers 503
(check ``slack socket``) while the socket is down, and no replica sweeps and alerts while
no command can reach it. A refused app token stops the start (``SlackAppTokenRejected``,
exit 2, naming ``SLACK_APP_TOKEN``); an unreachable socket is retried with back-off
until it answers or SIGTERM/SIGINT asks the runtime to stop (``start()`` then returns
with :attr:`Runtime.shutdown_requested` set, and ``stop()`` closes what was opened).

Once all is open, the start-up heap is frozen (``gc.freeze``) and the garbage collector's
thread starts (:mod:`bot.collector`): full collections from then on run after each sweep,
when the Slack loop is idle, not whenever CPython would start one mid-sweep.

The parts are constructed by :func:`bot.wiring.build`; this module opens them.

Stopping (``stop()``; SIGTERM/SIGINT through :func:`run`) closes through one
``AsyncExitStack``, in reverse order of opening: the collector's thread ends (CPython's
own schedule of full collections is back) and the heap is thawed, Socket Mode and the web
server stop taking requests, the Slack listener work still running finishes, the scheduler starts no
new job and the running ones (the sweep among them) finish, the outbox delivery ends,
the leadership is released, the sweep's thread closes its client and engine and ends,
a heap trim still running (:mod:`bot.heap`, after each sweep) finishes, and the clients
and the database are closed. Draining
shares one grace period (10 s by default).
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
from typing import TYPE_CHECKING, Self

from bot.config import Role, setting_name
from bot.errors import ConfigError, StarpodBotError
from bot.heap import limit_arenas
from bot.metrics import Metrics, create_metrics
from bot.probes import OK, Readiness
from bot.slack.token_check import (
    SlackTokenRejected,
    SlackUnreachable,
    slack_auth_problem,
)
from bot.web.server import freeze_startup_heap
from bot.wiring import Parts, build, required_settings_problems
from bot.worker_priority import current_priority

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.alerts.service import AlertService
    from bot.backend.client import InstanceClient
    from bot.config import Settings
    from bot.monitor import HealthMonitor, MonitorHandle
    from bot.scheduling import TrackedScheduler
    from bot.slack.socket_mode import Backoff, SocketModeLink
    from bot.store.database import Database
    from bot.web.server import WebServer

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "Runtime",
    "SlackTokenRejected",
    "SlackUnreachable",
    "required_settings_problems",
    "run",
    "slack_auth_problem",
]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: Everything still running at shutdown (listener work, the sweep, outbox delivery …)
#: gets this long in all to finish.
SHUTDOWN_GRACE_SECS = 10.0
BACKEND_PROBE_SECS = 5.0
#: The readiness check of the Socket Mode link (``/readyz`` 503 while it is down).
SOCKET_CHECK = "slack socket"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _thaw_heap() -> None:
    gc.unfreeze()


class Runtime:
    """The whole bot in one process; see the module docstring for the order of things.

    ``clock`` (aware datetimes) is handed to every part that reads time.
    ``slack_recheck_secs`` is how long ``/readyz`` trusts the last ``auth.test``.
    ``socket_ping_secs`` is how often Socket Mode checks its link (a dead one is replaced
    within about four times that); ``socket_backoff`` spaces the first connection attempts.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        slack_recheck_secs: float = 60.0,
        shutdown_grace_secs: float = SHUTDOWN_GRACE_SECS,
        socket_ping_secs: float = 10.0,
        socket_backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or _utcnow
        self.metrics: Metrics = create_metrics()
        self.readiness = Readiness()
        self.parts: Parts | None = None
        self.socket_mode: AsyncSocketModeHandler | None = None
        self.socket_link: SocketModeLink | None = None
        #: Set once the web server is bound (``url`` answers): in Socket Mode, before the
        #: socket is connected and ``start()`` returns.
        self.serving = asyncio.Event()
        self._socket_ping_secs = socket_ping_secs
        self._socket_backoff = socket_backoff
        self._slack_recheck_secs = slack_recheck_secs
        self._grace = shutdown_grace_secs
        self._deadline = 0.0
        self._shutdown = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._started = False
        self._stopped = False
        #: True once glibc's malloc was told to share ARENA_MAX arenas (False elsewhere).
        self.arenas_limited = False

    def __repr__(self) -> str:
        return f"Runtime(url={self.url if self.server else None!r})"

    # -- the parts (None until started) ------------------------------------------------------

    @property
    def db(self) -> Database | None:
        """The database."""
        return self.parts.db if self.parts else None

    @property
    def client(self) -> InstanceClient | None:
        """The backend client."""
        return self.parts.client if self.parts else None

    @property
    def web(self) -> AsyncWebClient | None:
        """The Slack Web API client."""
        return self.parts.web if self.parts else None

    @property
    def monitor(self) -> HealthMonitor | None:
        """The health monitor."""
        return self.parts.monitor if self.parts else None

    @property
    def monitor_handle(self) -> MonitorHandle | None:
        """The handle of the scheduled health sweep."""
        return self.parts.monitor_handle if self.parts else None

    @property
    def alerts(self) -> AlertService | None:
        """The alerts service."""
        return self.parts.alerts if self.parts else None

    @property
    def scheduler(self) -> TrackedScheduler | None:
        """The scheduler every job runs on."""
        return self.parts.scheduler if self.parts else None

    @property
    def slack_app(self) -> AsyncApp | None:
        """The Bolt app."""
        return self.parts.slack_app if self.parts else None

    @property
    def server(self) -> WebServer | None:
        """The web server (bound once started)."""
        return self.parts.server if self.parts else None

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

    @property
    def shutdown_requested(self) -> bool:
        """True once :meth:`request_shutdown` (or :meth:`stop`) was called."""
        return self._shutdown.is_set()

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
            await self._close()
            raise

    async def _open(self) -> None:
        # Before any thread (the sweep's, SQLite's, the executor's) creates an arena.
        self.arenas_limited = limit_arenas()
        parts = build(
            self.settings,
            clock=self.clock,
            metrics=self.metrics,
            slack_recheck_secs=self._slack_recheck_secs,
        )
        self.parts, self.readiness = parts, parts.readiness
        # Built parts hold resources (an engine, connection pools) before they are opened.
        self._on_close("database", parts.db.dispose)
        self._on_close("backend client", parts.client.aclose)
        self._on_close("Slack HTTP session", parts.slack_session.close)

        await self._upgrade(parts.db)
        log.info("database %s is at the latest schema", parts.db.safe_url)
        await self._probe_backend(parts.client)
        await self._check_slack_token(parts)

        # A worker (role worker) takes no Slack request: Socket Mode is the web process's.
        socket_mode = self.settings.slack.app_token is not None and self.settings.serves_slack
        if socket_mode:
            # /readyz answers (503) while the socket is being connected, and the monitor
            # waits for the socket: a bot that sweeps and alerts while no command can reach
            # it would lead alone as if all were well.
            await self._start_web_server(parts)
            if not await self._open_socket_mode(parts):
                log.info("stopping before Socket Mode connected")
                return
        if self.settings.runs_monitor:
            await self._start_monitor(parts)
        else:
            # A web process (role web) runs no sweep, takes no leadership and delivers no
            # alert: its scheduler has no job of the monitor's (bot.wiring).
            parts.scheduler.start()
            self._on_close("scheduled jobs", self._stop_jobs)
        # Closed after the listeners drain (they may ask for one): a pending App Home
        # refresh must not outlive the Slack client it publishes with.
        if parts.home is not None:
            self._on_close("App Home refreshes", parts.home.aclose)
        self._on_close("Slack listeners", self._drain_listeners)
        if socket_mode:
            # Closed first: stop taking requests, then the listener work above drains.
            self._on_close("Socket Mode and web server", self._stop_taking_requests)
        else:
            await self._start_web_server(parts)
        # The start-up heap is long-lived: keep full collections from walking it and
        # stalling Slack acknowledgements (bench/ack_latency.py: p99 76 ms → 24 ms).
        # Thawed on close, so a process that starts several runtimes (tests) leaks nothing.
        freeze_startup_heap()
        self._on_close("frozen start-up heap", _thaw_heap)
        # From here on full collections wait for the end of a sweep and an idle Slack loop;
        # the collector also freezes the fleet once the first sweep has recorded it (a sweep
        # that ended before this start is served now). Closed before the thaw above.
        parts.collector.start()
        self._on_close("garbage collector", parts.collector.aclose)
        if not self.settings.runs_monitor:
            sweeps = "the health sweeps run in the worker process"
        elif parts.monitor.is_leader:
            sweeps = "leading the health sweeps"
        else:
            sweeps = "standing by"
        role = str(self.settings.role)
        if self.settings.role == Role.WORKER:
            role += f" at {current_priority()}"  # as the kernel has it (bot.worker_priority)
        log.info(
            "starpod-bot is up: %s, %s, role %s, %s",
            self.url,
            self._serving_mode(),
            role,
            sweeps,
        )

    def _serving_mode(self) -> str:
        """How Slack reaches this process, for the start line."""
        if not self.settings.serves_slack:
            return "no Slack requests (probes and metrics only)"
        return "Socket Mode" if self.socket_mode else "HTTP mode"

    @staticmethod
    async def _upgrade(db: Database) -> None:
        """Migrate; a database that cannot even be opened for lack of space says so, named.

        (A full volume after a clean shutdown: SQLite cannot recreate the WAL's shared-memory
        file, so nothing can be read either; a full one while running is met later.)
        """
        from sqlalchemy.exc import DBAPIError

        from bot.store.writability import unwritable

        try:
            await db.upgrade()
        except DBAPIError as exc:
            if unwritable(exc) is None:
                raise
            raise db.writes.error(exc) from exc

    async def _start_monitor(self, parts: Parts) -> None:
        # Closed last of the monitor's parts: a sweep ending while the jobs drain trims too.
        self._on_close("heap trim", parts.trimmer.wait)
        if parts.sweep is not None:
            # Closed after everything below: the sweep ends and the leadership is released
            # on this thread's loop first.
            parts.sweep.loop.start()
            self._on_close("sweep thread", parts.sweep.aclose)
        # Fail fast and clearly when another process holds the SQLite file.
        self._on_close("leadership", self._release_leadership)
        leading = await parts.monitor.acquire_leadership()
        log.info(
            "health monitor: %s", "leading" if leading else "standing by (another replica leads)"
        )
        self._on_close("alert delivery", self._close_delivery)
        parts.scheduler.start()
        self._on_close("scheduled jobs", self._stop_jobs)

    async def _start_web_server(self, parts: Parts) -> None:
        await parts.server.start()
        self._on_close("web server", parts.server.stop)
        self.serving.set()
        log.info(
            "web server listening on %s (gateway %s)", self.url, "on" if parts.gateway_on else "off"
        )

    def _on_close(self, name: str, closer: Callable[[], Awaitable[object]]) -> None:
        """Close ``name`` with ``closer`` before everything opened earlier (LIFO)."""
        self._stack.push_async_callback(self._close_one, name, closer)

    async def _probe_backend(self, client: InstanceClient) -> None:
        from bot.backend.errors import BackendError

        try:
            async with asyncio.timeout(BACKEND_PROBE_SECS):
                instances = await client.list_instances()
        except (BackendError, TimeoutError) as exc:
            # The monitor reports an outage in Slack; the bot must be up to do that.
            reason = str(exc) or f"no answer within {BACKEND_PROBE_SECS:.0f} s"
            log.warning("the backend at %s is not reachable yet: %s", client.base_url, reason)
        else:
            log.info("backend %s answers: %d instances", client.base_url, len(instances))

    async def _check_slack_token(self, parts: Parts) -> None:
        problem = await slack_auth_problem(parts.web)
        if problem is not None:
            raise SlackTokenRejected(problem)
        log.info("Slack accepted the bot token (%s)", self.settings.slack.api_url)
        parts.slack_check.remember(OK)

    async def _open_socket_mode(self, parts: Parts) -> bool:
        """Connect Socket Mode, retrying with back-off; False when shutdown came first.

        The ``slack socket`` readiness check is added before the first attempt, so
        ``/readyz`` says 503 until the link is up (and whenever it is down later).
        Raises SlackAppTokenRejected (exit 2) when Slack refuses the app token.
        """
        token = self.settings.slack.app_token
        assert token is not None and parts.slack_app is not None
        from bot.slack.socket_mode import SocketModeLink

        link = SocketModeLink(
            parts.slack_app,
            token.get_secret_value(),
            on_ack=self.metrics.observe_ack,
            ping_interval=self._socket_ping_secs,
            backoff=self._socket_backoff,
        )
        self.socket_link = link
        self._on_close("Socket Mode", link.close)

        async def connected() -> str:
            return OK if await link.is_connected() else "Socket Mode is not connected"

        self.readiness.add(SOCKET_CHECK, connected)
        if not await link.connect(self._shutdown):
            return False
        self.socket_mode = link.handler
        log.info("Socket Mode connected")
        return True

    async def _stop_taking_requests(self) -> None:
        assert self.parts is not None
        if self.socket_link is not None:
            await self.socket_link.close()
        await self.parts.server.stop()

    # -- stop --------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop taking work, let running work finish (bounded), close everything. Idempotent."""
        if self._stopped or not self._started:
            return
        self._stopped = True
        self._shutdown.set()
        log.info("starpod-bot is stopping")
        await self._close()
        log.info("starpod-bot stopped")

    async def _close(self) -> None:
        self._deadline = time.monotonic() + self._grace
        await self._stack.aclose()

    def _grace_left(self) -> float:
        return max(0.1, self._deadline - time.monotonic())

    @staticmethod
    async def _close_one(name: str, closer: Callable[[], Awaitable[object]]) -> None:
        try:
            await closer()
        except Exception:  # closing the rest matters more than this one failure
            log.exception("closing the %s failed", name)
        else:
            log.debug("closed the %s", name)

    async def _drain_listeners(self) -> None:
        assert self.parts is not None
        await self.parts.listeners.drain(self._grace_left())

    async def _stop_jobs(self) -> None:
        """No new job starts; the running ones (the sweep …) get what is left of the grace."""
        assert self.parts is not None
        scheduler, monitor = self.parts.scheduler, self.parts.monitor
        await scheduler.drain(self._grace_left())
        await monitor.stop(wait=self._grace_left())
        if scheduler.running:
            scheduler.shutdown(wait=False)

    async def _close_delivery(self) -> None:
        assert self.parts is not None
        delivery = self.parts.alerts.delivery
        if delivery is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._grace_left()):
                    await delivery.aclose()

    async def _release_leadership(self) -> None:
        # monitor.stop() releases a leader's lock or lease. A standby on PostgreSQL still
        # holds its dedicated connection, and a start that failed early never stopped the
        # monitor: release() covers both (it frees only what this process holds).
        from bot.store.errors import StoreUnwritable

        assert self.parts is not None
        try:
            await self.parts.monitor.release_leadership()
        except StoreUnwritable as exc:
            # The lease expires, and the next start on this host takes a dead pid's over.
            log.warning("could not release the leadership: %s", exc)


async def run(settings: Settings) -> int:
    """Run the bot until SIGTERM or SIGINT; the exit code of ``starpod-bot run``.

    Logging must already be configured (the CLI does it). A ConfigError (a missing or
    rejected setting), a database DATABASE_URL cannot open, or LeadershipRefused is one line
    and exit code 2; any other failure to start is one line and exit code 1.
    """
    from bot.store.errors import (
        DatabaseUnavailable,
        LeadershipRefused,
        StoreError,
        UnsupportedDatabaseError,
    )

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
        except (DatabaseUnavailable, UnsupportedDatabaseError) as exc:
            log.error("cannot start: %s: %s", setting_name("database.url"), exc)
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
    if runtime.shutdown_requested:
        log.info("%s again: already stopping", sig.name)
        return
    log.info("%s received: stopping", sig.name)
    runtime.request_shutdown()
