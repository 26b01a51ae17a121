"""The fetch step of a sweep: the instance list, then health where the list did not carry it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot.backend.client import InstanceClient
from bot.backend.errors import BackendError, BackendUnavailable
from bot.backend.models import HealthInfo, Instance
from bot.monitor.policy import health_calls_degraded
from bot.monitor.tracking import SliceHealth

log = logging.getLogger(__name__)


def _late(instance_id: str, secs: float, what: str) -> BackendUnavailable:
    """The failure recorded for a health call that did not answer in time."""
    return BackendUnavailable(
        method="GET",
        path=f"/instances/{instance_id}/health",
        reason=f"no answer within {secs:g} s ({what})",
    )


async def fetch_health(
    client: InstanceClient,
    instance_ids: Sequence[str],
    *,
    concurrency: int,
    call_secs: float | None = None,
    until: float | None = None,
) -> dict[str, HealthInfo | str]:
    """Fetch the health of each instance, at most ``concurrency`` calls in flight.

    A fixed pool of workers drains one shared iterator: the same bound as a
    semaphore-guarded gather, without creating one task per instance (10,000 of them
    would cost memory and scheduling for nothing). A failed call is returned as the text
    of its error, not raised, so one bad instance never spoils the sweep.

    Each call gets at most ``call_secs``; none runs past ``until`` (the event loop's
    time, the sweep's deadline). A call cut short, or never started because the deadline
    passed, is a failed call: the instance's health is unknown for this sweep.
    """
    results: dict[str, HealthInfo | str] = {}
    pending = iter(instance_ids)
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        for instance_id in pending:
            budget = call_secs
            what = "the sweep's deadline for one health call"
            if until is not None:
                left = until - loop.time()
                if left <= 0:
                    late = _late(instance_id, 0, "the sweep's deadline passed")
                    results[instance_id] = str(late)
                    continue
                if budget is None or left < budget:
                    budget, what = left, "the sweep's deadline"
            try:
                if budget is None:
                    results[instance_id] = await client.get_health(instance_id)
                else:
                    results[instance_id] = await client.get_health(
                        instance_id, until=loop.time() + budget
                    )
            except TimeoutError:
                results[instance_id] = str(_late(instance_id, budget or 0, what))
            except BackendError as exc:
                results[instance_id] = str(exc)

    workers = min(max(concurrency, 1), len(instance_ids))
    await asyncio.gather(*(worker() for _ in range(workers)))
    return results


async def observe(
    client: InstanceClient,
    instances: Sequence[Instance],
    *,
    concurrency: int,
    call_secs: float | None = None,
    until: float | None = None,
) -> SliceHealth:
    """The health of the listed instances the list left without it.

    Health is fetched for running instances only (the others are never checked, as in the
    seed), within the deadlines of :func:`fetch_health`; inline health stays on the
    instances, where :func:`~bot.monitor.tracking.plan_sweep` reads it. One mapping per
    slice rather than one object per instance: a sweep goes through 10,000.
    """
    missing = [i.id for i in instances if i.health is None and i.is_running]
    if not missing:
        return SliceHealth({})
    fetched = await fetch_health(
        client, missing, concurrency=concurrency, call_secs=call_secs, until=until
    )
    failed = sum(1 for got in fetched.values() if isinstance(got, str))
    degraded = health_calls_degraded(failed, len(missing))
    if degraded:
        log.warning(
            "health sweep: %d of %d health calls failed; blaming the backend, not the instances",
            failed,
            len(missing),
        )
    return SliceHealth(fetched, failures_count=not degraded)
