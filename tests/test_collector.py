"""bot.collector: full collections on their own thread, after sweeps, when Slack is idle.

Real threads, the real garbage collector, a real Precedence marked busy by hand (as the
Slack loop's selector marks it). No timing assertion: each test waits on the state it
expects (a bounded poll on a counter, as in tests/test_priority.py).
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.collector import NO_AUTOMATIC_FULL, IdleCollector
from bot.monitor import SweepReport
from bot.priority import Precedence
from tests.support.threads import WAIT_SECS, wait_until

AT = datetime(2026, 12, 1, 4, tzinfo=UTC)
#: Long enough that no periodic collection comes during a test: only requests count.
NEVER_SECS = 3600.0


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """Leave nothing frozen and the thresholds as found, whatever a test did."""
    before = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        assert gc.get_threshold() == before


class Node:
    """A cycle of one: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


def old_garbage() -> weakref.ref[Node]:
    """A cycle in generation 2, unreachable: a gen-0 or gen-1 collection never frees it."""
    node = Node()
    gc.collect(1)  # survivors of a gen-1 collection move to the oldest generation
    ref = weakref.ref(node)
    del node
    return ref


async def test_cyclic_garbage_is_freed_on_request_and_automatic_full_collections_are_off() -> None:
    young, middle, _ = gc.get_threshold()
    collector = IdleCollector(every_secs=NEVER_SECS)
    collector.start()
    try:
        assert gc.get_threshold() == (young, middle, NO_AUTOMATIC_FULL)
        garbage = old_garbage()
        gc.collect(1)
        assert garbage() is not None  # the younger generations do not reach it
        collector.request()
        wait_until(lambda: collector.collections == 1)
        assert garbage() is None
        assert collector.freed >= 1 and collector.collected_secs > 0
    finally:
        await collector.aclose()
    assert not collector.running


async def test_it_waits_while_the_slack_loop_is_busy_and_collects_once_it_is_idle() -> None:
    slack = Precedence()
    collector = IdleCollector(slack, every_secs=NEVER_SECS, max_wait_secs=WAIT_SECS * 2)
    collector.start()
    try:
        slack.enter()  # a request is being answered
        collector.request()
        wait_until(lambda: collector.parked)
        assert collector.collections == 0
        slack.leave()
        wait_until(lambda: collector.collections == 1)
        assert collector.waits_timed_out == 0 and not collector.parked
        # The collector's waits are not the sweep's: the sweep's yield counter is untouched.
        assert slack.yields == 0
    finally:
        await collector.aclose()


async def test_a_busy_slack_loop_only_delays_a_collection() -> None:
    slack = Precedence()
    slack.enter()  # busy for the whole test
    collector = IdleCollector(slack, every_secs=NEVER_SECS, max_wait_secs=0.001)
    collector.start()
    try:
        garbage = old_garbage()
        collector.request()
        wait_until(lambda: collector.collections == 1)
        assert slack.busy and collector.waits_timed_out == 1
        assert garbage() is None
    finally:
        await collector.aclose()
        slack.leave()


async def test_a_stop_while_parked_ends_the_thread_without_collecting() -> None:
    slack = Precedence()
    slack.enter()
    collector = IdleCollector(slack, every_secs=NEVER_SECS, max_wait_secs=WAIT_SECS * 10)
    collector.start()
    try:
        collector.request()
        wait_until(lambda: collector.parked)
    finally:
        await collector.aclose()  # joins for 5 s at most: the park must see the stop
        slack.leave()
    assert not collector.running
    assert collector.collections == 0


async def test_a_collection_comes_at_least_every_interval_without_sweeps() -> None:
    collector = IdleCollector(every_secs=0.01, min_gap_secs=0)
    collector.start()
    try:
        wait_until(lambda: collector.collections >= 2)
    finally:
        await collector.aclose()


async def test_the_first_recorded_sweep_is_collected_and_frozen_once() -> None:
    collector = IdleCollector(every_secs=NEVER_SECS, min_gap_secs=0)
    # Not yet: a standby round, a sweep whose listing failed, an empty fleet. A standby
    # round asks for nothing; the other two are collected, not frozen.
    collector(SweepReport(at=AT, swept=False))
    collector(SweepReport(at=AT, swept=True, instances=3, backend_error="backend timed out"))
    collector(SweepReport(at=AT, swept=True, instances=0))
    # Reported before the collector started (a sweep that ended while the bot still opened):
    # served once it runs.
    collector.start()
    try:
        wait_until(lambda: collector.collections == 1)
        assert collector.frozen is None and gc.get_freeze_count() == 0

        kept = [{"instance": n} for n in range(1000)]  # what a first sweep leaves long-lived
        collector(SweepReport(at=AT, swept=True, instances=len(kept)))
        wait_until(lambda: collector.collections == 2)
        assert collector.frozen is not None and collector.frozen >= len(kept)
        assert gc.get_freeze_count() >= len(kept)

        gc.unfreeze()
        collector(SweepReport(at=AT, swept=True, instances=len(kept)))  # later sweeps: no more
        wait_until(lambda: collector.collections == 3)
        assert gc.get_freeze_count() == 0
    finally:
        await collector.aclose()


async def test_the_thresholds_come_back_when_the_last_collector_stops() -> None:
    before = gc.get_threshold()
    first, second = IdleCollector(every_secs=NEVER_SECS), IdleCollector(every_secs=NEVER_SECS)
    first.start()
    second.start()
    try:
        await first.aclose()
        assert gc.get_threshold()[2] == NO_AUTOMATIC_FULL  # the second still runs
    finally:
        await second.aclose()
        await first.aclose()  # a second close changes nothing
    assert gc.get_threshold() == before


async def test_left_to_cpython_it_keeps_the_schedule_and_only_freezes_the_fleet() -> None:
    before = gc.get_threshold()
    collector = IdleCollector(take_schedule=False)
    collector.start()
    try:
        assert gc.get_threshold() == before
        collector(SweepReport(at=AT, swept=True, instances=1))
        wait_until(lambda: collector.frozen is not None)
        assert collector.collections == 1 and gc.get_freeze_count() > 0
    finally:
        await collector.aclose()
    assert gc.get_threshold() == before
