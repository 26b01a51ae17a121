"""The `/starpod logs` answer: code blocks marked by level, split within Slack's limits,
or uploaded as a file (with a preview) when too long to read as a message."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from bot.backend.models import Instance, LogEntry
from bot.blockkit.blocks import Block, context, section
from bot.blockkit.limits import MAX_SECTION_TEXT, Reply, reply
from bot.blockkit.mrkdwn import code, code_block_line, escape, unescape
from bot.slack.blocks.common import instance_label

LEVEL_EMOJI = {"error": "🔴", "warn": "🟡", "info": "🟢", "debug": "⚪"}
LEVEL_TAG = {"error": "ERR ", "warn": "WARN", "info": "INFO", "debug": "DBG "}
LEVEL_RANK = {"error": 0, "warn": 1, "info": 2, "debug": 3}
FENCE = "```"
# Beyond this many code blocks the answer is a file: scrolling 20 screens of logs on a
# phone is worse than opening one file.
MAX_INLINE_BLOCKS = 20
PREVIEW_LINES = 15
_CHUNK_BUDGET = MAX_SECTION_TEXT - 2 * len(FENCE)
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class LogFile:
    """Logs to upload as a file: plain text, never escaped (a file is not mrkdwn)."""

    filename: str
    title: str
    content: str


@dataclass(frozen=True)
class LogAnswer:
    """The message to show, and the file to upload when the lines do not fit."""

    reply: Reply
    file: LogFile | None = None


def filter_entries(
    entries: Sequence[LogEntry], *, level: str | None, grep: str | None
) -> list[LogEntry]:
    """Entries at ``level`` or more severe, whose message contains ``grep`` (any case)."""
    limit = LEVEL_RANK.get(level, 3) if level else 3
    needle = grep.casefold() if grep else None
    return [
        e
        for e in entries
        if LEVEL_RANK.get(e.level.value, 2) <= limit
        and (needle is None or needle in e.message.casefold())
    ]


def _time(entry: LogEntry, with_date: bool) -> str:
    if entry.timestamp is None:
        return "--:--:--"
    moment = entry.timestamp.astimezone(UTC)
    return moment.strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _spans_days(entries: Sequence[LogEntry]) -> bool:
    days = {e.timestamp.astimezone(UTC).date() for e in entries if e.timestamp is not None}
    return len(days) > 1


def render_line(entry: LogEntry, *, with_date: bool = False) -> str:
    """One line for a code block: level emoji and tag, UTC time, the escaped message."""
    level = entry.level.value
    prefix = (
        f"{LEVEL_EMOJI.get(level, '⚪')} {LEVEL_TAG.get(level, 'INFO')} {_time(entry, with_date)} "
    )
    return prefix + code_block_line(" ".join(entry.message.splitlines()) or " ")


def file_line(entry: LogEntry) -> str:
    """One line for the uploaded file: ISO time, level, message, as a terminal shows it."""
    stamp = (
        entry.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if entry.timestamp else "-"
    )
    return f"{stamp} {entry.level.value.upper():5} {entry.message}"


def code_chunks(lines: Sequence[str]) -> list[str]:
    """Pack lines into ``` blocks of at most 3,000 characters; long lines are wrapped."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        pieces = [line[i : i + _CHUNK_BUDGET] for i in range(0, len(line), _CHUNK_BUDGET)] or [" "]
        for piece in pieces:
            extra = len(piece) + (1 if current else 0)
            if current and size + extra > _CHUNK_BUDGET:
                chunks.append(FENCE + "\n".join(current) + FENCE)
                current, size, extra = [], 0, len(piece)
            current.append(piece)
            size += extra
    if current:
        chunks.append(FENCE + "\n".join(current) + FENCE)
    return chunks


def _filters(level: str | None, grep: str | None) -> str:
    """The filters asked for, in words ("level error or worse, matching `oom`"); "" for none."""
    parts = []
    if level:
        parts.append(f"level {level} or worse" if level != "debug" else "all levels")
    if grep:
        parts.append(f"matching {code(grep)}")
    return ", ".join(parts)


def _lines(count: int) -> str:
    return f"{count} line{'s' if count != 1 else ''}"


def _summary(count: int, fetched: int, tail: int, filters: str) -> str:
    """What is shown, saying each number once: "the last 50 lines", "7 of the last 50 lines
    (level error or worse)", "all 12 lines (12 of the 50 asked for)"."""
    if filters:
        return f"{count} of the last {_lines(fetched)} ({filters})"
    if fetched >= tail:
        return f"the last {_lines(count)}"
    return f"all {_lines(count)} there are (the last {tail} were asked for)"


def log_answer(
    instance: Instance,
    entries: Sequence[LogEntry],
    *,
    fetched: int,
    tail: int,
    level: str | None = None,
    grep: str | None = None,
    max_inline_blocks: int = MAX_INLINE_BLOCKS,
    file_place: str = "in our direct messages",
    truncated: str | None = None,
) -> LogAnswer:
    """Build the answer for already-filtered ``entries`` (``fetched`` before filtering).

    ``truncated`` says why the backend's answer was not read to its end (shown last).
    """
    answer = _log_answer(
        instance, entries, fetched, tail, level, grep, max_inline_blocks, file_place
    )
    if truncated is None:
        return answer
    note = context(f"✂️ {escape(truncated)}")
    blocks = [*answer.reply.blocks, note]
    # The first answer's text is already an escaped fallback: unescape it, so it is
    # escaped once, not twice.
    plain_text = unescape(answer.reply.text)
    return LogAnswer(reply(f"{plain_text} ({truncated})", blocks), answer.file)


def _log_answer(
    instance: Instance,
    entries: Sequence[LogEntry],
    fetched: int,
    tail: int,
    level: str | None,
    grep: str | None,
    max_inline_blocks: int,
    file_place: str,
) -> LogAnswer:
    label = instance_label(instance)
    filters = _filters(level, grep)
    if not entries:
        if fetched == 0:
            text = f"📭 {label} has no log lines yet."
        else:
            text = f"📭 None of the last {_lines(fetched)} of {label} match ({filters})."
        return LogAnswer(reply(f"No matching log lines for {instance.label}", [section(text)]))
    with_date = _spans_days(entries)
    rendered = [render_line(e, with_date=with_date) for e in entries]
    chunks = code_chunks(rendered)
    count = _lines(len(entries))
    summary = _summary(len(entries), fetched, tail, filters)
    head = section(f"📜 {label}: {summary}, times in UTC")
    if len(chunks) <= max_inline_blocks:
        blocks: list[Block] = [head, *(section(c) for c in chunks)]
        return LogAnswer(reply(f"Logs of {instance.label}: {count}", blocks))
    filename = (
        _UNSAFE_FILENAME.sub("-", instance.name or instance.short_id).strip("-") or "instance"
    )
    log_file = LogFile(
        filename=f"{filename}-logs.txt",
        title=f"Logs of {instance.label} ({len(entries)} lines)",
        content="\n".join(file_line(e) for e in entries) + "\n",
    )
    preview = code_chunks(rendered[-PREVIEW_LINES:])[-2:]
    blocks = [
        section(
            f"📎 {label}: {summary}: too long for a message, so I sent them "
            f"to you as the file {code(log_file.filename)} {escape(file_place)}. "
            f"The last {min(PREVIEW_LINES, len(entries))} lines:"
        ),
        *(section(c) for c in preview),
        context(f"Times in UTC · full file: {escape(log_file.filename)}"),
    ]
    return LogAnswer(reply(f"Logs of {instance.label}: {count}, sent as a file", blocks), log_file)
