"""The worker's idle CPU priority: the warning a starved sweep gives (bot/worker_priority.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bot.monitor.reports import SweepReport
from bot.worker_priority import StarvedSweepWarning

INTERVAL = 30.0


def report(secs: float, swept: bool = True) -> SweepReport:
    return SweepReport(at=datetime.now(UTC), swept=swept, secs=secs)


def test_a_sweep_that_outlasts_its_interval_warns_once_per_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warn = StarvedSweepWarning(INTERVAL)
    with caplog.at_level(logging.WARNING, logger="bot.worker_priority"):
        for secs in (4.0, INTERVAL, 31.5, 45.0, 60.0, 3.0, 40.0):
            warn(report(secs))
    # 30 s keeps time; 31.5 s starts an episode (45 and 60 continue it); 3 s ends it.
    assert warn.warnings == 2
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "a sweep took 31.5 s, longer than its interval of 30 s" in messages[0]
    assert "STARPOD_WORKER_SCHEDULING=normal" in messages[0]
    assert "took 40.0 s" in messages[1]


def test_a_standby_round_is_no_sweep_and_never_warns(caplog: pytest.LogCaptureFixture) -> None:
    warn = StarvedSweepWarning(INTERVAL)
    with caplog.at_level(logging.WARNING, logger="bot.worker_priority"):
        warn(report(90.0, swept=False))  # a replica standing by (or skipped): no sweep ran
    assert warn.warnings == 0 and not warn.starved
    assert caplog.records == []
