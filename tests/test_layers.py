"""The import contracts of pyproject.toml ([tool.importlinter]) hold: one direction for
imports, Block Kit building a leaf, the simulator on its own. .ci/run checks them too;
here a plain test run catches a wrong import before CI does."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def test_the_import_contracts_hold() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    report = out.decode()
    assert proc.returncode == 0, report[-3000:]
    assert "0 broken" in report
