"""The chunk codec: what goes in comes out bit for bit, small; damage is refused clearly."""

from __future__ import annotations

import math
import random
import struct
import zlib

import pytest

from bot.store.errors import CorruptChunkError
from bot.store.heartbeats.codec import Sample, decode, encode

T0 = 1_773_000_000_123_456  # an epoch-microsecond moment with a fractional second


def _realistic(n: int = 120, *, seed: int = 1) -> list[Sample]:
    """An hour of 30 s samples as the monitor records them: jittered times, 0.1 % CPU."""
    rng = random.Random(seed)
    out, cpu, memory, disk = [], 40.0, 2048, 20_000
    for i in range(n):
        at = T0 + i * 30_000_000 + rng.randrange(0, 40_000)
        cpu = round(min(100.0, max(0.0, cpu + rng.gauss(0, 4))), 1)
        if rng.random() < 0.05:
            memory += rng.randrange(-64, 65)
        if rng.random() < 0.01:
            disk += 1
        heartbeat = at - rng.randrange(0, 5_000_000)
        out.append(Sample(at, cpu, memory, disk, heartbeat, 86_400 + (at - T0) // 1_000_000))
    return out


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def test_realistic_hour_round_trips_in_under_twelve_bytes_a_sample() -> None:
    samples = _realistic()
    blob = encode(samples)
    assert decode(blob) == samples
    assert len(blob) / len(samples) < 12


def test_floats_with_many_decimals_and_oddities_come_back_bit_for_bit() -> None:
    odd = [1 / 3, math.pi, -0.0, 0.0, float("inf"), float("-inf"), 5e-324, 1e300, 12.3456789]
    samples = [Sample(T0 + i, v, 1, 2, T0, 3) for i, v in enumerate(odd)]
    samples.append(Sample(T0 + 99, float("nan"), 1, 2, T0, 3))
    got = decode(encode(samples))
    assert [_bits(s.cpu_percent) for s in got] == [_bits(s.cpu_percent) for s in samples]
    assert [s._replace(cpu_percent=0.0) for s in got] == [
        s._replace(cpu_percent=0.0) for s in samples
    ]


def test_negative_zero_alone_keeps_its_sign() -> None:
    got = decode(encode([Sample(T0, -0.0, 0, 0, T0, 0), Sample(T0 + 1, 1.5, 0, 0, T0, 0)]))
    assert math.copysign(1.0, got[0].cpu_percent) == -1.0


def test_extreme_integers_and_jumps_round_trip() -> None:
    top, bottom = 2**63 - 1, -(2**63)
    samples = [
        Sample(T0, 50.0, top, bottom, T0 - 10**12, top),
        Sample(T0 + 1, 50.0, bottom, top, T0 + 10**12, bottom),  # a heartbeat from the future
        Sample(T0 + 2, 50.0, 0, 0, bottom, -5),
        Sample(top, 50.0, top, top, top, top),
    ]
    assert decode(encode(samples)) == samples


def test_out_of_order_input_is_sorted_by_time_and_ties_keep_their_order() -> None:
    a = Sample(T0 + 60, 1.0, 1, 1, T0, 1)
    b = Sample(T0, 2.0, 2, 2, T0, 2)
    c = Sample(T0 + 60, 3.0, 3, 3, T0, 3)
    assert decode(encode([a, b, c])) == [b, a, c]


def test_values_beyond_64_bits_are_refused_not_wrapped() -> None:
    with pytest.raises(ValueError, match="does not fit in 64 bits"):
        encode([Sample(T0, 1.0, 2**64, 0, T0, 0)])
    with pytest.raises(ValueError, match="uptime_secs -9223372036854775809"):
        encode([Sample(T0, 1.0, 0, 0, T0, -(2**63) - 1)])
    with pytest.raises(ValueError, match="at least one sample"):
        encode([])


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "has no header"),
        (struct.pack("<BBBI", 9, 0, 1, 1) + zlib.compress(b"\0" * 48), "format 9"),
        (struct.pack("<BBBI", 1, 0, 1, 1) + b"not zlib", "does not decompress"),
        (struct.pack("<BBBI", 1, 0, 1, 2) + zlib.compress(b"\0" * 48), "expected 96"),
    ],
)
def test_damaged_chunks_are_refused_with_one_clear_line(blob: bytes, message: str) -> None:
    with pytest.raises(CorruptChunkError, match=message):
        decode(blob)
