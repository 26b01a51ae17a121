"""The alerts feature stays in parts a maintainer can read: no module over 400 lines, no
class over 300 (the split along Alertmanager's seams keeps it so)."""

from __future__ import annotations

import ast
from pathlib import Path

import bot.alerts

MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 300


def test_no_alerts_module_or_class_is_too_big_to_read() -> None:
    folder = Path(bot.alerts.__file__).parent
    too_big: dict[str, int] = {}
    for path in sorted(folder.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            too_big[path.name] = lines
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CLASS_LINES:
                    too_big[f"{path.name}::{node.name}"] = length
    assert too_big == {}
