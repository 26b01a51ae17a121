"""A worker's CPU priority (bot/worker_priority.py): the fallback, and the warning a starved
sweep gives."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import pytest

from bot.config import Settings, WorkerScheduling, load_settings
from bot.monitor.reports import SweepReport
from bot.worker_priority import CpuPriority, StarvedSweepWarning, take_role_priority
from tests.support.threads import in_a_thread

DEADLINE = 20.0  # two thirds of a 30 s interval


def report(secs: float, swept: bool = True) -> SweepReport:
    return SweepReport(at=datetime.now(UTC), swept=swept, secs=secs)


def test_a_sweep_past_its_deadline_warns_once_per_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warn = StarvedSweepWarning(DEADLINE)
    with caplog.at_level(logging.WARNING, logger="bot.worker_priority"):
        for secs in (4.0, DEADLINE, 21.5, 25.0, 30.0, 3.0, 24.0):
            warn(report(secs))
    # 20 s keeps time; 21.5 s starts an episode (25 and 30 continue it); 3 s ends it.
    assert warn.warnings == 2
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "a sweep took 21.5 s, past its deadline of 20 s for health calls" in messages[0]
    assert "STARPOD_WORKER_SCHEDULING=normal" in messages[0]
    assert "took 24.0 s" in messages[1]


def test_a_round_that_did_not_sweep_neither_warns_nor_ends_an_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warn = StarvedSweepWarning(DEADLINE)
    with caplog.at_level(logging.WARNING, logger="bot.worker_priority"):
        warn(report(90.0, swept=False))  # standing by: no sweep ran
        assert warn.warnings == 0 and not warn.starved
        warn(report(30.0))
        warn(report(0.0, swept=False))  # a standby round between two late sweeps
        warn(report(30.0))
    assert warn.warnings == 1 and warn.starved
    assert len(caplog.records) == 1


def test_the_start_line_names_the_priority() -> None:
    assert str(CpuPriority(WorkerScheduling.IDLE, 0)) == "idle CPU priority"
    assert str(CpuPriority(WorkerScheduling.NORMAL, 10)) == "niceness 10"


def worker_settings() -> Settings:
    return load_settings({"STARPOD_ROLE": "worker"})


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux's SCHED_IDLE")
def test_a_refused_idle_scheduling_falls_back_to_the_niceness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel's answer under a seccomp profile that forbids the call.
    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    seen: list[CpuPriority] = []
    before = os.nice(0)
    in_a_thread(lambda: seen.append(take_role_priority(worker_settings())))
    assert seen == [CpuPriority(WorkerScheduling.NORMAL, min(before + 10, 19))]
