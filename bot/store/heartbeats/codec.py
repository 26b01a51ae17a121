"""The chunk format: the samples of one instance-hour in one compressed blob (no I/O).

A sample is six numbers: ``sampled_at`` and ``last_heartbeat`` as integer microseconds
since the epoch (lossless for any aware datetime), CPU as a float, memory, disk and uptime
as integers. In a chunk each becomes a column of small integers, in the spirit of the
Gorilla paper (VLDB 2015):

- ``sampled_at``: delta of delta (a steady 30 s interval is ~0 µs apart);
- ``last_heartbeat``: as its age ``sampled_at - last_heartbeat``, then delta;
- uptime: delta of delta (it grows with the clock: mostly 0);
- memory and disk: delta (mostly 0: they rarely change);
- CPU: a fixed-point integer when every value of the chunk has at most
  :data:`MAX_DECIMALS` decimals and survives the round trip exactly (``12.3`` → ``123``
  with scale 1), then delta; otherwise the XOR of each value's IEEE-754 bits with the
  previous one's (Gorilla's float encoding).

Every column is zigzagged (small negatives stay small), laid out as little-endian 64-bit
words, and the words' bytes are transposed (all first bytes, then all second bytes, …)
so the zeros of small numbers form long runs that zlib squeezes to almost nothing. The
transposition and zlib run in C: a chunk of 120 samples encodes in ~0.1 ms.

Decoding reverses each step exactly: what was stored is what comes back, bit for bit.
"""

from __future__ import annotations

import math
import struct
import zlib
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate, pairwise
from operator import sub
from typing import NamedTuple

from bot.store.errors import CorruptChunkError

FORMAT_VERSION = 1
# ``12.34`` needs scale 2; a CPU figure with more decimals than this stays a raw float.
MAX_DECIMALS = 4
_RAW_FLOAT = 0xFF
_HEADER = struct.Struct("<BBBI")  # version, flags, CPU scale (or _RAW_FLOAT), sample count
# Flag: some difference overflowed 64 bits, so every column is stored modulo 2**64.
_WRAPPED = 1
_COLUMNS = 6
_MASK = (1 << 64) - 1
_SIGN = 1 << 63
_INT64 = (-_SIGN, _SIGN - 1)
_ZLIB_LEVEL = 6


class Sample(NamedTuple):
    """One sample as the head and the chunks keep it: integers, except CPU."""

    at_us: int  # sampled_at, microseconds since the epoch (UTC)
    cpu_percent: float
    memory_mb: int
    disk_mb: int
    heartbeat_us: int  # last_heartbeat, microseconds since the epoch (UTC)
    uptime_secs: int


def _wrap(value: int) -> int:
    """``value`` modulo 2**64, as a signed 64-bit integer (two's complement)."""
    return ((value + _SIGN) & _MASK) - _SIGN


def _delta(values: Sequence[int]) -> list[int]:
    out = [values[0]]
    out.extend(map(sub, values[1:], values))
    return out


def _fits(values: Sequence[int]) -> bool:
    low, high = _INT64
    return low <= min(values) and max(values) <= high


def _undelta(values: Iterable[int], wrapped: bool) -> list[int]:
    if wrapped:
        # Differences were taken modulo 2**64, like machine arithmetic: so are the sums.
        return [_wrap(v) for v in accumulate(values)]
    return list(accumulate(values))


def _zigzag(values: Iterable[int]) -> list[int]:
    return [((v << 1) ^ (v >> 63)) & _MASK for v in values]


def _unzigzag(values: Iterable[int]) -> list[int]:
    return [(v >> 1) ^ -(v & 1) for v in values]


def _check_int64(values: Iterable[int], what: str) -> None:
    low, high = _INT64
    for v in values:
        if not low <= v <= high:
            raise ValueError(f"{what} {v} does not fit in 64 bits")


def _cpu_scale(cpu: Sequence[float]) -> int | None:
    """The fewest decimals that store every value exactly as an integer, or None."""
    for value in cpu:
        if not math.isfinite(value) or abs(value) * 10**MAX_DECIMALS > 2**52:
            return None
        if value == 0.0 and math.copysign(1.0, value) < 0:  # -0.0 would come back as 0.0
            return None
    for scale in range(MAX_DECIMALS + 1):
        factor = 10**scale
        if all(round(value * factor) / factor == value for value in cpu):
            return scale
    return None


def _float_bits(values: Iterable[float]) -> list[int]:
    packed = array("d", values).tobytes()
    return list(array("q", packed))


def _bits_float(values: list[int]) -> list[float]:
    return list(array("d", array("q", values).tobytes()))


def _shuffle(words: list[int]) -> bytes:
    raw = array("Q", words)
    if array("Q", [1]).tobytes()[0] != 1:  # pragma: no cover - big-endian hosts
        raw.byteswap()
    data = raw.tobytes()
    return b"".join(data[k::8] for k in range(8))


