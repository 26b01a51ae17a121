"""Turn one line of a log stream into a LogEntry, whatever shape the line has.

The contract says NDJSON (``{"timestamp", "level", "message"}``); real backends also send
plain text: ``2026-03-24T09:00:00Z INFO started``, ``[WARN] disk low``, ``ERROR boom``,
or bare text. Nothing here raises: an unreadable line becomes an ``info`` entry with the
line as its message.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from bot.backend.models import LogEntry, LogLevel, parse_timestamp

_LEVEL_WORDS: dict[str, LogLevel] = {
    "error": LogLevel.ERROR,
    "err": LogLevel.ERROR,
    "fatal": LogLevel.ERROR,
    "critical": LogLevel.ERROR,
    "crit": LogLevel.ERROR,
    "warn": LogLevel.WARN,
    "warning": LogLevel.WARN,
    "info": LogLevel.INFO,
    "notice": LogLevel.INFO,
    "debug": LogLevel.DEBUG,
    "trace": LogLevel.DEBUG,
}

_LEVEL_ALT = "|".join(sorted(_LEVEL_WORDS, key=len, reverse=True))
_TIMESTAMP = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
_PLAIN = re.compile(
    rf"^(?:(?P<ts>{_TIMESTAMP})\s+)?"
    rf"(?:\[(?P<blevel>{_LEVEL_ALT})\]|(?P<level>{_LEVEL_ALT})\b:?)?\s*(?P<msg>.*)$",
    re.IGNORECASE | re.DOTALL,
)


def level_from_word(word: Any) -> LogLevel:
    """``err``/``fatal`` → error, ``warning`` → warn, ``trace`` → debug; unknown → info."""
    if isinstance(word, str):
        return _LEVEL_WORDS.get(word.strip().lower(), LogLevel.INFO)
    return LogLevel.INFO


def _from_json(data: dict[str, Any]) -> LogEntry | None:
    message = data.get("message", data.get("msg"))
    if message is None:
        return None
    raw_ts = data.get("timestamp", data.get("ts", data.get("time")))
    try:
        timestamp = parse_timestamp(raw_ts) if raw_ts is not None else None
    except (ValueError, OverflowError, OSError):
        timestamp = None
    try:
        return LogEntry(
            timestamp=timestamp,
            level=level_from_word(data.get("level", data.get("severity"))),
            message=message if isinstance(message, str) else json.dumps(message),
        )
    except ValidationError:
        return None


def _from_text(text: str) -> LogEntry:
    match = _PLAIN.match(text)
    if match is None:  # the pattern matches everything; this is belt and braces
        return LogEntry(level=LogLevel.INFO, message=text)
    timestamp = None
    if match["ts"]:
        try:
            timestamp = parse_timestamp(match["ts"].replace(" ", "T", 1))
        except ValueError:
            timestamp = None
    word = match["blevel"] or match["level"]
    return LogEntry(timestamp=timestamp, level=level_from_word(word), message=match["msg"])


def parse_log_line(line: str | bytes) -> LogEntry | None:
    """One line → an entry; blank lines → None. Never raises."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.strip().lstrip("\ufeff")
    if not text:
        return None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            data = None
        if isinstance(data, dict):
            entry = _from_json(data)
            if entry is not None:
                return entry
    return _from_text(text)
