"""The heap is frozen again once the first sweep has recorded the fleet (bot.runtime)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.monitor import SweepReport
from bot.runtime import FreezeAfterFirstSweep

AT = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # leave nothing frozen for the next test


def test_it_freezes_once_after_the_first_sweep_that_recorded_instances(thawed: None) -> None:
    freeze = FreezeAfterFirstSweep()
    # Not yet: this replica stood by, the backend failed, or the fleet was empty.
    freeze(SweepReport(at=AT, swept=False))
    freeze(SweepReport(at=AT, swept=True, instances=3, backend_error="backend timed out"))
    freeze(SweepReport(at=AT, swept=True, instances=0))
    assert freeze.frozen is None and gc.get_freeze_count() == 0

    kept = [{"instance": n} for n in range(1000)]  # what a first sweep leaves long-lived
    freeze(SweepReport(at=AT, swept=True, instances=len(kept)))
    assert freeze.frozen is not None and freeze.frozen >= len(kept)
    assert gc.get_freeze_count() >= len(kept)  # (frozen objects may still be freed)

    gc.unfreeze()
    freeze(SweepReport(at=AT, swept=True, instances=len(kept)))  # later sweeps: no more
    assert gc.get_freeze_count() == 0
