"""The pure restart-budget, staleness and storm rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.monitor.policy import (
    BudgetExhausted,
    DeferRestart,
    RestartBudget,
    RestartNow,
    StormRule,
    decide_restart,
    health_calls_degraded,
    heartbeat_age_secs,
    is_stale,
    stale_reason,
)

T0 = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)
BUDGET = RestartBudget()


def s(secs: float) -> datetime:
    return T0 + timedelta(seconds=secs)


def test_first_restart_is_immediate() -> None:
    assert decide_restart([], T0, BUDGET) == RestartNow(attempt=1)


def test_second_restart_waits_one_minute_after_the_first() -> None:
    assert decide_restart([s(0)], s(30), BUDGET) == DeferRestart(until=s(60), attempt=2)
    assert decide_restart([s(0)], s(59.9), BUDGET) == DeferRestart(until=s(60), attempt=2)
    assert decide_restart([s(0)], s(60), BUDGET) == RestartNow(attempt=2)


def test_third_restart_waits_five_minutes_after_the_second() -> None:
    history = [s(0), s(60)]
    assert decide_restart(history, s(90), BUDGET) == DeferRestart(until=s(360), attempt=3)
    assert decide_restart(history, s(359), BUDGET) == DeferRestart(until=s(360), attempt=3)
    assert decide_restart(history, s(360), BUDGET) == RestartNow(attempt=3)


def test_budget_exhausted_after_three_restarts_and_announced_once() -> None:
    history = [s(0), s(60), s(360)]
    first = decide_restart(history, s(390), BUDGET)
    assert first == BudgetExhausted(episode=s(360), until=s(1800), announce=True)
    again = decide_restart(history, s(420), BUDGET, announced_episode=first.episode)
    assert again == BudgetExhausted(episode=s(360), until=s(1800), announce=False)


def test_budget_frees_up_when_the_oldest_restart_leaves_the_window() -> None:
    history = [s(0), s(60), s(360)]
    assert isinstance(decide_restart(history, s(1799), BUDGET), BudgetExhausted)
    # At 30 min the first restart is out of the window: two remain, the 5-min delay has passed.
    assert decide_restart(history, s(1800), BUDGET) == RestartNow(attempt=3)


def test_a_new_exhaustion_is_announced_again() -> None:
    history = [s(0), s(60), s(360), s(1800)]
    decision = decide_restart(history, s(1830), BUDGET, announced_episode=s(360))
    assert decision == BudgetExhausted(episode=s(1800), until=s(60 + 1800), announce=True)


def test_restarts_outside_the_window_and_out_of_order_are_ignored() -> None:
    old = s(-1800), s(-3600)
    assert decide_restart([*old], s(0), BUDGET) == RestartNow(attempt=1)
    assert decide_restart([s(60), s(-7200), s(0)], s(100), BUDGET) == DeferRestart(
        until=s(360), attempt=3
    )


def test_zero_budget_never_restarts_and_says_so_once() -> None:
    budget = RestartBudget(count=0)
    first = decide_restart([], T0, budget)
    assert isinstance(first, BudgetExhausted) and first.announce
    second = decide_restart([], s(30), budget, announced_episode=first.episode)
    assert isinstance(second, BudgetExhausted) and not second.announce


def test_last_delay_repeats_and_first_delay_is_ignored() -> None:
    budget = RestartBudget(count=5, delays=(timedelta(seconds=99), timedelta(seconds=10)))
    assert budget.delay_before(1) == timedelta(0)
    assert budget.delay_before(2) == timedelta(seconds=10)
    assert budget.delay_before(5) == timedelta(seconds=10)
    assert decide_restart([], T0, budget) == RestartNow(attempt=1)
    assert decide_restart([s(0), s(10), s(20)], s(25), budget) == DeferRestart(
        until=s(30), attempt=4
    )


def test_invalid_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        RestartBudget(count=-1)
    with pytest.raises(ValueError):
        RestartBudget(window=timedelta(0))
    with pytest.raises(ValueError):
        RestartBudget(delays=(timedelta(seconds=-1),))


@settings(max_examples=100, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=5),
    window_secs=st.integers(min_value=60, max_value=7200),
    delays=st.lists(st.integers(min_value=0, max_value=900), min_size=0, max_size=4),
    sweep_secs=st.integers(min_value=5, max_value=120),
)
def test_a_permanently_stale_instance_never_exceeds_the_budget(
    count: int, window_secs: int, delays: list[int], sweep_secs: int
) -> None:
    """Sweep a never-recovering instance for 4 hours and check every promise of the policy."""
    budget = RestartBudget(
        count=count,
        window=timedelta(seconds=window_secs),
        delays=tuple(timedelta(seconds=d) for d in delays),
    )
    restarts: list[datetime] = []
    announced: datetime | None = None
    announcements = 0
    episodes: set[datetime] = set()
    now = T0
    while now < s(4 * 3600):
        decision = decide_restart(restarts, now, budget, announced_episode=announced)
        if isinstance(decision, RestartNow):
            assert decision.attempt == 1 + sum(1 for t in restarts if now - t < budget.window)
            restarts.append(now)
        elif isinstance(decision, DeferRestart):
            assert decision.until > now
        else:
            episodes.add(decision.episode)
            if decision.announce:
                announcements += 1
                announced = decision.episode
            assert decision.until > now
        now += timedelta(seconds=sweep_secs)
    assert restarts[0] == T0, "the first restart is immediate"
    for i, at in enumerate(restarts):
        in_window = [t for t in restarts[: i + 1] if at - t < budget.window]
        assert len(in_window) <= count
        if i > 0 and len(in_window) > 1:
            assert at - restarts[i - 1] >= budget.delay_before(len(in_window))
    # Every exhaustion is announced exactly once, however many sweeps it lasts.
    assert announcements == len(episodes)


def test_staleness_boundary_and_age() -> None:
    timeout = timedelta(seconds=90)
    assert not is_stale(s(0), s(90), timeout)
    assert is_stale(s(0), s(90.001), timeout)
    assert heartbeat_age_secs(s(10), s(0)) == 0.0
    assert heartbeat_age_secs(s(0), s(134)) == 134.0
    assert stale_reason(134.4, timeout) == "heartbeat stale: 134 s old (timeout 90 s)"


@pytest.mark.parametrize(
    ("stale", "running", "storm"),
    [
        (0, 0, False),
        (4, 4, False),  # below min_instances, even at 100 %
        (5, 10, True),
        (5, 11, False),
        (6, 11, True),
        (10, 10_000, False),
        (5_000, 10_000, True),
    ],
)
def test_storm_rule(stale: int, running: int, storm: bool) -> None:
    assert StormRule().is_storm(stale, running) is storm


def test_storm_rule_float_edges_and_validation() -> None:
    assert StormRule(min_instances=3, share=0.3).is_storm(3, 10)
    assert not StormRule(min_instances=1, share=1.0).is_storm(9, 10)
    with pytest.raises(ValueError):
        StormRule(min_instances=0)
    with pytest.raises(ValueError):
        StormRule(share=0)


@pytest.mark.parametrize(
    ("failed", "checked", "degraded"),
    [
        (0, 100, False),
        (2, 2, False),
        (3, 3, True),
        (5, 100, False),
        (10, 100, True),
        (12, 40, True),
        (1, 1, False),
    ],
)
def test_broad_health_failures_blame_the_backend(failed: int, checked: int, degraded: bool) -> None:
    assert health_calls_degraded(failed, checked) is degraded
