"""The HealthMonitor: the seed's shape, a store for memory, one leader among replicas.

::

    monitor = (HealthMonitor(client, store=db)
               .with_interval(timedelta(seconds=30))
               .with_heartbeat_timeout(timedelta(seconds=90))
               .on_status_change(lambda instance_id, status, health: ...))
    handle = monitor.start()      # not async; schedules on the running loop
    handle.send()                 # stops it (also handle.stop())

Without ``store`` the history lives in memory (:mod:`bot.monitor.memory_store`); a
:class:`~bot.store.database.Database` keeps it in SQL. Either way the same steps run
(:mod:`bot.monitor.sweep`); this class adds the builder, the schedule and leadership.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self, TypeVar

from bot.instances import InstanceActions
from bot.monitor.events import EventHandler, MonitorStatus, RestartGuard, StatusCallback
from bot.monitor.factory import from_settings as _from_settings
from bot.monitor.handle import MonitorHandle
from bot.monitor.leading import LeaderGate
from bot.monitor.liveness import liveness_problem
from bot.monitor.policy import BACKEND_FAILURES_FOR_UNREACHABLE, RestartBudget, StormRule
from bot.monitor.reports import SweepReport
from bot.monitor.restarts import leased_restart
from bot.monitor.schedule import JOB_ID, add_sweep_job
from bot.monitor.settings import MonitorConfig
from bot.monitor.sql_store import SqlMonitorStore
from bot.monitor.store import MonitorStore, monitor_store
from bot.monitor.sweep import Sweeper

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.backend.client import InstanceClient
    from bot.monitor.own_loop import SweepLoop
    from bot.store.database import Database
    from bot.store.leader import Leadership

__all__ = ["JOB_ID", "HealthMonitor", "MonitorHandle", "SweepReport"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class HealthMonitor:
    """Polls instance health, records history, fires callbacks, restarts stale instances.

    ``HealthMonitor(client)`` keeps its state in memory, as the seed does; ``store=``
    persists statuses, samples and restarts (so a restarted process does not fire again
    for changes already recorded) and elects one leader among replicas.
    """

    def __init__(
        self,
        client: InstanceClient,
        *,
        store: Database | MonitorStore | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self._client = client
        self._store = monitor_store(store)
        self._config = MonitorConfig()
        self._sweeper = Sweeper(client, self._store, self._config)
        if isinstance(self._store, SqlMonitorStore):
            # With a database, auto-restarts take the instance's lease like every action.
            actions = InstanceActions(client, self._store.db, clock=lambda: self._config.now())
            self._sweeper.restart = leased_restart(actions)
        self._gate = LeaderGate(
            leadership, on_gain=self._sweeper.forget, clock=lambda: self._config.now()
        )
        self._sweep_observers: list[Callable[[SweepReport], None]] = []
        self._sweep_lock = asyncio.Lock()
        self._current: asyncio.Task[Any] | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._owns_scheduler = False
        self._job: Job | None = None
        self._last_sweep_at: datetime | None = None
        # When the sweep was scheduled: what liveness measures a stall from at first.
        self._started_at: datetime | None = None
        self._last_sweep_secs: float | None = None
        self._last_error: str | None = None
        self._stale_count = 0
        self._own_loop: SweepLoop | None = None

    def __repr__(self) -> str:
        return f"HealthMonitor({self._client!r}, store={self._store!r})"

    # -- builder -----------------------------------------------------------------------------

    def with_interval(self, interval: timedelta) -> Self:
        """How often to sweep (default 30 s)."""
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        self._config.interval = interval
        return self

    def with_heartbeat_timeout(self, timeout: timedelta) -> Self:
        """Heartbeat age past which a running instance is stale (default 90 s)."""
        if timeout <= timedelta(0):
            raise ValueError("heartbeat timeout must be positive")
        self._config.timeout = timeout
        return self

    def with_restart_budget(
        self,
        count: int,
        window: timedelta,
        delays: Sequence[timedelta | float] = (0, 60, 300),
    ) -> Self:
        """At most ``count`` auto-restarts per instance in ``window``, spaced by ``delays``."""
        self._config.budget = RestartBudget(
            count=count,
            window=window,
            delays=tuple(d if isinstance(d, timedelta) else timedelta(seconds=d) for d in delays),
        )
        return self

    def with_health_concurrency(self, n: int) -> Self:
        """At most ``n`` health calls in flight during a sweep (default 50)."""
        if n < 1:
            raise ValueError("health concurrency must be at least 1")
        self._config.concurrency = n
        return self

    def with_slice_size(self, n: int) -> Self:
        """Fetch, decide and record ``n`` instances at a time (default 1,000)."""
        if n < 1:
            raise ValueError("slice size must be at least 1")
        self._config.slice_size = n
        return self

    def with_clock(self, clock: Callable[[], datetime]) -> Self:
        """Where time comes from (a function returning an aware datetime); for tests."""
        self._config.clock = clock
        return self

    def with_leadership(self, leadership: Leadership | None) -> Self:
        """Elect a leader through ``leadership``; None: this process always sweeps."""
        self._gate.leadership = leadership
        return self

    def with_sweep_deadlines(self, health_call: timedelta, fetch: timedelta) -> Self:
        """Per health call, and for listing plus health (default: 1/3 and 2/3 of the interval)."""
        if health_call <= timedelta(0) or fetch <= timedelta(0):
            raise ValueError("sweep deadlines must be positive")
        self._config.health_call_deadline, self._config.fetch_deadline = health_call, fetch
        return self

    def with_storm(self, min_instances: int, share: float) -> Self:
        """A storm is at least ``min_instances`` and ``share`` of running instances stale."""
        self._config.storm = StormRule(min_instances=min_instances, share=share)
        return self

    def on_status_change(self, callback: StatusCallback) -> Self:
        """Call ``callback(instance_id, status, health)`` (sync or async) once per change."""
        self._config.callbacks.append(callback)
        return self

    def on_event(self, handler: EventHandler) -> Self:
        """Call ``await handler(session, event)`` for every :class:`MonitorEvent`.

        With a store, the handler runs inside the transaction that records the event, in
        its own SAVEPOINT: what it writes commits atomically with the change, and a handler
        that raises is logged and rolled back alone. In memory (no database) ``session``
        is None.
        """
        self._config.handlers.append(handler)
        return self

    def with_restart_guard(self, guard: RestartGuard | None) -> Self:
        """``guard(instance_id)`` returning False skips that instance's auto-restart."""
        self._config.guard = guard
        return self

    def with_actions(self, actions: InstanceActions) -> Self:
        """Auto-restart through ``actions`` (default with a database: one on its client)."""
        self._sweeper.restart = leased_restart(actions)
        return self

    def on_own_loop(self, sweep_loop: SweepLoop | None) -> Self:
        """Sweep (and elect) on ``sweep_loop``'s thread instead of the caller's loop.

        The monitor's client, store and leadership must then belong to that loop (the
        runtime builds them for it); callbacks and the restart guard still run on the loop
        that awaits :meth:`sweep_once`, handed over thread-safely. None: the caller's loop.
        """
        self._own_loop = sweep_loop
        return self

    @property
    def own_loop(self) -> SweepLoop | None:
        """The loop the sweep runs on, when not the caller's."""
        return self._own_loop

    async def _there(self, coro: Coroutine[Any, Any, T]) -> T:
        """``await coro`` on the sweep's loop (its own thread's, or this one)."""
        if self._own_loop is None:
            return await coro
        return await self._own_loop.run(coro)

    def on_sweep(self, observer: Callable[[SweepReport], None]) -> Self:
        """Call ``observer(report)`` after every sweep that returns (metrics count them)."""
        self._sweep_observers.append(observer)
        return self

    # A monitor configured from the typed settings (the runtime's way to build one).
    from_settings = classmethod(_from_settings)

    # -- read-only views ---------------------------------------------------------------------

    @property
    def interval(self) -> timedelta:
        """The sweep interval."""
        return self._config.interval

    @property
    def fetch_deadline_secs(self) -> float:
        """How long a sweep may spend asking for health; what has not answered is unknown."""
        return self._config.fetch_secs()

    @property
    def heartbeat_timeout(self) -> timedelta:
        """The heartbeat timeout."""
        return self._config.timeout

    @property
    def store(self) -> MonitorStore:
        """Where the monitor keeps its history (in memory when built without a database)."""
        return self._store

    @property
    def leadership(self) -> Leadership | None:
        """How this replica is elected, or None when it always sweeps."""
        return self._gate.leadership

    @property
    def sweeping(self) -> bool:
        """True while a sweep is in progress."""
        return self._current is not None

    @property
    def is_leader(self) -> bool:
        """True when this replica sweeps (always, without a leadership)."""
        return self._gate.is_leader

    def last_sweep_timestamp(self) -> float:
        """Unix time of the last sweep this replica completed, 0 when none (for metrics)."""
        return self._last_sweep_at.timestamp() if self._last_sweep_at is not None else 0.0

    def status(self) -> MonitorStatus:
        """The monitor's own state, for ``/starpod status``."""
        failures = self._sweeper.backend_failures
        running = self._job is not None
        problem = liveness_problem(
            now=self._config.now(),
            interval=self._config.interval,
            started_at=self._started_at if running else None,
            is_leader=self.is_leader,
            last_sweep_at=self._last_sweep_at,
            last_round_at=self._gate.decided_at,
            election_error=self._gate.election_error,
        )
        return MonitorStatus(
            last_sweep_at=self._last_sweep_at,
            last_sweep_secs=self._last_sweep_secs,
            last_error=self._last_error,
            is_leader=self.is_leader,
            standing_by=self._gate.standing_by,
            backend_reachable=failures < BACKEND_FAILURES_FOR_UNREACHABLE,
            consecutive_backend_failures=failures,
            instances_tracked=len(self._sweeper.tracked),
            stale_count=self._stale_count,
            running=running,
            problem=problem,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, scheduler: AsyncIOScheduler | None = None) -> MonitorHandle:
        """Schedule the sweep every interval on the running loop; not async, as in the seed.

        Uses ``scheduler`` when given (the runtime shares one and starts it), else creates and
        starts its own. The first sweep runs at once; runs never overlap, missed ones
        coalesce, and a little jitter keeps replicas from polling in lockstep.
        """
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "HealthMonitor.start() needs a running event loop: call it from async code"
            ) from None
        if self._job is not None:
            raise RuntimeError("this HealthMonitor is already started")
        owns = scheduler is None
        if scheduler is None:
            scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        self._job = add_sweep_job(scheduler, self._scheduled_sweep, self._config.interval)
        self._started_at = self._config.now()
        self._scheduler, self._owns_scheduler = scheduler, owns
        if owns:
            scheduler.start()
        return MonitorHandle(self)

    async def stop(self, wait: float = 10) -> None:
        """Stop sweeping: unschedule, let a running sweep end (at most ``wait`` s), step down."""
        from apscheduler.jobstores.base import JobLookupError

        job, self._job = self._job, None
        if job is not None:
            with contextlib.suppress(JobLookupError):
                job.remove()
        if self._owns_scheduler and self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler, self._owns_scheduler = None, False
        task = self._current
        if task is not None and not task.done() and task is not asyncio.current_task():
            done, _ = await asyncio.wait({task}, timeout=wait)
            if not done:
                log.warning("health sweep still running after %.0f s; cancelling it", wait)
                task.cancel()
                await asyncio.wait({task}, timeout=1)
        await self._there(self._gate.step_down())

    async def release_leadership(self) -> None:
        """Free the lock or lease, or a standby's connection, whatever this process holds."""
        if self._gate.leadership is not None:
            await self._there(self._gate.leadership.release())

    async def acquire_leadership(self) -> bool:
        """Try to lead now; raises LeadershipRefused when SQLite is held by another process.

        The runtime calls this at start to fail fast with a clear message.
        """
        return await self._there(self._gate.lead())

    async def _scheduled_sweep(self) -> None:
        # The scheduler's entry point: nothing may escape (APScheduler would only log it).
        try:
            await self.sweep_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from bot.store.errors import LeadershipRefused, StoreUnwritable

            self._last_error = str(exc)
            if isinstance(exc, LeadershipRefused):
                log.error("health monitor standing by: %s", exc)
            elif isinstance(exc, StoreUnwritable):
                log.debug("health sweep could not record its results: %s", exc)  # logged once
            else:
                log.exception("health sweep failed")

    # -- one sweep ---------------------------------------------------------------------------

    async def sweep_once(self) -> SweepReport:
        """Run one sweep now (tests call this with a fake clock; no scheduler needed)."""
        async with self._sweep_lock:
            self._current = asyncio.current_task()
            if self._own_loop is not None:
                # Callbacks and the guard run here, where they were registered.
                self._sweeper.home = asyncio.get_running_loop()
            try:
                report = SweepReport(at=self._config.now())
                await self._there(self._lead_and_sweep(report))
                if report.swept:
                    # Here, not on the sweep's thread: "last sweep" and "sweeping" change
                    # together, so no reader sees the one without the other.
                    self._finish(report)
            finally:
                self._current = None
        for observer in self._sweep_observers:
            try:
                observer(report)
            except Exception:
                log.exception("sweep observer failed")
        return report

    async def _lead_and_sweep(self, report: SweepReport) -> None:
        if await self._gate.lead():
            report.swept = True
            await self._sweeper.sweep(report, may_restart=self._gate.may_restart)

    def _finish(self, report: SweepReport) -> None:
        self._last_sweep_at = report.at
        self._last_sweep_secs = report.secs
        self._last_error = report.backend_error
        if report.backend_error is None:
            self._stale_count = len(report.stale_ids)
