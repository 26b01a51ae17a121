"""Integer time and chunk keys: how the head and the chunks spell a moment and an instance-hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
HOUR_US = 3_600_000_000
# A chunk key is ``epoch_hour << SERIES_BITS | series_id``.
SERIES_BITS = 32
SERIES_MASK = (1 << SERIES_BITS) - 1


def to_us(at: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact; naive ones are refused)."""
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"naive datetime {at!r}: the store only accepts aware datetimes")
    return (at - EPOCH) // _ONE_US


def from_us(us: int) -> datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


def chunk_key(hour: int, series_id: int) -> int:
    """The key of the chunk of ``series_id`` for epoch hour ``hour``."""
    if not 0 < series_id <= SERIES_MASK:
        raise ValueError(f"series id {series_id} out of range")
    return hour << SERIES_BITS | series_id


def key_hour(key: int) -> int:
    """The epoch hour of a chunk key."""
    return key >> SERIES_BITS


def key_series(key: int) -> int:
    """The series id of a chunk key."""
    return key & SERIES_MASK
