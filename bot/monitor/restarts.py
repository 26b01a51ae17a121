"""Auto-restart: deciding which stale instances restart now, asking the backend, the events.

An auto-restart is one :data:`RestartCall`: :func:`direct_restart` asks the backend (the
seed-style monitor without a database), :func:`leased_restart` goes through
:class:`bot.instances.InstanceActions`, which holds the instance's lease, so a user's
restart and an auto-restart never overlap (an instance someone is acting on is skipped
this sweep).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.backend.errors import BackendError
from bot.instances import Actor, Busy, Failed, InstanceActions
from bot.monitor.events import EventKind, MonitorEvent
from bot.monitor.policy import (
    BudgetExhausted,
    DeferRestart,
    RestartBudget,
    RestartNow,
    decide_restart,
)
from bot.monitor.reports import RestartDecisions, RestartOutcome
from bot.monitor.tracking import StaleInstance, Tracked

if TYPE_CHECKING:
    from bot.backend.client import InstanceClient
    from bot.monitor.store import MonitorTransaction

log = logging.getLogger(__name__)


def _fmt_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%H:%M:%S UTC")


def instance_event(
    kind: EventKind,
    at: datetime,
    item: StaleInstance,
    *,
    detail: str,
    attempt: int | None = None,
    until: datetime | None = None,
) -> MonitorEvent:
    """An event about one stale instance (restart decisions and outcomes)."""
    inst = item.instance
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


async def decide_restarts(
    tx: MonitorTransaction,
    stale: list[StaleInstance],
    *,
    now: datetime,
    budget: RestartBudget,
    tracked: Mapping[str, Tracked],
) -> tuple[list[tuple[StaleInstance, int]], list[MonitorEvent], RestartDecisions]:
    """Which stale instances restart now (with their attempt number), and what to announce."""
    restart_now: list[tuple[StaleInstance, int]] = []
    events: list[MonitorEvent] = []
    decisions: RestartDecisions = {}
    for item in stale:
        inst = item.instance
        mem = tracked.get(inst.id)
        # The store is the truth across replicas and process restarts; memory adds the
        # restarts whose record a failed second transaction lost.
        history = set(mem.restarts or []) if mem is not None else set()
        history |= set(await tx.auto_restart_times(inst.id, since=now - budget.window))
        reset_at = await tx.budget_reset_at(inst.id)
        if reset_at is not None:
            # Someone gave the budget back (bot.alerts.service.reset_restart_budget): the
            # restarts before it no longer count, in memory or in the store.
            history = {t for t in history if t > reset_at}
        announced = mem.announced_exhaustion if mem is not None else None
        deferred = mem.deferred_until if mem is not None else None
        decision = decide_restart(sorted(history), now, budget, announced_episode=announced)
        if isinstance(decision, RestartNow):
            restart_now.append((item, decision.attempt))
            deferred = None
        elif isinstance(decision, DeferRestart):
            if deferred != decision.until:
                delay = budget.delay_before(decision.attempt).total_seconds()
                events.append(
                    instance_event(
                        EventKind.RESTART_DEFERRED,
                        now,
                        item,
                        attempt=decision.attempt,
                        until=decision.until,
                        detail=(
                            f"auto-restart {decision.attempt} of {budget.count} waits until "
                            f"{_fmt_time(decision.until)} ({delay:.0f} s"
                            " after the previous one)"
                        ),
                    )
                )
            deferred = decision.until
        elif isinstance(decision, BudgetExhausted):
            if decision.announce:
                events.append(
                    instance_event(
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


SKIPPED = "skipped"
"""What a :data:`RestartCall` returns when it did not ask (another action holds the lease)."""

RestartCall = Callable[[StaleInstance], Awaitable[str | None]]
"""Restart one stale instance: None when asked, the error text, or :data:`SKIPPED`."""


def direct_restart(client: InstanceClient) -> RestartCall:
    """Ask the backend directly (no database, so no lease to take)."""

    async def restart(item: StaleInstance) -> str | None:
        try:
            await client.restart_instance(item.instance.id)
        except BackendError as exc:
            return str(exc)
        return None

    return restart


def leased_restart(actions: InstanceActions) -> RestartCall:
    """Restart under the instance's lease, through the one instance-action service.

    The records are the sweep's second transaction's (with the restart events), so the
    service does not write them; the next sweep sees whether the instance came back.
    """

    async def restart(item: StaleInstance) -> str | None:
        label = item.instance.label
        try:
            result = await actions.restart(item.instance, Actor.monitor(), wait=False, record=False)
        except Exception:
            # No lease without the database: a user's restart may be running; next sweep.
            log.exception("auto-restart of %s skipped: the lease failed", label)
            return SKIPPED
        if isinstance(result, Busy):
            running = result.running
            log.info(
                "auto-restart of %s skipped: a %s by %s is in progress",
                label,
                running.verb,
                running.actor or running.source,
            )
            return SKIPPED
        if isinstance(result, Failed) and result.exc is not None:
            return result.error
        return None

    return restart


async def restart_due(
    restart: RestartCall,
    due: list[tuple[StaleInstance, int]],
    *,
    concurrency: int,
    now: Callable[[], datetime],
) -> list[RestartOutcome]:
    """Restart each due instance, at most ``concurrency`` at a time; one outcome each asked."""
    limit = asyncio.Semaphore(concurrency)

    async def one(item: StaleInstance, attempt: int) -> RestartOutcome | None:
        async with limit:
            at = now()
            error = await restart(item)
            if error == SKIPPED:
                return None
            if error is not None:
                log.warning("auto-restart of %s failed: %s", item.instance.label, error)
                return RestartOutcome(item, attempt, at, error)
            log.info(
                "auto-restarted %s (attempt %d): %s",
                item.instance.label,
                attempt,
                f"heartbeat {item.age_secs:.0f} s old",
            )
            return RestartOutcome(item, attempt, at, None)

    outcomes = await asyncio.gather(*(one(item, attempt) for item, attempt in due))
    return [o for o in outcomes if o is not None]


def outcome_events(outcomes: list[RestartOutcome], budget: RestartBudget) -> list[MonitorEvent]:
    """One ``restart_attempted`` or ``restart_failed`` event per outcome."""
    return [
        instance_event(
            EventKind.RESTART_ATTEMPTED if o.error is None else EventKind.RESTART_FAILED,
            o.at,
            o.stale,
            attempt=o.attempt,
            detail=(
                f"auto-restart {o.attempt} of {budget.count}: heartbeat "
                f"{o.stale.age_secs:.0f} s old"
                if o.error is None
                else f"auto-restart {o.attempt} of {budget.count} failed: {o.error}"
            ),
        )
        for o in outcomes
    ]
