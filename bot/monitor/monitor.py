"""The HealthMonitor: the seed's shape, a store for memory, one leader among replicas.

::

    monitor = (HealthMonitor(client, store=db)
               .with_interval(timedelta(seconds=30))
               .with_heartbeat_timeout(timedelta(seconds=90))
               .on_status_change(lambda instance_id, status, health: ...))
    handle = monitor.start()      # not async; schedules on the running loop
    handle.send()                 # stops it (also handle.stop())

One sweep, in this order, so no database transaction is ever held across an HTTP call:

1. leadership: only the leader sweeps (others stand by and retry each interval);
2. fetch: the instance list, then health for running instances the list left without;
3. decide (pure, :mod:`bot.monitor.tracking` and :mod:`bot.monitor.policy`): effective
   statuses, stale instances, storm, restart decisions;
4. transaction 1: upsert instances, heartbeat samples, status changes and their events
   (event handlers run inside it, each in a SAVEPOINT);
5. the seed's ``on_status_change`` callbacks, once per recorded change;
6. restarts over HTTP;
7. transaction 2: restart records and restart events.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import TYPE_CHECKING, Any, Self, TypeVar

from bot.backend.errors import BackendError
from bot.monitor.events import (
    EventHandler,
    EventKind,
    MonitorEvent,
    MonitorStatus,
    RestartGuard,
    StatusCallback,
)
from bot.monitor.fetch import observe
from bot.monitor.persist import auto_restart_times, latest_recorded_statuses, record_changes
from bot.monitor.policy import (
    BACKEND_FAILURES_FOR_UNREACHABLE,
    BudgetExhausted,
    DeferRestart,
    RestartBudget,
    RestartNow,
    StormRule,
    decide_restart,
)
from bot.monitor.tracking import (
    Change,
    Observation,
    StaleInstance,
    SweepPlan,
    Tracked,
    plan_sweep,
    stale_ids,
)
from bot.store.queries import last_statuses, record_heartbeats, record_restart, upsert_instances

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.backend.client import InstanceClient
    from bot.backend.models import Instance
    from bot.config import AlertSettings, MonitorSettings
    from bot.store.database import Database
    from bot.store.leader import Leadership
    from bot.store.records import InstanceSnapshot

log = logging.getLogger(__name__)

T = TypeVar("T")

# Instance rows whose name, region and status did not change are rewritten only this often
# (refreshing last_seen): rewriting 10,000 identical rows every sweep was half the sweep.
ROW_REFRESH = timedelta(minutes=5)
# Instances decided per slice before yielding to the event loop (~10 ms of work each).
PLAN_SLICE = 1000

JOB_ID = "starpod-health-sweep"
MAX_JITTER_SECS = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _fmt_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S UTC")


@dataclass(slots=True)
class SweepReport:
    """What one call of :meth:`HealthMonitor.sweep_once` did (for tests, logs, benchmarks)."""

    at: datetime
    swept: bool = False
    instances: int = 0
    running: int = 0
    stale_ids: list[str] = field(default_factory=list)
    changes: list[tuple[str, str | None, str]] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    restart_failed: list[str] = field(default_factory=list)
    storm: bool = False
    backend_error: str | None = None
    events: list[MonitorEvent] = field(default_factory=list)
    secs: float = 0.0


@dataclass(slots=True)
class _Recorded:
    """Outcome of transaction 1."""

    plan: SweepPlan
    announced: list[Change]
    restart_now: list[tuple[StaleInstance, int]]
    events: list[MonitorEvent]
    # id → (announced exhaustion episode, deferred until): applied after commit.
    decisions: dict[str, tuple[datetime | None, datetime | None]]
    # When every instance row was rewritten (refreshing last_seen), or None.
    rows_refreshed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _RestartOutcome:
    stale: StaleInstance
    attempt: int
    at: datetime
    error: str | None


class MonitorHandle:
    """Returned by :meth:`HealthMonitor.start`; ``send()`` or ``stop()`` stops the monitor.

    Both are plain calls, as in the seed; they return the task that finishes the stop
    (lets a running sweep end, releases the leadership), which may be awaited.
    """

    def __init__(self, monitor: HealthMonitor) -> None:
        self._monitor = monitor
        self._task: asyncio.Task[None] | None = None

    def send(self, _value: object = None) -> asyncio.Task[None]:
        """Stop the monitor (the seed's ``shutdown.send(())``)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._monitor.stop())
        return self._task

    def stop(self) -> asyncio.Task[None]:
        """Same as :meth:`send`."""
        return self.send()

    @property
    def monitor(self) -> HealthMonitor:
        """The monitor this handle controls."""
        return self._monitor


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
        store: Database | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._leadership = leadership
        self._interval = timedelta(seconds=30)
        self._timeout = timedelta(seconds=90)
        self._budget = RestartBudget()
        self._storm = StormRule()
        self._concurrency = 50
        self._clock: Callable[[], datetime] = _utcnow
        self._callbacks: list[StatusCallback] = []
        self._handlers: list[EventHandler] = []
        self._guard: RestartGuard | None = None
        self._sweep_observers: list[Callable[[SweepReport], None]] = []
        self._tracked: dict[str, Tracked] = {}
        self._backend_failures = 0
        self._in_storm = False
        self._sweep_lock = asyncio.Lock()
        self._current: asyncio.Task[Any] | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._owns_scheduler = False
        self._job: Job | None = None
        self._last_sweep_at: datetime | None = None
        self._last_sweep_secs: float | None = None
        self._last_error: str | None = None
        self._stale_count = 0
        self._tried_leadership = False
        self._rows_refreshed_at: datetime | None = None

    def __repr__(self) -> str:
        return f"HealthMonitor({self._client!r}, store={self._store!r})"

    # -- builder -----------------------------------------------------------------------------

    def with_interval(self, interval: timedelta) -> Self:
        """How often to sweep (default 30 s)."""
        if interval <= timedelta(0):
            raise ValueError("interval must be positive")
        self._interval = interval
        return self

    def with_heartbeat_timeout(self, timeout: timedelta) -> Self:
        """Heartbeat age past which a running instance is stale (default 90 s)."""
        if timeout <= timedelta(0):
            raise ValueError("heartbeat timeout must be positive")
        self._timeout = timeout
        return self

    def with_restart_budget(
        self,
        count: int,
        window: timedelta,
        delays: Sequence[timedelta | float] = (0, 60, 300),
    ) -> Self:
        """At most ``count`` auto-restarts per instance in ``window``, spaced by ``delays``."""
        self._budget = RestartBudget(
            count=count,
            window=window,
            delays=tuple(d if isinstance(d, timedelta) else timedelta(seconds=d) for d in delays),
        )
        return self

    def with_health_concurrency(self, n: int) -> Self:
        """At most ``n`` health calls in flight during a sweep (default 50)."""
        if n < 1:
            raise ValueError("health concurrency must be at least 1")
        self._concurrency = n
        return self

    def with_clock(self, clock: Callable[[], datetime]) -> Self:
        """Where time comes from (a function returning an aware datetime); for tests."""
        self._clock = clock
        return self

    def with_leadership(self, leadership: Leadership | None) -> Self:
        """Elect a leader through ``leadership``; None: this process always sweeps."""
        self._leadership = leadership
        return self

    def with_storm(self, min_instances: int, share: float) -> Self:
        """A storm is at least ``min_instances`` and ``share`` of running instances stale."""
        self._storm = StormRule(min_instances=min_instances, share=share)
        return self

    def on_status_change(self, callback: StatusCallback) -> Self:
        """Call ``callback(instance_id, status, health)`` (sync or async) once per change."""
        self._callbacks.append(callback)
        return self

    def on_event(self, handler: EventHandler) -> Self:
        """Call ``await handler(session, event)`` for every :class:`MonitorEvent`.

        With a store, the handler runs inside the transaction that records the event, in
        its own SAVEPOINT: what it writes commits atomically with the change, and a handler
        that raises is logged and rolled back alone. Without a store ``session`` is None.
        """
        self._handlers.append(handler)
        return self

    def with_restart_guard(self, guard: RestartGuard | None) -> Self:
        """``guard(instance_id)`` returning False skips that instance's auto-restart."""
        self._guard = guard
        return self

    def on_sweep(self, observer: Callable[[SweepReport], None]) -> Self:
        """Call ``observer(report)`` after every sweep that returns (metrics count them)."""
        self._sweep_observers.append(observer)
        return self

    @classmethod
    def from_settings(
        cls,
        client: InstanceClient,
        store: Database | None,
        settings: MonitorSettings,
        alerts: AlertSettings,
        *,
        clock: Callable[[], datetime] = _utcnow,
        leadership: Leadership | None = None,
    ) -> HealthMonitor:
        """A monitor configured from the typed settings (the runtime's way to build one).

        With a store and no ``leadership``, one is chosen for the database: an advisory lock
        on PostgreSQL, a lease on SQLite (ttl three intervals).
        """
        interval = timedelta(seconds=settings.interval_secs)
        if leadership is None and store is not None:
            from bot.store.leader import default_holder, leadership_for

            leadership = leadership_for(store, holder=default_holder(), ttl=3 * interval)
        return (
            cls(client, store=store, leadership=leadership)
            .with_interval(interval)
            .with_heartbeat_timeout(timedelta(seconds=settings.heartbeat_timeout_secs))
            .with_restart_budget(
                settings.restart_budget,
                timedelta(minutes=settings.restart_window_mins),
                settings.restart_delays_secs,
            )
            .with_health_concurrency(settings.health_concurrency)
            .with_storm(alerts.storm_min_instances, alerts.storm_share)
            .with_clock(clock)
        )

    # -- read-only views ---------------------------------------------------------------------

    @property
    def interval(self) -> timedelta:
        """The sweep interval."""
        return self._interval

    @property
    def heartbeat_timeout(self) -> timedelta:
        """The heartbeat timeout."""
        return self._timeout

    @property
    def is_leader(self) -> bool:
        """True when this replica sweeps (always, without a leadership)."""
        return self._leadership is None or self._leadership.is_leader

    def status(self) -> MonitorStatus:
        """The monitor's own state, for ``/starpod status``."""
        return MonitorStatus(
            last_sweep_at=self._last_sweep_at,
            last_sweep_secs=self._last_sweep_secs,
            last_error=self._last_error,
            is_leader=self.is_leader,
            standing_by=self._leadership is not None
            and self._tried_leadership
            and not self._leadership.is_leader,
            backend_reachable=self._backend_failures < BACKEND_FAILURES_FOR_UNREACHABLE,
            consecutive_backend_failures=self._backend_failures,
            instances_tracked=len(self._tracked),
            stale_count=self._stale_count,
            running=self._job is not None,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, scheduler: AsyncIOScheduler | None = None) -> MonitorHandle:
        """Schedule the sweep every interval on the running loop; not async, as in the seed.

        Uses ``scheduler`` when given (the runtime shares one and starts it), else creates and
        starts its own. The first sweep runs at once; runs never overlap, missed ones
        coalesce, and a little jitter keeps replicas from polling in lockstep.
        """
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

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
        secs = self._interval.total_seconds()
        self._job = scheduler.add_job(
            self._scheduled_sweep,
            trigger=IntervalTrigger(seconds=secs, jitter=min(MAX_JITTER_SECS, secs / 10)),
            id=JOB_ID,
            name="health sweep",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(secs)),
            next_run_time=datetime.now(UTC),
            replace_existing=True,
        )
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
        if self._leadership is not None and self._leadership.is_leader:
            try:
                await self._leadership.release()
            except Exception as exc:  # the lock or lease frees itself when we are gone
                log.warning("could not release the leadership: %s", exc)

    async def acquire_leadership(self) -> bool:
        """Try to lead now; raises LeadershipRefused when SQLite is held by another process.

        The runtime calls this at start to fail fast with a clear message.
        """
        return await self._lead()

    async def _scheduled_sweep(self) -> None:
        # The scheduler's entry point: nothing may escape (APScheduler would only log it).
        try:
            await self.sweep_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from bot.store.errors import LeadershipRefused

            self._last_error = str(exc)
            if isinstance(exc, LeadershipRefused):
                log.error("health monitor standing by: %s", exc)
            else:
                log.exception("health sweep failed")

    # -- one sweep ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the monitor's clock must return timezone-aware datetimes")
        return now

    async def sweep_once(self) -> SweepReport:
        """Run one sweep now (tests call this with a fake clock; no scheduler needed)."""
        async with self._sweep_lock:
            self._current = asyncio.current_task()
            try:
                report = await self._sweep()
            finally:
                self._current = None
        for observer in self._sweep_observers:
            try:
                observer(report)
            except Exception:
                log.exception("sweep observer failed")
        return report

    async def _lead(self) -> bool:
        lead = self._leadership
        if lead is None:
            return True
        was_leader = lead.is_leader
        self._tried_leadership = True
        try:
            leading = await lead.acquire()
        except Exception as exc:  # cannot tell: do not act as the leader this round
            log.warning("leader election failed (%s); standing by", exc)
            return False
        if leading and not was_leader:
            # Another replica may have acted meanwhile: forget what memory says.
            log.info("health monitor: this replica now leads the sweeps")
            self._tracked.clear()
            self._rows_refreshed_at = None
            self._backend_failures = 0
            self._in_storm = False
        elif was_leader and not leading:
            log.warning("health monitor: lost the leadership; standing by")
        refusal = getattr(lead, "refusal", None)
        if not leading and callable(refusal):
            raise refusal()
        return leading

    async def _sweep(self) -> SweepReport:
        started = perf_counter()
        now = self._now()
        report = SweepReport(at=now)
        if not await self._lead():
            return report
        report.swept = True
        try:
            instances = await self._client.list_instances()
        except BackendError as exc:
            await self._backend_failed(now, exc, report)
            self._finish(report, started, error=str(exc))
            return report

        events: list[MonitorEvent] = []
        if self._backend_failures >= BACKEND_FAILURES_FOR_UNREACHABLE:
            events.append(
                MonitorEvent(
                    kind=EventKind.BACKEND_RECOVERED,
                    at=now,
                    detail=f"backend answers again after {self._backend_failures} failed sweeps",
                )
            )

        observations = await observe(self._client, instances, concurrency=self._concurrency)
        stale_now = stale_ids(observations, now, self._timeout)
        running = sum(1 for i in instances if i.is_running)
        storm = self._storm.is_storm(len(stale_now), running)
        if storm and not self._in_storm:
            events.append(
                MonitorEvent(
                    kind=EventKind.STORM,
                    at=now,
                    stale_ids=tuple(stale_now),
                    detail=(
                        f"{len(stale_now)} of {running} running instances have a stale "
                        "heartbeat; not restarting them one by one"
                    ),
                )
            )
        # Muted instances (the alerts feature's --no-restart) are asked before any write.
        candidates = set() if storm else await self._restartable(stale_now)

        recorded = await self._in_transaction(
            lambda session: self._record(session, observations, now, candidates, events)
        )
        self._remember(recorded)
        self._backend_failures = 0
        self._in_storm = storm
        report.instances, report.running, report.storm = len(instances), running, storm
        report.stale_ids = stale_now
        report.changes = [
            (c.instance.id, c.from_status, c.to_status) for c in recorded.plan.changes
        ]
        report.events.extend(recorded.events)
        await self._fire_callbacks(recorded.announced)

        if recorded.restart_now:
            outcomes = await self._restart(recorded.restart_now)
            if outcomes:
                report.events.extend(await self._record_restarts(outcomes))
            report.restarted = [o.stale.instance.id for o in outcomes if o.error is None]
            report.restart_failed = [o.stale.instance.id for o in outcomes if o.error is not None]
        self._finish(report, started, error=None)
        return report

    def _finish(self, report: SweepReport, started: float, *, error: str | None) -> None:
        report.secs = perf_counter() - started
        self._last_sweep_at = report.at
        self._last_sweep_secs = report.secs
        self._last_error = error
        if error is None:
            self._stale_count = len(report.stale_ids)

    async def _backend_failed(self, now: datetime, exc: BackendError, report: SweepReport) -> None:
        self._backend_failures += 1
        report.backend_error = str(exc)
        log.warning(
            "health sweep: listing instances failed (%d in a row): %s", self._backend_failures, exc
        )
        if self._backend_failures != BACKEND_FAILURES_FOR_UNREACHABLE:
            return
        event = MonitorEvent(
            kind=EventKind.BACKEND_UNREACHABLE,
            at=now,
            detail=f"backend unreachable for {self._backend_failures} sweeps in a row: {exc}",
        )
        report.events.append(event)

        async def announce(session: AsyncSession | None) -> None:
            await self._dispatch(session, [event])

        try:
            await self._in_transaction(announce)
        except Exception:
            # The database may be down too; the sweep's own failure is the backend's.
            log.exception("could not record the backend-unreachable event")

    async def _restartable(self, ids: Iterable[str]) -> set[str]:
        allowed: set[str] = set()
        for instance_id in ids:
            if self._guard is not None:
                try:
                    verdict = self._guard(instance_id)
                    if inspect.isawaitable(verdict):
                        verdict = await verdict
                except Exception:
                    # A broken guard must not stop the monitor from healing the fleet.
                    log.exception("restart guard failed for %s; restarting anyway", instance_id)
                    verdict = True
                if not verdict:
                    log.debug("auto-restart of %s skipped by the restart guard", instance_id)
                    continue
            allowed.add(instance_id)
        return allowed

    async def _in_transaction(self, fn: Callable[[AsyncSession | None], Awaitable[T]]) -> T:
        if self._store is None:
            return await fn(None)
        return await self._store.run(fn)

    async def _record(
        self,
        session: AsyncSession | None,
        observations: list[Observation],
        now: datetime,
        candidates: set[str],
        pre_events: list[MonitorEvent],
    ) -> _Recorded:
        """Transaction 1: decide against the recorded statuses and write it all down.

        Runs again from the start when the store retries the transaction, so it changes
        nothing outside ``session``; memory is updated by the caller after the commit.
        """
        if session is not None:
            previous = await last_statuses(session)
        else:
            previous = {i: t.status for i, t in self._tracked.items() if t.status is not None}
        plan = SweepPlan()
        for start in range(0, len(observations), PLAN_SLICE):
            plan.extend(
                plan_sweep(
                    observations[start : start + PLAN_SLICE],
                    previous=previous,
                    tracked=self._tracked,
                    now=now,
                    timeout=self._timeout,
                )
            )
            # Let Slack acknowledgements and other tasks run between slices.
            await asyncio.sleep(0)
        changes = plan.changes
        if session is not None:
            # A change someone else already recorded (a user's pause, another replica) is
            # neither recorded nor announced twice.
            ids = [c.instance.id for c in changes if c.from_status is not None]
            latest = await latest_recorded_statuses(session, ids) if ids else {}
            changes = [
                c
                for c in changes
                if c.from_status is None or latest.get(c.instance.id) != c.to_status
            ]
            plan.changes = changes
            full = self._rows_refreshed_at is None or now - self._rows_refreshed_at >= (ROW_REFRESH)
            await upsert_instances(
                session,
                instances=plan.snapshots if full else self._changed_rows(plan, previous),
                seen_at=now,
            )
            await record_heartbeats(session, samples=plan.samples)
            await record_changes(session, changes=changes, at=now)
        else:
            full = True
        announced = [c for c in changes if c.announce]
        events = list(pre_events)
        events.extend(
            MonitorEvent(
                kind=c.kind,
                at=now,
                instance=c.instance,
                instance_id=c.instance.id,
                from_status=c.from_status,
                to_status=c.to_status,
                health=c.health,
                detail=c.reason or "",
            )
            for c in announced
        )
        restart_now, decision_events, decisions = await self._decide_restarts(
            session, [s for s in plan.stale if s.instance.id in candidates], now
        )
        events.extend(decision_events)
        await self._dispatch(session, events)
        return _Recorded(plan, announced, restart_now, events, decisions, now if full else None)

    def _changed_rows(self, plan: SweepPlan, previous: dict[str, str]) -> list[InstanceSnapshot]:
        """Snapshots that differ from the row last written (or from the stored status)."""
        changed = []
        for snapshot in plan.snapshots:
            mem = self._tracked.get(snapshot.id)
            if (
                mem is None
                or mem.stored != snapshot
                or previous.get(snapshot.id) != snapshot.status
            ):
                changed.append(snapshot)
        return changed

    async def _decide_restarts(
        self, session: AsyncSession | None, stale: list[StaleInstance], now: datetime
    ) -> tuple[
        list[tuple[StaleInstance, int]],
        list[MonitorEvent],
        dict[str, tuple[datetime | None, datetime | None]],
    ]:
        budget = self._budget
        restart_now: list[tuple[StaleInstance, int]] = []
        events: list[MonitorEvent] = []
        decisions: dict[str, tuple[datetime | None, datetime | None]] = {}
        for item in stale:
            inst = item.instance
            mem = self._tracked.get(inst.id)
            history = list(mem.restarts or []) if mem is not None else []
            if session is not None:
                # The store is the truth across replicas and process restarts; memory adds
                # the restarts whose record a failed transaction 2 lost.
                stored = await auto_restart_times(session, inst.id, since=now - budget.window)
                history = sorted(set(history) | set(stored))
            announced = mem.announced_exhaustion if mem is not None else None
            deferred = mem.deferred_until if mem is not None else None
            decision = decide_restart(history, now, budget, announced_episode=announced)
            if isinstance(decision, RestartNow):
                restart_now.append((item, decision.attempt))
                deferred = None
            elif isinstance(decision, DeferRestart):
                if deferred != decision.until:
                    events.append(
                        self._instance_event(
                            EventKind.RESTART_DEFERRED,
                            now,
                            item,
                            attempt=decision.attempt,
                            until=decision.until,
                            detail=(
                                f"auto-restart {decision.attempt} of {budget.count} waits until "
                                f"{_fmt_time(decision.until)} "
                                f"({budget.delay_before(decision.attempt).total_seconds():.0f} s"
                                " after the previous one)"
                            ),
                        )
                    )
                deferred = decision.until
            elif isinstance(decision, BudgetExhausted):
                if decision.announce:
                    events.append(
                        self._instance_event(
                            EventKind.RESTART_BUDGET_EXHAUSTED,
                            now,
                            item,
                            attempt=budget.count,
                            until=decision.until,
                            detail=(
                                f"auto-restarted {budget.count} times in "
                                f"{budget.window.total_seconds() / 60:.0f} min; "
                                "not restarting it again automatically"
                            ),
                        )
                    )
                announced = decision.episode
                deferred = None
            decisions[inst.id] = (announced, deferred)
        return restart_now, events, decisions

    @staticmethod
    def _instance_event(
        kind: EventKind,
        at: datetime,
        item: StaleInstance,
        *,
        detail: str,
        attempt: int | None = None,
        until: datetime | None = None,
    ) -> MonitorEvent:
        inst: Instance = item.instance
        return MonitorEvent(
            kind=kind,
            at=at,
            instance=inst,
            instance_id=inst.id,
            from_status=None,
            to_status=None,
            health=item.health,
            detail=detail,
            attempt=attempt,
            until=until,
        )

    def _remember(self, recorded: _Recorded) -> None:
        """Apply a committed sweep to memory; instances no longer listed are forgotten."""
        old, new = self._tracked, {}
        for instance_id, remembered in recorded.plan.memory.items():
            status, backend_status, failures, stale, snapshot = remembered
            mem = old.get(instance_id) or Tracked()
            mem.status, mem.backend_status, mem.stored = status, backend_status, snapshot
            mem.health_failures, mem.stale = failures, stale
            if not stale:
                mem.deferred_until = None
            new[instance_id] = mem
        for instance_id, (announced, deferred) in recorded.decisions.items():
            if (mem := new.get(instance_id)) is not None:
                mem.announced_exhaustion, mem.deferred_until = announced, deferred
        self._tracked = new
        if recorded.rows_refreshed_at is not None:
            self._rows_refreshed_at = recorded.rows_refreshed_at

    async def _fire_callbacks(self, changes: list[Change]) -> None:
        for change in changes:
            for callback in self._callbacks:
                try:
                    result = callback(change.instance.id, change.to_status, change.health)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("status-change callback failed for %s", change.instance.id)

    async def _dispatch(self, session: AsyncSession | None, events: list[MonitorEvent]) -> None:
        """Hand events to the handlers; inside the store's transaction, one SAVEPOINT each."""
        if not self._handlers:
            return
        for event in events:
            for handler in self._handlers:
                try:
                    if session is None:
                        await handler(None, event)
                    else:
                        async with session.begin_nested():
                            await handler(session, event)
                except Exception:
                    log.exception("monitor event handler failed on %s", event.kind)

    async def _restart(self, due: list[tuple[StaleInstance, int]]) -> list[_RestartOutcome]:
        """Ask the backend to restart each due instance, a bounded number at a time."""
        if self._leadership is not None and not await self._leadership.check():
            # Leadership lost since the sweep began: another replica may restart them.
            log.warning("lost the leadership before restarting %d instances; skipping", len(due))
            return []
        limit = asyncio.Semaphore(self._concurrency)

        async def one(item: StaleInstance, attempt: int) -> _RestartOutcome:
            async with limit:
                at = self._now()
                try:
                    await self._client.restart_instance(item.instance.id)
                except BackendError as exc:
                    log.warning("auto-restart of %s failed: %s", item.instance.label, exc)
                    return _RestartOutcome(item, attempt, at, str(exc))
                log.info(
                    "auto-restarted %s (attempt %d): %s",
                    item.instance.label,
                    attempt,
                    f"heartbeat {item.age_secs:.0f} s old",
                )
                return _RestartOutcome(item, attempt, at, None)

        return list(await asyncio.gather(*(one(item, attempt) for item, attempt in due)))

    async def _record_restarts(self, outcomes: list[_RestartOutcome]) -> list[MonitorEvent]:
        """Transaction 2: the restart records and their events."""
        for outcome in outcomes:
            mem = self._tracked.get(outcome.stale.instance.id)
            if mem is not None:
                window_start = outcome.at - self._budget.window
                kept = [t for t in (mem.restarts or []) if t > window_start]
                mem.restarts = [*kept, outcome.at]
        events = [
            self._instance_event(
                EventKind.RESTART_ATTEMPTED if o.error is None else EventKind.RESTART_FAILED,
                o.at,
                o.stale,
                attempt=o.attempt,
                detail=(
                    f"auto-restart {o.attempt} of {self._budget.count}: heartbeat "
                    f"{o.stale.age_secs:.0f} s old"
                    if o.error is None
                    else f"auto-restart {o.attempt} of {self._budget.count} failed: {o.error}"
                ),
            )
            for o in outcomes
        ]

        async def write(session: AsyncSession | None) -> None:
            if session is not None:
                for o in outcomes:
                    await record_restart(
                        session,
                        instance_id=o.stale.instance.id,
                        at=o.at,
                        cause="monitor",
                        ok=o.error is None,
                        error=o.error,
                    )
            await self._dispatch(session, events)

        try:
            await self._in_transaction(write)
        except Exception:
            # The restarts happened; memory keeps them for the budget until the store is back.
            log.exception("could not record %d auto-restarts", len(outcomes))
        return events
