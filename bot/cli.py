"""The ``starpod-bot`` command: run, demo, simulate, db and instance.

Each command loads settings itself, so a missing setting stops only the command that
needs it, with one line that names it (exit code 2), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from bot import __version__
from bot.config import load_settings
from bot.errors import ConfigError, StarpodBotError
from bot.instance_cli import EXIT_USAGE, fail, instance_app

app = typer.Typer(
    help="Slack chat-ops bot for Starpod cloud instances.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(instance_app, name="instance")
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit(0)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (DATABASE_URL, default sqlite:///./starpod-bot.db)."""
    from bot.store.database import Database

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None

    async def upgrade() -> None:
        async with Database(settings.database.url) as db:
            await db.upgrade()

    try:
        asyncio.run(upgrade())
    except StarpodBotError as exc:
        raise fail(str(exc), 1) from None
    typer.echo("database is up to date")


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


def main() -> None:
    """Console-script entry point."""
    app()
