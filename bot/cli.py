"""The ``starpod-bot`` command: run, demo, simulate, db, instance and audit.

Each command loads settings itself, so a missing setting stops only the command that
needs it, with one line that names it (exit code 2), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# First of the bot's modules: before anything imports httpx (see the module).
import bot.httpx_cli_off  # noqa: F401
from bot import __version__
from bot.cli_help import StarpodTyper
from bot.config import Role, WorkerScheduling, load_settings, setting_name
from bot.db_cli import audit, history
from bot.errors import ConfigError, StarpodBotError
from bot.instance_cli import EXIT_USAGE, fail, instance_app
from bot.priority import run_foreground

if TYPE_CHECKING:
    from bot.store.database import Database

app = StarpodTyper(
    help="Slack chat-ops bot for Starpod cloud instances.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Read from the bot's database, not the backend: they live in db_cli.
instance_app.command("history")(history)
app.command("audit")(audit)
app.add_typer(instance_app, name="instance")
db_app = StarpodTyper(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"starpod-bot {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            # Eager: handled before Click asks for a command.
            is_eager=True,
            expose_value=False,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    pass


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (DATABASE_URL, default sqlite:///./starpod-bot.db)."""
    from bot.store.database import Database
    from bot.store.errors import DatabaseUnavailable, UnsupportedDatabaseError

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None

    async def upgrade() -> None:
        async with Database(settings.database.url) as db:
            await db.upgrade()

    try:
        asyncio.run(upgrade())
    except (DatabaseUnavailable, UnsupportedDatabaseError) as exc:
        # The setting is wrong (or names a database that is not there): exit 2, named.
        raise fail(f"{setting_name('database.url')}: {exc}", EXIT_USAGE) from None
    except StarpodBotError as exc:
        raise fail(str(exc), 1) from None
    typer.echo("database is up to date")


@db_app.command("stats")
def db_stats() -> None:
    """Heartbeat history on disk: samples, rows, chunks, bytes per sample, file size."""
    from bot.store.database import Database
    from bot.store.heartbeats.stats import history_stats, render

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None

    async def stats() -> list[str]:
        async with Database(settings.database.url) as db:
            await _require_head(db)
            return render(await history_stats(db))

    try:
        lines = asyncio.run(stats())
    except StarpodBotError as exc:
        raise fail(str(exc), 1) from None
    for line in lines:
        typer.echo(line)


@db_app.command("compact")
def db_compact() -> None:
    """Move every heartbeat sample of a finished hour from the head into chunks, now."""
    from datetime import UTC, datetime

    from bot.store.database import Database
    from bot.store.heartbeats.compaction import compact

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None

    async def run() -> str:
        async with Database(settings.database.url) as db:
            await _require_head(db)
            hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            result = await compact(db, before=hour)
        return (
            f"compacted {result.samples:,} samples into {result.chunks_written:,} new and "
            f"{result.chunks_merged:,} merged chunks in {result.seconds:.1f} s"
        )

    try:
        message = asyncio.run(run())
    except StarpodBotError as exc:
        raise fail(str(exc), 1) from None
    typer.echo(message)


async def _require_head(db: Database) -> None:
    """Refuse, in one line, a database that is not migrated to the newest revision."""
    from bot.store.errors import MigrationError
    from bot.store.migrate import head_revision

    current = await db.current_revision()
    if current != head_revision():
        raise MigrationError(
            f"the database is at revision {current or 'none'}, not {head_revision()}: "
            "run `starpod-bot db upgrade` first"
        )


