"""The tolerant models and the log-line parser (pure code, no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.backend.logparse import level_from_word, parse_log_line
from bot.backend.models import HealthInfo, Instance, LogLevel, SshInfo, parse_timestamp

T0 = datetime(2026, 3, 14, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        1773482700,
        1773482700.0,
        "1773482700",
        "2026-03-14T10:05:00Z",
        "2026-03-14T10:05:00+00:00",
        "2026-03-14T11:05:00+01:00",
        "2026-03-14T10:05:00",
    ],
)
def test_timestamps_in_every_shape_become_aware_utc(raw: object) -> None:
    assert parse_timestamp(raw) == T0


@pytest.mark.parametrize("raw", [True, "yesterday", None, [1]])
def test_bad_timestamps_are_rejected(raw: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        parse_timestamp(raw)


def test_instance_keeps_unknown_and_capitalised_statuses() -> None:
    capital = Instance.model_validate({"id": "a", "status": "Running"})
    assert (capital.status_raw, capital.status, capital.is_running) == ("Running", "running", True)
    odd = Instance.model_validate({"id": "b", "status": "deleting", "surprise": {"x": 1}})
    assert odd.status == "deleting" and odd.known_status is None
    missing = Instance.model_validate({"id": 7, "status": None})
    assert missing.id == "7" and missing.status == "unknown"


def test_instance_with_inline_health_and_string_times() -> None:
    instance = Instance.model_validate(
        {
            "id": "abcdef123456",
            "name": "pod",
            "status": "running",
            "created_at": "2026-03-14T10:05:00Z",
            "health": {
                "cpu_percent": 12,
                "memory_mb": 512.0,
                "disk_mb": 1024,
                "last_heartbeat": 1773482700,
                "uptime_secs": 60,
            },
        }
    )
    assert instance.health is not None and instance.health.memory_mb == 512
    assert instance.health.heartbeat_age(T0) == 0
    assert instance.short_id == "abcdef12" and instance.label == "pod (abcdef12)"


def test_health_missing_a_field_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        HealthInfo.model_validate({"cpu_percent": 1})


def test_ssh_command_and_hidden_key() -> None:
    info = SshInfo(host="h", port=2222, user="u", private_key="SECRET")
    assert info.command() == "ssh -p 2222 u@h"
    assert "SECRET" not in repr(info)
    assert SshInfo(host="h", user="u").command(identity_file="/k") == "ssh -i /k u@h"


@pytest.mark.parametrize(
    ("line", "level", "message", "stamped"),
    [
        ('{"timestamp": 1, "level": "info", "message": "hi"}', LogLevel.INFO, "hi", True),
        (
            '{"timestamp": "2026-03-24T09:00:00Z", "level": "fatal", "message": "x"}',
            LogLevel.ERROR,
            "x",
            True,
        ),
        ('{"level": "trace", "message": "t"}', LogLevel.DEBUG, "t", False),
        ('{"level": "warning", "message": "w", "extra": 1}', LogLevel.WARN, "w", False),
        ("2026-03-24T09:00:00Z INFO started", LogLevel.INFO, "started", True),
        ("2026-03-24 09:00:00 ERR broken pipe", LogLevel.ERROR, "broken pipe", True),
        ("[WARN] disk low", LogLevel.WARN, "disk low", False),
        ("ERROR boom", LogLevel.ERROR, "boom", False),
        ("warning: low memory", LogLevel.WARN, "low memory", False),
        ("bare text", LogLevel.INFO, "bare text", False),
        ("errors are words too", LogLevel.INFO, "errors are words too", False),
        ('{"not": "a log"}', LogLevel.INFO, '{"not": "a log"}', False),
        (
            '{"timestamp": 1, "level": "info", "mess',
            LogLevel.INFO,
            '{"timestamp": 1, "level": "info", "mess',
            False,
        ),
    ],
)
def test_log_lines_of_every_shape(line: str, level: LogLevel, message: str, stamped: bool) -> None:
    entry = parse_log_line(line)
    assert entry is not None
    assert (entry.level, entry.message, entry.timestamp is not None) == (level, message, stamped)


def test_undecodable_bytes_and_blank_lines() -> None:
    entry = parse_log_line(b"\xff\xfe\x00 oops")
    assert entry is not None and "oops" in entry.message
    assert parse_log_line(b"   \r") is None
    assert parse_log_line("") is None


def test_level_words() -> None:
    assert level_from_word("ERR") is LogLevel.ERROR
    assert level_from_word(None) is LogLevel.INFO
    assert level_from_word(3) is LogLevel.INFO


def test_status_is_worked_out_once_and_again_for_a_copy_that_changes_it() -> None:
    running = Instance.model_validate({"id": "i-1", "status": " Running "})
    assert running.status == "running" and running.is_running
    paused = running.model_copy(update={"status_raw": "Paused"})
    assert paused.status == "paused" and not paused.is_running
    # Kept values are not fields: equality and dumps see the backend's word only.
    assert running == Instance.model_validate({"id": "i-1", "status": " Running "})
    assert "status" not in running.model_dump() and "is_running" not in running.model_dump()
