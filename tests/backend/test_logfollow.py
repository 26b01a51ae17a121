"""LogFollower: each poll's answer (the last lines again) reduced to the lines not printed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.backend.logfollow import LogFollower
from bot.backend.models import LogEntry

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def line(second: int | None, message: str, level: str = "info") -> LogEntry:
    stamp = None if second is None else T0 + timedelta(seconds=second)
    return LogEntry.model_validate({"timestamp": stamp, "level": level, "message": message})


def texts(entries: list[LogEntry]) -> list[str]:
    return [e.message for e in entries]


def test_each_line_is_taken_once_as_the_tail_moves_on() -> None:
    log = [line(i, f"m{i}") for i in range(10)]
    follower = LogFollower(window=5)
    assert texts(follower.take(log[:3]).entries) == ["m0", "m1", "m2"]
    assert follower.take(log[:3]).entries == [], "the same answer again: nothing new"
    assert texts(follower.take(log[1:5]).entries) == ["m3", "m4"]
    assert texts(follower.take(log[3:8]).entries) == ["m5", "m6", "m7"]
    assert texts(follower.take(log[5:10]).entries) == ["m8", "m9"]


def test_identical_lines_in_the_same_second_are_told_apart_by_count() -> None:
    follower = LogFollower(window=10)
    first = [line(1, "a"), line(2, "retry"), line(2, "retry")]
    assert len(follower.take(first).entries) == 3
    # A third identical "retry" in that second, then a later line.
    again = [line(1, "a"), line(2, "retry"), line(2, "retry"), line(2, "retry"), line(3, "ok")]
    assert texts(follower.take(again).entries) == ["retry", "ok"]
    assert follower.take(again).entries == []


def test_a_wider_answer_than_what_was_printed_still_finds_where_it_left_off() -> None:
    follower = LogFollower(window=500)
    assert texts(follower.take([line(8, "m8"), line(9, "m9")]).entries) == ["m8", "m9"]
    wider = [line(i, f"m{i}") for i in range(12)]
    assert texts(follower.take(wider).entries) == ["m10", "m11"]


def test_without_timestamps_the_overlap_decides_and_never_repeats() -> None:
    follower = LogFollower(window=4)
    assert texts(follower.take([line(None, "a"), line(None, "b")]).entries) == ["a", "b"]
    assert texts(follower.take([line(None, "a"), line(None, "b"), line(None, "c")]).entries) == [
        "c"
    ]
    assert follower.take([line(None, "b"), line(None, "c")]).entries == []
    assert texts(follower.take([line(None, "c"), line(None, "a"), line(None, "b")]).entries) == [
        "a",
        "b",
    ]


def test_a_poll_that_is_all_new_and_full_says_lines_may_be_missing() -> None:
    follower = LogFollower(window=3)
    follower.take([line(0, "m0")])
    fresh = follower.take([line(i, f"m{i}") for i in range(10, 13)])
    assert fresh.gap and texts(fresh.entries) == ["m10", "m11", "m12"]
    fresh = follower.take([line(i, f"m{i}") for i in range(11, 14)])
    assert not fresh.gap and texts(fresh.entries) == ["m13"]
