"""The demo story without processes: the settings it gives the bot, the sidebar before a stall."""

from __future__ import annotations

from pathlib import Path

from bot.config import load_settings
from bot.demo import DemoOptions, bot_environment
from bot.demo_story import (
    RESTART_BUDGET,
    Story,
    StoryInstance,
    monitor_toml,
    restart_delay,
    story_notes,
)
from bot.sim.slack import SlackEmulator

STORY = Story(
    stall_at=1_000.0,
    instances=(StoryInstance("a1", "pod-001", heals=False), StoryInstance("b2", "pod-002", True)),
)


def test_the_bot_reads_the_demo_budget_from_the_file_the_demo_writes(tmp_path: Path) -> None:
    config = tmp_path / "starpod-demo.toml"
    config.write_text(monitor_toml(5, 15), encoding="utf-8")
    env = bot_environment(
        DemoOptions(),
        backend_url="http://127.0.0.1:1",
        slack=SlackEmulator(),
        bot_port=1,
        database_url="sqlite:///x.db",
        config_file=config,
        # A developer's own config file must not reach the demo's bot.
        base={"STARPOD_CONFIG": "/elsewhere/starpod-bot.toml"},
    )
    monitor = load_settings(env).monitor
    assert env["STARPOD_CONFIG"] == str(config)
    assert monitor.restart_budget == RESTART_BUDGET == 2
    assert monitor.restart_delays_secs == [0, restart_delay(5, 15)] == [0, 15]
    assert restart_delay(1, 7) == 7 and restart_delay(10, 15) == 30


def test_before_the_stall_each_role_reads_its_own_lines_and_the_countdown() -> None:
    for role, start in (
        ("operator", "You act as *operator*, on-call"),
        ("viewer", "You act as *viewer*"),
        ("admin", "You act as *admin*"),
    ):
        notes = story_notes(
            STORY, role=role, alert_messages=[], heartbeat_stopped={}, now=STORY.stall_at - 42
        )
        assert notes[1].startswith(start), notes
        assert notes[2] == (
            "*pod-001* stops its heartbeat in about 42 s: 2 auto-restarts will not help it."
        )
        assert notes[3] == (
            "*pod-002* stops its heartbeat in about 42 s: the bot will restart it and resolve "
            "the incident by itself."
        )


def test_after_the_stall_and_before_an_incident_no_countdown_is_shown() -> None:
    notes = story_notes(
        STORY,
        role="operator",
        alert_messages=[],
        heartbeat_stopped={"a1": True, "b2": False},
        now=STORY.stall_at + 500,
    )
    assert notes[2:] == [
        "*pod-001* stopped its heartbeat: the bot will notice it in #alerts.",
        "*pod-002* is running.",
    ]
