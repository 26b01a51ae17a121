"""``build(settings)``: every part constructed and wired to the others, nothing opened."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Settings
from bot.errors import ConfigError
from bot.monitor.sql_store import SqlMonitorStore
from bot.priority import Precedence, run_foreground
from bot.sim.backend import BackendSimulator
from bot.sim.slack import SlackEmulator
from bot.wiring import SWEEP_CACHE_KIB, build
from tests.support.runtimes import close_parts

MakeSettings = Callable[..., Settings]


async def test_build_wires_the_parts_without_opening_any(
    make_settings: MakeSettings, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    parts = build(make_settings())
    try:
        # No I/O: no backend call, no Slack call, no database file, nothing scheduled yet.
        assert sum(backend_sim.calls.values()) == 0
        assert slack_emulator.calls == []
        assert parts.db.sqlite_path is not None and not parts.db.sqlite_path.exists()
        assert not parts.scheduler.running
        # Wired: the monitor sweeps on a thread of its own, with its own client and engine
        # on the same database; the sweep and the alert jobs scheduled.
        assert parts.sweep is not None and not parts.sweep.loop.running
        assert parts.monitor.own_loop is parts.sweep.loop
        assert isinstance(parts.monitor.store, SqlMonitorStore)
        assert parts.monitor.store.db is parts.sweep.db is not parts.db
        assert parts.sweep.db.url == parts.db.url
        assert parts.sweep.db.cache_kib == SWEEP_CACHE_KIB < parts.db.cache_kib
        assert parts.sweep.client is not parts.client
        # Full collections are the collector's once the runtime starts it, not before.
        assert not parts.collector.running and parts.collector.take_schedule
        assert parts.monitor.status().running
        assert {job.id for job in parts.scheduler.get_jobs()} >= {
            "starpod-health-sweep",
            "starpod-retention",
            "starpod-alerts-delivery",
            "starpod-alerts-housekeeping",
            "starpod-ssh-links-purge",
            "starpod-audit-prune",
        }
        # The audit prune runs shortly after start, not an hour later.
        prune = parts.scheduler.get_job("starpod-audit-prune")
        assert prune is not None and prune.next_run_time is not None
        assert (prune.next_run_time - datetime.now(UTC)).total_seconds() < 60
        assert list(parts.readiness.checks) == ["database", "slack", "monitor"]
        assert parts.gateway_on
    finally:
        await parts.slack_session.close()
        await parts.client.aclose()
        await parts.db.dispose()
        await parts.sweep.client.aclose()
        await parts.sweep.db.dispose()


async def test_build_names_every_missing_setting(make_settings: MakeSettings) -> None:
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        build(make_settings(SLACK_BOT_TOKEN=""))


async def test_under_pytest_the_sweep_loop_waits_for_nothing(make_settings: MakeSettings) -> None:
    # pytest's loop is not a foreground loop (bot.priority): nothing marks it, so the sweep's
    # loop must not wait on it.
    parts = build(make_settings())
    try:
        assert parts.sweep is not None and parts.sweep.loop.gate is None
    finally:
        await close_parts(parts)


def test_built_on_a_foreground_loop_the_sweep_lets_its_work_pass_first(tmp_path: Path) -> None:
    # As `starpod-bot run` builds the bot: on a foreground loop (no I/O: nothing listens on
    # these addresses, build() opens nothing).
    settings = Settings.model_validate(
        {
            "backend": {"url": "http://127.0.0.1:9"},
            "slack": {"bot_token": "xoxb-test", "signing_secret": "secret"},
            "database": {"url": f"sqlite:///{tmp_path / 'bot.db'}"},
        }
    )
    precedence = Precedence()

    async def built() -> tuple[Precedence | None, Precedence | None, str]:
        parts = build(settings)
        try:
            assert parts.sweep is not None
            precedence.yielded_secs = 2.5  # as if the sweep had waited that long in all
            parts.collector.collected_secs = 0.5  # and full collections had taken this long
            scrape = (await parts.metrics.render()).decode()
            return parts.sweep.loop.gate, parts.collector.gate, scrape
        finally:
            await close_parts(parts)

    gate, collector_gate, scrape = run_foreground(built(), precedence)
    assert gate is precedence
    # Full collections wait for an idle Slack loop too.
    assert collector_gate is precedence
    # How long the sweep waited, and the time in full collections: counters to watch.
    assert "starpod_sweep_yield_seconds_total 2.5" in scrape
    assert "starpod_gc_full_collection_seconds_total 0.5" in scrape
