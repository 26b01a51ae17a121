"""Benchmarks never rot: each one has a quick mode, and CI runs every bench in it."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _options(script: Path) -> set[str]:
    """The command-line options a bench declares (``parser.add_argument("--x", ...)``)."""
    found = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            found.update(
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            )
    return found


def test_every_bench_has_a_quick_mode() -> None:
    benches = sorted((ROOT / "bench").glob("*.py"))
    assert benches
    missing = [b.name for b in benches if "--quick" not in _options(b)]
    assert missing == [], f"benches without --quick: {missing}"


def test_ci_runs_every_bench_in_quick_mode() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "for bench in bench/*.py" in ci
    assert '.venv/bin/python "$bench" --quick' in ci
    assert "exit 1" in ci.split("for bench in bench/*.py", 1)[1]


# What BENCHMARKS.md's ack latency tables read, the same in every layout.
ACK_LATENCY_KEYS = {
    "cpus", "load_average", "concurrency", "requests_per_app_per_repeat", "repeats",
    "gc_freeze", "full_collections", "sweep_loop", "sim_nice", "worker_scheduling", "worker_nice",
    "worker",
    "command", "bot", "bare", "bare_ack_first", "bot_vs_bare_p99", "bot_vs_bare_p99_repeats",
    "bot_vs_bare_p99_goal", "during_sweep",
}  # fmt: skip
ACK_LATENCY_SWEEP_KEYS = {
    "bot", "bare", "instances", "sweeps_during_measurement", "sweep_secs_median",
    "sweep_secs_median_during", "gate_yields_during", "gate_yielded_secs_during",
    "bot_vs_idle_p99", "bot_vs_idle_p99_goal", "paired", "gc_pauses", "collector",
}  # fmt: skip


def quick_process_layout(bench: Path, *extra: str) -> dict[str, Any]:
    """``bench/ack_latency.py --quick --layout process``, its JSON summary.

    At normal priority: beside a full suite on two cores, a worker at idle scheduling or
    niceness 10 and a simulator at 19 get so little CPU that the quick run took minutes
    (the worker's priority itself: tests/runtime/test_roles.py). The timeout only bounds a
    hung run.
    """
    result = subprocess.run(
        [
            *(sys.executable, str(bench), "--quick", "--json", "--layout", "process"),
            *("--worker-scheduling", "normal", "--worker-nice", "0", "--sim-nice", "0"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures: dict[str, Any] = json.loads(result.stdout)
    assert set(figures) == ACK_LATENCY_KEYS
    return figures


@pytest.mark.slow
def test_ack_latency_quick_runs_the_sweep_in_a_real_worker_process() -> None:
    """CI runs every bench's default --quick; this is the layout CI's loop does not run."""
    figures = quick_process_layout(ROOT / "bench" / "ack_latency.py")
    assert set(figures["during_sweep"]) == ACK_LATENCY_SWEEP_KEYS
    # The kernel's figures: the worker took the priority the bench gave it.
    assert figures["worker_scheduling"] == "normal"
    assert figures["worker_nice"] == os.nice(0)
    assert figures["sim_nice"] == 0
    assert figures["worker"]["sweep_errors"] == 0
    assert figures["worker"]["sweeping_share_during"] >= 0
    # The paired phase: single sweeps on command, each beside as long a phase without.
    paired = figures["during_sweep"]["paired"]
    assert paired["sweeps"] == 2 and len(paired["sweeping_vs_idle_p99_pairs"]) == 2
    assert paired["idle"]["requests"] > 0 and paired["sweeping"]["requests"] > 0
    sweep = figures["during_sweep"]
    assert sweep["instances"] == 1000
    # Read from the worker's /metrics: sweeps ran, and their seconds are a number.
    assert sweep["sweeps_during_measurement"] >= 1
    assert 0 < sweep["sweep_secs_median"] < 60
    assert figures["worker"]["sham_sweeps"] is False


@pytest.mark.slow
def test_ack_latency_sham_sweeps_measure_the_same_phases_with_no_sweep() -> None:
    """The control: the worker records the fleet, then only sleeps as long as a sweep."""
    figures = quick_process_layout(ROOT / "bench" / "ack_latency.py", "--sham-sweeps")
    assert figures["worker"]["sham_sweeps"] is True
    assert "--sham-sweeps" in figures["command"]
    # No sweep after the two recording ones: none while measured, none while paired.
    assert figures["worker"]["sweeping_share_during"] == 0
    assert figures["during_sweep"]["sweeps_during_measurement"] == 0
    paired = figures["during_sweep"]["paired"]
    assert paired["sweeps"] == 2 and paired["sweeping"]["requests"] > 0
    ratios = paired["sweeping_vs_idle_p99_pairs"]
    assert len(ratios) == 2
    assert paired["sweeping_vs_idle_p99_pairs_median"] == round(sum(ratios) / 2, 2)


@pytest.mark.parametrize(
    "flags", [["--sham-sweeps"], ["--worker-nice", "0"], ["--worker-scheduling", "idle"]]
)
def test_the_worker_flags_of_the_ack_bench_need_the_process_layout(flags: list[str]) -> None:
    bench = ROOT / "bench" / "ack_latency.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--layout", "gated", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{flags[0]} needs --layout process" in result.stderr