@app.command("run")
def run_bot(
    config: Annotated[
        str | None, typer.Option("--config", help="TOML settings file (else STARPOD_CONFIG).")
    ] = None,
    role: Annotated[
        Role | None,
        typer.Option(
            "--role",
            help="all: everything in one process; web: Slack and the gateway; worker: the "
            "health sweeps, alerts and housekeeping (else STARPOD_ROLE, default all).",
        ),
    ] = None,
) -> None:
    """Run the bot: Slack, health monitor, alerts, and the web server (probes, metrics, gateway).

    Stops cleanly on SIGTERM or SIGINT (exit 0). A missing or bad setting, a rejected Slack
    token, or a second process on the same SQLite file: one line each, exit code 2.
    With ``--role web`` and ``--role worker`` the two halves run as two processes on one
    database: sweeps then never hold up Slack's acknowledgements.
    """
    import logging

    from bot.logging_setup import configure_logging, secret_values
    from bot.runtime import run
    from bot.worker_priority import take_role_priority, takes_idle

    try:
        settings = load_settings(config_file=config)
    except ConfigError as exc:
        *first, last = str(exc).split("; ")
        for line in first:  # one line per problem
            fail(line, EXIT_USAGE)
        raise fail(last, EXIT_USAGE) from None
    if role is not None:
        settings = settings.model_copy(update={"role": role})
    priority = take_role_priority(settings)  # before any thread starts
    configure_logging(settings.log, secrets=secret_values(settings))
    if takes_idle(settings) and priority.policy != WorkerScheduling.IDLE:
        logging.getLogger("bot.worker_priority").warning(
            "the kernel refused idle CPU scheduling (STARPOD_WORKER_SCHEDULING=idle): "
            "running at niceness %d",
            priority.niceness,
        )
    # On a foreground loop: the sweep's own loop lets Slack's work pass first.
    raise typer.Exit(run_foreground(run(settings)))


@app.command("simulate")
def simulate(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8700,
    instances: Annotated[int, typer.Option(help="Instances to seed.", min=0)] = 20,
    api_key: Annotated[str | None, typer.Option(help="Require this Bearer key.")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Run the built-in Starpod backend simulator."""
    from bot.sim.backend import serve

    typer.echo(f"Starpod backend simulator on http://{host}:{port} ({instances} instances)")
    typer.echo(f"Try: STARPOD_INSTANCE_BACKEND_URL=http://{host}:{port} starpod-bot instance list")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host=host, port=port, instances=instances, api_key=api_key))


@app.command("demo")
def demo(
    port: Annotated[int, typer.Option(help="Playground and Slack emulator port (0: any).")] = 3000,
    bot_port: Annotated[int, typer.Option(help="The bot's own port (0: any).")] = 3001,
    instances: Annotated[int, typer.Option(help="Instances to seed.", min=1)] = 6,
    stall_after: Annotated[
        float, typer.Option(help="Seconds until two instances stop their heartbeat.", min=0)
    ] = 60.0,
    monitor_interval: Annotated[float, typer.Option(help="Health sweep interval, s.")] = 5.0,
    heartbeat_timeout: Annotated[float, typer.Option(help="Stale after this many s.")] = 15.0,
    transition_secs: Annotated[float, typer.Option(help="Restart/pause duration, s.")] = 2.0,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file to keep (default: a temporary one).")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop by itself after this many seconds.")
    ] = None,
    bot_log_level: Annotated[str, typer.Option(help="The bot's LOG_LEVEL.")] = "WARNING",
    socket_mode: Annotated[
        bool, typer.Option(help="Run the bot in Socket Mode over the emulator's WebSocket.")
    ] = False,
) -> None:
    """Run the whole product locally: backend simulator, Slack playground and the bot."""
    from bot.demo import DemoOptions, run_demo

    options = DemoOptions(
        port=port,
        bot_port=bot_port,
        instances=instances,
        stall_after=stall_after,
        monitor_interval=monitor_interval,
        heartbeat_timeout=heartbeat_timeout,
        transition_secs=transition_secs,
        database=db,
        duration=duration,
        bot_log_level=bot_log_level.upper(),
        socket_mode=socket_mode,
    )
    raise typer.Exit(run_foreground(run_demo(options, echo=typer.echo)))


def main() -> None:
    """Console-script entry point."""
    app()
