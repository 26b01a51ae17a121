"""One sweep, in this order, so no transaction is ever held across an HTTP call.

1. the instance list;
2. per slice of ``slice_size`` instances (1,000 by default), in list order:
   a. fetch: health for the slice's running instances the list left without;
   b. decide (pure, :mod:`bot.monitor.tracking` and :mod:`bot.monitor.policy`): effective
      statuses, samples, changes, stale instances;
   c. one transaction: instance rows, heartbeat samples and unannounced changes (first
      sightings); instances with a change to announce are held for step 3;
3. the storm rule over the whole sweep's stale instances, then one transaction: the held
   rows, samples and changes, the sweep's events (backend recovered, storm) before the
   changes' events (the storm inhibitor must hear of the storm first), the restart
   decisions and their events (event handlers run inside it, each in a savepoint);
4. the seed's ``on_status_change`` callbacks, once per announced change, in list order;
5. restarts over HTTP;
6. a transaction: restart records and restart events.

Slices keep the working set of a sweep ~1,000 instances wide whatever the fleet's size
(what is held is small, except in a storm), and a slice the store refuses loses only its
own results: the sweep raises its error at the end, after the rest is done.

Leadership is the caller's business (:class:`~bot.monitor.HealthMonitor`); the same steps
run over every :class:`~bot.monitor.store.MonitorStore`, in memory or in a database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING

from bot.backend.errors import BackendError, BackendUnavailable
from bot.monitor.events import EventKind, MonitorEvent
from bot.monitor.fetch import observe
from bot.monitor.own_loop import call_on
from bot.monitor.policy import BACKEND_FAILURES_FOR_UNREACHABLE
from bot.monitor.reports import RestartDecisions, RestartOutcome, SweepReport
from bot.monitor.restarts import (
    RestartCall,
    decide_restarts,
    direct_restart,
    outcome_events,
    restart_due,
)
from bot.monitor.tracking import (
    Change,
    SliceHealth,
    StaleInstance,
    SweepPlan,
    Tracked,
    plan_sweep,
)
from bot.store.database import connection_lost

if TYPE_CHECKING:
    from bot.backend.client import InstanceClient
    from bot.backend.models import Instance
    from bot.monitor.settings import MonitorConfig
    from bot.monitor.store import MonitorStore, MonitorTransaction
    from bot.store.records import InstanceSnapshot

log = logging.getLogger(__name__)

RestartPermit = Callable[[int], Awaitable[bool]]
"""``await permit(count)``: may this sweep restart ``count`` instances now (leadership)?"""


class Sweeper:
    """Runs sweeps and keeps what one sweep tells the next (memory per instance)."""

    def __init__(self, client: InstanceClient, store: MonitorStore, config: MonitorConfig) -> None:
        self.client = client
        self.store = store
        self.config = config
        # How a due instance is restarted; the monitor swaps in the leased service call.
        self.restart: RestartCall = direct_restart(client)
        self.tracked: dict[str, Tracked] = {}
        self.backend_failures = 0
        self.in_storm = False
        self.rows_refreshed_at: datetime | None = None
        # The loop callbacks and the restart guard belong to (the Slack side's), when the
        # sweep runs on a loop of its own (bot.monitor.own_loop); None: this loop.
        self.home: asyncio.AbstractEventLoop | None = None

    def forget(self) -> None:
        """Drop what memory says (another replica may have acted meanwhile)."""
        self.tracked.clear()
        self.rows_refreshed_at = None
        self.backend_failures = 0
        self.in_storm = False

    async def sweep(self, report: SweepReport, *, may_restart: RestartPermit) -> None:
        """Fetch, decide and record slice by slice, conclude, call back, restart; fills
        ``report``.

        Raises the first store failure after the rest is done: one slice the database
        refused loses only its own instances' results for this sweep.
        """
        started = perf_counter()
        now = report.at
        config = self.config
        # One deadline for every HTTP call of the fetch step: no instance, and no slow
        # list, holds the sweep past it.
        fetch_secs = config.fetch_secs()
        until = asyncio.get_running_loop().time() + fetch_secs
        try:
            async with asyncio.timeout_at(until):
                instances = await self.client.list_instances()
        except TimeoutError:
            reason = f"no answer within {fetch_secs:g} s (the sweep's deadline)"
            exc = BackendUnavailable(method="GET", path="/instances", reason=reason)
            await self._backend_failed(now, exc, report)
            report.secs = perf_counter() - started
            return
        except BackendError as exc:
            await self._backend_failed(now, exc, report)
            report.secs = perf_counter() - started
            return

        events: list[MonitorEvent] = []
        if self.backend_failures >= BACKEND_FAILURES_FOR_UNREACHABLE:
            events.append(
                MonitorEvent(
                    kind=EventKind.BACKEND_RECOVERED,
                    at=now,
                    detail=f"backend answers again after {self.backend_failures} failed sweeps",
                )
            )
        refreshed = self.rows_refreshed_at
        full = refreshed is None or now - refreshed >= self.store.row_refresh
        memory: dict[str, Tracked] = {}
        # Instances with a change to announce: recorded and announced in the last
        # transaction, with the storm (whose handlers must hear of it first) and the
        # restart decisions. Few in a usual sweep; every stale one in a storm.
        held = SweepPlan()
        running = 0
        failure: Exception | None = None
        size = max(config.slice_size, 1)
        # Slices keep a sweep's working set (health, plan, rows) ~1 slice wide. The next
        # slice is not fetched while one is recorded: measured, the HTTP calls and the
        # database driver's thread then contend for the interpreter lock and the sweep
        # took ~0.2 s more CPU at 10,000 instances, no less time (BENCHMARKS.md).
        for first in range(0, len(instances), size):
            part = instances[first : first + size]
            health = await observe(
                self.client,
                part,
                concurrency=config.concurrency,
                call_secs=config.health_call_secs(),
                until=until,
            )
            try:
                # Awaited before the loop moves on: the lambda's variables cannot change.
                recorded = await self.store.run(
                    lambda tx: self._record(tx, part, health, now, full)  # noqa: B023
                )
            except Exception as exc:
                log.warning("health sweep: recording %d instances failed: %s", len(part), exc)
                failure = failure or exc
                self._keep(part, memory)
                running += sum(1 for inst in part if inst.is_running)
                continue
            plan, slice_held = recorded
            self._remember(plan, memory)
            held.extend(slice_held)
            running += plan.running + slice_held.running
            report.changes.extend((c.instance.id, c.from_status, c.to_status) for c in plan.changes)

        stale = held.stale
        stale_now = [s.instance.id for s in stale]
        storm = config.storm.is_storm(len(stale_now), running)
        if storm and not self.in_storm:
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
        due = [s for s in stale if s.instance.id in candidates]
        restart_now: list[tuple[StaleInstance, int]] = []
        if due or events or held.snapshots:
            try:
                restart_now, events, decisions = await self.store.run(
                    lambda tx: self._conclude(tx, held, due, now, events)
                )
            except Exception as exc:
                failure = failure or exc
                # The held instances' memory stays as it was: the next sweep tries again.
                self._keep_ids(held.memory, memory)
            else:
                self._remember(held, memory)
                for instance_id, (announced, deferred) in decisions.items():
                    if (decided := memory.get(instance_id)) is not None:
                        decided.announced_exhaustion, decided.deferred_until = announced, deferred
                report.changes.extend(
                    (c.instance.id, c.from_status, c.to_status) for c in held.changes
                )
                report.events.extend(events)
                await self._fire_callbacks([c for c in held.changes if c.announce])
        # Instances no longer listed are forgotten, here and in a store kept in memory.
        self.tracked = memory
        self.store.forget_unlisted({i.id for i in instances})
        if full and failure is None:
            self.rows_refreshed_at = now
        self.backend_failures = 0
        self.in_storm = storm
        report.instances, report.running, report.storm = len(instances), running, storm
        report.stale_ids = stale_now

        if restart_now:
            outcomes: list[RestartOutcome] = []
            if await may_restart(len(restart_now)):
                outcomes = await restart_due(
                    self.restart,
                    restart_now,
                    concurrency=config.concurrency,
                    now=config.now,
                )
            if outcomes:
                report.events.extend(await self._record_restarts(outcomes))
            report.restarted = [o.stale.instance.id for o in outcomes if o.error is None]
            report.restart_failed = [o.stale.instance.id for o in outcomes if o.error is not None]
        report.secs = perf_counter() - started
        if failure is not None:
            raise failure

    def _keep(self, instances: Iterable[Instance], memory: dict[str, Tracked]) -> None:
        """Memory stays as the last sweep left it for instances whose writes failed."""
        self._keep_ids((i.id for i in instances), memory)

    def _keep_ids(self, ids: Iterable[str], memory: dict[str, Tracked]) -> None:
        old = self.tracked
        for instance_id in ids:
            if (kept := old.get(instance_id)) is not None:
                memory[instance_id] = kept
            else:
                memory.pop(instance_id, None)

    async def _backend_failed(self, now: datetime, exc: BackendError, report: SweepReport) -> None:
        self.backend_failures += 1
        report.backend_error = str(exc)
        log.warning(
            "health sweep: listing instances failed (%d in a row): %s", self.backend_failures, exc
        )
        if self.backend_failures != BACKEND_FAILURES_FOR_UNREACHABLE:
            return
        event = MonitorEvent(
            kind=EventKind.BACKEND_UNREACHABLE,
            at=now,
            detail=f"backend unreachable for {self.backend_failures} sweeps in a row: {exc}",
        )
        report.events.append(event)
        try:
            await self.store.run(lambda tx: self._dispatch(tx, [event]))
        except Exception:
            # The database may be down too; the sweep's own failure is the backend's.
            log.exception("could not record the backend-unreachable event")

    async def _restartable(self, ids: Iterable[str]) -> set[str]:
        guard = self.config.guard
        allowed: set[str] = set()
        for instance_id in ids:
            if guard is not None:
                try:
                    verdict = await call_on(self.home, partial(guard, instance_id))
                except Exception:
                    # A broken guard must not stop the monitor from healing the fleet.
                    log.exception("restart guard failed for %s; restarting anyway", instance_id)
                    verdict = True
                if not verdict:
                    log.debug("auto-restart of %s skipped by the restart guard", instance_id)
                    continue
            allowed.add(instance_id)
        return allowed

    async def _record(
        self,
        tx: MonitorTransaction,
        part: list[Instance],
        health: SliceHealth,
        now: datetime,
        full: bool,
    ) -> tuple[SweepPlan, SweepPlan]:
        """One slice's transaction: decide against the recorded statuses, write it down.

        Returns what was written and what is held for the last transaction: the rows,
        samples and changes of instances with a change to announce, and the stale ones.
        Runs again from the start when the store retries the transaction, so it changes
        nothing outside ``tx``; memory is updated by the caller after the commit.
        """
        previous = await tx.last_statuses([i.id for i in part])
        plan = plan_sweep(
            part,
            health,
            previous=previous,
            tracked=self.tracked,
            now=now,
            timeout=self.config.timeout,
        )
        # A change someone else already recorded (a user's pause, another replica) is
        # neither recorded nor announced twice.
        ids = [c.instance.id for c in plan.changes if c.from_status is not None]
        latest = await tx.latest_recorded_statuses(ids) if ids else {}
        plan.changes = [
            c
            for c in plan.changes
            if c.from_status is None or latest.get(c.instance.id) != c.to_status
        ]
        held = _hold(plan, {c.instance.id for c in plan.changes if c.announce})
        await tx.upsert_instances(
            plan.snapshots if full else self._changed_rows(plan, previous), seen_at=now
        )
        await tx.record_heartbeats(plan.samples)
        await tx.record_changes(plan.changes, at=now)
        return plan, held

    async def _conclude(
        self,
        tx: MonitorTransaction,
        held: SweepPlan,
        due: list[StaleInstance],
        now: datetime,
        pre_events: list[MonitorEvent],
    ) -> tuple[list[tuple[StaleInstance, int]], list[MonitorEvent], RestartDecisions]:
        """The last transaction: the held changes (with their rows and samples) and their
        events after the sweep's own (recovery, storm), then the restart decisions."""
        await tx.upsert_instances(held.snapshots, seen_at=now)
        await tx.record_heartbeats(held.samples)
        await tx.record_changes(held.changes, at=now)
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
            for c in held.changes
            if c.announce
        )
        restart_now, decision_events, decisions = await decide_restarts(
            tx, due, now=now, budget=self.config.budget, tracked=self.tracked
        )
        events.extend(decision_events)
        await self._dispatch(tx, events)
        return restart_now, events, decisions

    def _changed_rows(self, plan: SweepPlan, previous: dict[str, str]) -> list[InstanceSnapshot]:
        """Snapshots that differ from the row last written (or from the stored status)."""
        changed = []
        for snapshot in plan.snapshots:
            mem = self.tracked.get(snapshot.id)
            if (
                mem is None
                or (mem.stored is not snapshot and mem.stored != snapshot)
                or previous.get(snapshot.id) != snapshot.status
            ):
                changed.append(snapshot)
        return changed

    def _remember(self, plan: SweepPlan, memory: dict[str, Tracked]) -> None:
        """Apply a committed slice to the sweep's new memory (built beside the old one)."""
        old = self.tracked
        for instance_id, remembered in plan.memory.items():
            status, backend_status, failures, stale, snapshot = remembered
            mem = old.get(instance_id)
            if mem is None:
                mem = Tracked()
            elif mem.stored is snapshot or (mem.stored is not None and mem.stored == snapshot):
                # Unchanged: keep the objects of the sweep that stored it. Anything this
                # sweep allocated and kept would be scattered among its garbage and pin
                # Python's memory pools at the sweep's high-water mark (BENCHMARKS.md).
                snapshot, instance_id = mem.stored, mem.stored.id
            mem.status, mem.backend_status, mem.stored = status, backend_status, snapshot
            mem.health_failures, mem.stale = failures, stale
            if not stale:
                mem.deferred_until = None
            memory[instance_id] = mem

    async def _fire_callbacks(self, changes: list[Change]) -> None:
        for change in changes:
            for callback in self.config.callbacks:
                instance = change.instance
                try:
                    await call_on(
                        self.home, partial(callback, instance.id, change.to_status, change.health)
                    )
                except Exception:
                    log.exception("status-change callback failed for %s", change.instance.id)

    async def _dispatch(self, tx: MonitorTransaction, events: list[MonitorEvent]) -> None:
        """Hand events to the handlers inside the transaction, one savepoint each."""
        handlers = self.config.handlers
        if not handlers:
            return
        for event in events:
            for handler in handlers:
                try:
                    async with tx.savepoint():
                        await handler(tx.session, event)
                except Exception as exc:
                    if connection_lost(exc):
                        # Not the handler's failure: the transaction is gone, savepoint and
                        # all. The store runs the whole transaction again on a new one.
                        raise
                    log.exception("monitor event handler failed on %s", event.kind)

    async def _record_restarts(self, outcomes: list[RestartOutcome]) -> list[MonitorEvent]:
        """Transaction 2: the restart records and their events."""
        window = self.config.budget.window
        for outcome in outcomes:
            mem = self.tracked.get(outcome.stale.instance.id)
            if mem is not None:
                kept = [t for t in (mem.restarts or []) if t > outcome.at - window]
                mem.restarts = [*kept, outcome.at]
        events = outcome_events(outcomes, self.config.budget)

        async def write(tx: MonitorTransaction) -> None:
            for o in outcomes:
                await tx.record_restart(
                    instance_id=o.stale.instance.id, at=o.at, ok=o.error is None, error=o.error
                )
            await self._dispatch(tx, events)

        try:
            await self.store.run(write)
        except Exception:
            # The restarts happened; memory keeps them for the budget until the store is back.
            log.exception("could not record %d auto-restarts", len(outcomes))
        return events


def _hold(plan: SweepPlan, ids: set[str]) -> SweepPlan:
    """Move the instances ``ids`` (and every stale one's entry) out of ``plan``.

    The held plan carries their rows, samples, changes and memory to the sweep's last
    transaction; ``plan.stale`` moves whole (the storm and restarts are judged over the
    sweep), as does the count of running instances.
    """
    held = SweepPlan(stale=plan.stale, running=plan.running)
    plan.stale, plan.running = [], 0
    if ids:
        held.snapshots = [s for s in plan.snapshots if s.id in ids]
        plan.snapshots = [s for s in plan.snapshots if s.id not in ids]
        held.samples = [s for s in plan.samples if s.instance_id in ids]
        plan.samples = [s for s in plan.samples if s.instance_id not in ids]
        held.changes = [c for c in plan.changes if c.instance.id in ids]
        plan.changes = [c for c in plan.changes if c.instance.id not in ids]
        held.memory = {i: plan.memory.pop(i) for i in ids}
    return held
