"""Log streams of simulated instances: deterministic NDJSON or plain-text lines.

An instance "writes" one line every :data:`LOG_INTERVAL_SECS` from its creation until it
leaves ``running``; line ``seq`` always has the same timestamp, level and message for the
same instance, so a tail is computed on demand without storing anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from bot.sim.backend_state import SimInstance
from bot.sim.backend_wire import rfc3339

LOG_INTERVAL_SECS = 2
DEFAULT_TAIL = 50
MAX_TAIL = 100_000
LINES_PER_CHUNK = 100
GARBAGE_EVERY = 5
"""In garbage mode one malformed line follows every 5th good line (and they are extra)."""

_MASK64 = (1 << 64) - 1

# Malformed lines a tolerant client must skip: broken JSON, invalid UTF-8, empty lines.
GARBAGE_LINES: tuple[bytes, ...] = (
    b'{"timestamp": 1774342800, "level": "info", "mess',
    b"\xff\xfe\xc3\x28 not utf-8 \x80",
    b"",
    b'{"level": ',
    b"   ",
)

_MESSAGES: dict[str, tuple[str, ...]] = {
    "error": (
        "worker {n} crashed: exit status {code}",
        "failed to mount volume vol-{hex}: timeout",
        "upstream returned 502 for job {n}",
        "out of memory while compacting segment {n}",
    ),
    "warn": (
        "disk usage at {pct}%",
        "slow request: {ms} ms for /api/jobs/{n}",
        "retrying connection to db-{code} (attempt {small})",
        "certificate expires in {small} days",
    ),
    "info": (
        "started worker {n}",
        "job {n} completed in {ms} ms",
        "health check ok ({ms} ms)",
        "accepted connection from 10.0.{small}.{code}",
        "checkpoint {hex} written",
        "scaled pool to {small} workers",
    ),
    "debug": (
        "gc pause {ms} us",
        "cache hit ratio {pct}%",
        "polling queue q-{hex}",
        "heartbeat sent seq={n}",
    ),
}

# Plain-text level words, including the aliases the contract maps (err, fatal, warning, trace).
_PLAIN_WORDS: dict[str, tuple[str, ...]] = {
    "error": ("ERROR", "err", "FATAL"),
    "warn": ("WARN", "WARNING", "warn"),
    "info": ("INFO", "info", "INFO"),
    "debug": ("DEBUG", "TRACE", "debug"),
}


def _mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread hash of an int (stable across processes)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@dataclass(slots=True, frozen=True)
class LogLine:
    """One good log line, before rendering."""

    seq: int
    timestamp: int
    level: str
    message: str


def _level_for(h: int) -> str:
    bucket = h % 20
    if bucket < 2:
        return "error"
    if bucket < 5:
        return "warn"
    if bucket < 15:
        return "info"
    return "debug"


def log_line(inst: SimInstance, seq: int) -> LogLine:
    """Line ``seq`` of ``inst``'s log (deterministic)."""
    h = _mix(inst.noise_seed ^ (seq & _MASK64))
    level = _level_for(h)
    templates = _MESSAGES[level]
    template = templates[(h >> 8) % len(templates)]
    message = template.format(
        n=(h >> 16) % 10_000,
        code=(h >> 30) % 256,
        hex=f"{(h >> 20) & 0xFFFFFF:06x}",
        pct=70 + (h >> 40) % 30,
        ms=(h >> 44) % 2_000,
        small=1 + (h >> 52) % 9,
    )
    timestamp = int(inst.created_at) + seq * LOG_INTERVAL_SECS
    return LogLine(seq=seq, timestamp=timestamp, level=level, message=message)


def log_end_time(inst: SimInstance, now: float) -> float:
    """When the instance's log ends: now while running, else when it stopped running."""
    if inst.status == "running":
        return now
    if inst.left_running_at is not None:
        return inst.left_running_at
    return inst.updated_at


def tail_lines(inst: SimInstance, now: float, tail: int) -> Iterator[LogLine]:
    """The last ``tail`` good lines as of ``now``, oldest first (exactly ``tail`` of them)."""
    last = int((log_end_time(inst, now) - inst.created_at) // LOG_INTERVAL_SECS)
    for seq in range(last - tail + 1, last + 1):
        yield log_line(inst, seq)


def render_json(line: LogLine, *, extra_fields: bool) -> bytes:
    """One NDJSON LogEntry line, newline included."""
    entry: dict[str, object] = {
        "timestamp": line.timestamp,
        "level": line.level,
        "message": line.message,
    }
    if extra_fields:
        entry["source"] = "agent"
        entry["seq"] = line.seq
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def render_plain(line: LogLine) -> bytes:
    """One plain-text line in one of the contract's four shapes, chosen by ``seq``.

    ``2026-03-24T09:00:00Z INFO started``, ``[WARN] disk low``, ``ERROR boom`` or bare text;
    bare text is used only for info lines, since a client reads bare text as info.
    """
    word = _PLAIN_WORDS[line.level][(line.seq // 4) % 3]
    shape = line.seq % 4
    if shape == 3 and line.level != "info":
        shape = 2
    if shape == 0:
        text = f"{rfc3339(line.timestamp)} {word} {line.message}"
    elif shape == 1:
        text = f"[{word}] {line.message}"
    elif shape == 2:
        text = f"{word} {line.message}"
    else:
        text = line.message
    return text.encode() + b"\n"


def iter_log_chunks(
    inst: SimInstance,
    now: float,
    tail: int,
    *,
    plaintext: bool,
    garbage: bool,
    extra_fields: bool,
    lines_per_chunk: int = LINES_PER_CHUNK,
) -> Iterator[bytes]:
    """The response body in chunks of about ``lines_per_chunk`` lines, so clients truly stream."""
    buf: list[bytes] = []
    garbage_index = 0
    for count, line in enumerate(tail_lines(inst, now, tail), start=1):
        buf.append(
            render_plain(line) if plaintext else render_json(line, extra_fields=extra_fields)
        )
        if garbage and count % GARBAGE_EVERY == 0:
            buf.append(GARBAGE_LINES[garbage_index % len(GARBAGE_LINES)] + b"\n")
            garbage_index += 1
        if len(buf) >= lines_per_chunk:
            yield b"".join(buf)
            buf.clear()
    if buf:
        yield b"".join(buf)


async def endless_log_chunks(
    inst: SimInstance, now: float, *, plaintext: bool, lines_per_chunk: int = LINES_PER_CHUNK
) -> AsyncIterator[bytes]:
    """The ``logs_endless`` fault: good lines, numbered on and on, never an end.

    The lines repeat a window of ``lines_per_chunk * 10`` rendered once (rendering is not
    what is being tested, and a fast stream is the hostile case); the loop yields to the
    event loop between chunks so the simulator keeps serving its other clients.
    """
    window = [
        render_plain(log_line(inst, seq))
        if plaintext
        else render_json(log_line(inst, seq), extra_fields=False)
        for seq in range(lines_per_chunk * 10)
    ]
    chunks = [
        b"".join(window[i : i + lines_per_chunk]) for i in range(0, len(window), lines_per_chunk)
    ]
    while True:
        for chunk in chunks:
            yield chunk
            await asyncio.sleep(0)