def _unshuffle(data: bytes, count: int) -> list[int]:
    if len(data) != count * 8:
        raise CorruptChunkError(f"chunk holds {len(data)} bytes, expected {count * 8}")
    out = bytearray(len(data))
    for k in range(8):
        out[k::8] = data[k * count : (k + 1) * count]
    words = array("Q")
    words.frombytes(bytes(out))
    if array("Q", [1]).tobytes()[0] != 1:  # pragma: no cover - big-endian hosts
        words.byteswap()
    return list(words)


def encode(samples: Sequence[Sample]) -> bytes:
    """One chunk of ``samples`` (any order: they are stored sorted by time, stably)."""
    if not samples:
        raise ValueError("a chunk needs at least one sample")
    ordered = sorted(samples, key=lambda s: s.at_us)
    at = [s.at_us for s in ordered]
    heartbeat = [s.heartbeat_us for s in ordered]
    memory = [s.memory_mb for s in ordered]
    disk = [s.disk_mb for s in ordered]
    uptime = [s.uptime_secs for s in ordered]
    for values, what in (
        (at, "sampled_at"),
        (heartbeat, "last_heartbeat"),
        (memory, "memory_mb"),
        (disk, "disk_mb"),
        (uptime, "uptime_secs"),
    ):
        _check_int64(values, what)
    ages = list(map(sub, at, heartbeat))
    cpu = [s.cpu_percent for s in ordered]
    scale = _cpu_scale(cpu)
    if scale is None:
        bits = _float_bits(cpu)
        cpu_column = [bits[0], *(a ^ b for a, b in pairwise(bits))]
        scale_byte = _RAW_FLOAT
    else:
        factor = 10**scale
        cpu_column = _delta([round(v * factor) for v in cpu])  # |v| <= 2**52: never wraps
        scale_byte = scale
    columns = (
        _delta(_delta(at)),
        _delta(ages),
        _delta(_delta(uptime)),
        _delta(memory),
        _delta(disk),
    )
    flags = 0
    if not all(_fits(column) for column in (*columns, ages)):
        # Rare (values near the 64-bit limits): store every difference modulo 2**64.
        flags = _WRAPPED
        ages = [_wrap(v) for v in ages]
        columns = (
            _delta(_delta(at)),
            _delta(ages),
            _delta(_delta(uptime)),
            _delta(memory),
            _delta(disk),
        )
        a, b, c, d, e = ([_wrap(v) for v in column] for column in columns)
        columns = (a, b, c, d, e)
    words: list[int] = []
    for column in columns:
        words.extend(_zigzag(column))
    words.extend(_zigzag(cpu_column) if scale is not None else [v & _MASK for v in cpu_column])
    body = zlib.compress(_shuffle(words), _ZLIB_LEVEL)
    return _HEADER.pack(FORMAT_VERSION, flags, scale_byte, len(ordered)) + body


Columns = tuple[list[int], list[float], list[int], list[int], list[int], list[int]]


def decode(blob: bytes) -> list[Sample]:
    """The samples of one chunk, oldest first, exactly as they were encoded."""
    return list(map(Sample, *decode_columns(blob)))


def decode_columns(blob: bytes) -> Columns:
    """One chunk as columns in :class:`Sample`'s field order (readers skip building tuples)."""
    if len(blob) < _HEADER.size:
        raise CorruptChunkError(f"chunk of {len(blob)} bytes has no header")
    version, flags, scale, count = _HEADER.unpack_from(blob)
    wrapped = bool(flags & _WRAPPED)
    if version != FORMAT_VERSION:
        raise CorruptChunkError(f"chunk format {version} is not {FORMAT_VERSION}")
    try:
        words = _unshuffle(zlib.decompress(blob[_HEADER.size :]), count * _COLUMNS)
    except zlib.error as exc:
        raise CorruptChunkError(f"chunk does not decompress: {exc}") from exc
    cols = [words[k * count : (k + 1) * count] for k in range(_COLUMNS)]
    at = _undelta(_undelta(_unzigzag(cols[0]), wrapped), wrapped)
    ages = _undelta(_unzigzag(cols[1]), wrapped)
    uptime = _undelta(_undelta(_unzigzag(cols[2]), wrapped), wrapped)
    memory = _undelta(_unzigzag(cols[3]), wrapped)
    disk = _undelta(_unzigzag(cols[4]), wrapped)
    heartbeat = [_wrap(v) for v in map(sub, at, ages)] if wrapped else list(map(sub, at, ages))
    if scale == _RAW_FLOAT:
        signed = [v - (1 << 64) if v >> 63 else v for v in cols[5]]
        bits = list(accumulate(signed, lambda a, b: a ^ b))
        cpu = _bits_float(bits)
    else:
        factor = 10**scale
        cpu = [v / factor for v in accumulate(_unzigzag(cols[5]))]
    return at, cpu, memory, disk, heartbeat, uptime
