"""The CPU priority of a worker process (role worker): sweeps are background work.

A 10,000-instance sweep is seconds of CPU. On a host the worker shares with the web
process, Slack's acknowledgements must not wait behind it, so the worker takes a lower
priority at start, before any thread exists (on Linux a thread's scheduling policy and
niceness are its own, and new threads inherit them from the thread that starts them):

- ``idle`` (the default): Linux's ``SCHED_IDLE``. The kernel gives the worker the CPU time
  no other task wants, and preempts it as soon as a task of the normal policy (the web
  process, woken by a Slack request) wants its CPU. At niceness 10 alone the web
  process's acks still slowed while sweeps ran (BENCHMARKS.md, "Isolation: the worker at
  idle CPU scheduling").
- ``normal``: the normal policy at ``monitor.worker_nice`` (0: unchanged).

Where the kernel has no ``SCHED_IDLE`` (not Linux) or refuses it, ``idle`` falls back to
the niceness; the CLI logs the refusal and the start line says what the process runs at.
Without ``CAP_SYS_NICE``, and with ``RLIMIT_NICE`` at 0 (the default; the Docker image's
user), a process cannot leave ``SCHED_IDLE`` once it took it, so a worker cannot raise its
own priority when a busy host starves it: :class:`StarvedSweepWarning` says so in the log
instead, with the setting to change.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from bot.config import Role, Settings, WorkerScheduling
from bot.monitor.reports import SweepReport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CpuPriority:
    """What the process runs at: ``idle`` (SCHED_IDLE) or ``normal``, and its niceness."""

    policy: WorkerScheduling
    niceness: int

    def __str__(self) -> str:
        """As the start line says it: ``idle CPU priority`` or ``niceness 10``."""
        if self.policy == WorkerScheduling.IDLE:
            return "idle CPU priority"
        return f"niceness {self.niceness}"


def current_priority() -> CpuPriority:
    """The calling thread's policy and niceness, as the kernel reports them."""
    idle = getattr(os, "SCHED_IDLE", None)
    on_idle = idle is not None and os.sched_getscheduler(0) == idle
    return CpuPriority(WorkerScheduling.IDLE if on_idle else WorkerScheduling.NORMAL, os.nice(0))


def takes_idle(settings: Settings) -> bool:
    """True when this process is a worker that asks for idle scheduling (SCHED_IDLE) and the
    kernel has it; whether it got it: :func:`current_priority`."""
    return (
        settings.role == Role.WORKER
        and settings.monitor.worker_scheduling == WorkerScheduling.IDLE
        and hasattr(os, "SCHED_IDLE")
    )


def take_role_priority(settings: Settings) -> CpuPriority:
    """A worker process lowers its CPU priority (``monitor.worker_scheduling``, and
    ``monitor.worker_nice`` under ``normal``); other roles keep theirs. Returns what the
    calling thread runs at. Call it before any thread starts."""
    if takes_idle(settings):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return current_priority()
        except OSError:  # refused (a seccomp profile): the niceness, as under "normal"
            pass
    if settings.role == Role.WORKER and settings.monitor.worker_nice:
        os.nice(settings.monitor.worker_nice)
    return current_priority()


class StarvedSweepWarning:
    """A sweep callback: warns when a sweep ran past its deadline for health calls (what had
    not answered by then is unknown for that sweep) while the worker runs at idle priority,
    the sign of a host whose CPUs other work keeps busy. Once per episode: again only after
    a sweep that kept time. Rounds that did not sweep (standing by) change nothing."""

    def __init__(self, deadline_secs: float) -> None:
        self.deadline_secs = deadline_secs
        self.starved = False
        self.warnings = 0

    def __call__(self, report: SweepReport) -> None:
        if not report.swept:
            return
        late = report.secs > self.deadline_secs
        if late and not self.starved:
            self.warnings += 1
            log.warning(
                "a sweep took %.1f s, past its deadline of %g s for health calls, while this "
                "worker runs at idle CPU priority: other work keeps this host's CPUs busy, "
                "and instances that had not answered count as unknown. Give the worker CPUs "
                "of its own, or set STARPOD_WORKER_SCHEDULING=normal",
                report.secs,
                self.deadline_secs,
            )
        self.starved = late
