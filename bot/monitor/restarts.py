"""Auto-restart: deciding which stale instances restart now, asking the backend, the events.

The backend call itself is :func:`restart_instance`, kept to one small function so the one
place that performs an auto-restart is easy to find (and to route elsewhere).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.backend.errors import BackendError
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
    from collections.abc import Callable

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


async def restart_instance(client: InstanceClient, item: StaleInstance) -> None:
    """The monitor's one auto-restart call (raises BackendError when the backend refuses)."""
    await client.restart_instance(item.instance.id)


async def restart_due(
    client: InstanceClient,
    due: list[tuple[StaleInstance, int]],
    *,
    concurrency: int,
    now: Callable[[], datetime],
) -> list[RestartOutcome]:
    """Restart each due instance, at most ``concurrency`` at a time; one outcome each."""
    limit = asyncio.Semaphore(concurrency)

    async def one(item: StaleInstance, attempt: int) -> RestartOutcome:
        async with limit:
            at = now()
            try:
                await restart_instance(client, item)
            except BackendError as exc:
                log.warning("auto-restart of %s failed: %s", item.instance.label, exc)
                return RestartOutcome(item, attempt, at, str(exc))
            log.info(
                "auto-restarted %s (attempt %d): %s",
                item.instance.label,
                attempt,
                f"heartbeat {item.age_secs:.0f} s old",
            )
            return RestartOutcome(item, attempt, at, None)

    return list(await asyncio.gather(*(one(item, attempt) for item, attempt in due)))


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
