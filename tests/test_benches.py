"""Benchmarks never rot: each one has a quick mode, and CI runs every bench in it."""

from __future__ import annotations

import ast
from pathlib import Path

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
