"""``starpod-bot instance history <id>`` and ``starpod-bot audit [<id>]``: the bot's database.

Both read what the running bot wrote (``DATABASE_URL``, as ``starpod-bot run`` uses it) and
need no backend or Slack: an instance that is gone from the backend still has its history
and its audit rows, found by id, unique id prefix or exact name among the instances the bot
has seen. Nothing is written; a SQLite file that does not exist is never created.

Exit codes as the rest of the CLI: 0 success, 1 nothing matches (or the database refuses the
read), 2 a usage or configuration problem (no such database, not migrated).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from bot.backend.errors import InstanceLookupError
from bot.backend.models import Instance
from bot.backend.refs import pick_instance
from bot.config import load_settings, setting_name
from bot.errors import ConfigError
from bot.instance_cli import EXIT_BACKEND, EXIT_USAGE, fail, human_duration, out
from bot.store.audit import latest_audit
from bot.store.database import Database
from bot.store.errors import DatabaseUnavailable, UnsupportedDatabaseError
from bot.store.queries import known_instances, status_history

T = TypeVar("T")

IdArg = Annotated[
    str, typer.Argument(metavar="ID", help="Instance id, unique id prefix, or exact name.")
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Rows to show.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def run_database(action: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``action`` on the bot's database (read only); map problems to exit codes."""
    try:
        url = load_settings().database.url
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None

    async def main() -> T:
        db = Database(url)
        async with db:
            if db.sqlite_path is not None and not db.sqlite_path.is_file():
                # Connecting would create an empty file where the user expects the bot's.
                raise ConfigError(
                    f"no database at {db.sqlite_path}: set DATABASE_URL to the bot's database"
                )
            if await db.current_revision() is None:
                raise ConfigError(
                    f"{db.safe_url} has no starpod-bot tables: is DATABASE_URL the bot's "
                    "database? (`starpod-bot db upgrade` creates them)"
                )
            return await action(db)

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except (DatabaseUnavailable, UnsupportedDatabaseError) as exc:
        raise fail(f"{setting_name('database.url')}: {exc}", EXIT_USAGE) from None
    except InstanceLookupError as exc:
        raise fail(str(exc), EXIT_USAGE) from None  # what was typed: a usage error
    except (SQLAlchemyError, OSError) as exc:
        raise fail(f"cannot read the database: {type(exc).__name__}: {exc}", EXIT_BACKEND) from None


async def remembered(db: Database, ref: str) -> Instance:
    """The instance ``ref`` names among those the bot has seen (even if gone since)."""
    async with db.session() as session:
        rows = await known_instances(session)
    instances = [
        Instance.model_validate(
            {"id": row.id, "name": row.name, "region": row.region, "status": row.status}
        )
        for row in rows
    ]
    return pick_instance(ref, instances, acting=False)  # reading: any unique prefix


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def history(ref: IdArg, limit: LimitOpt = 20, as_json: JsonOpt = False) -> None:
    """Status changes of an instance and what caused them, newest first (bot's database)."""
    # rich when printing, not on import: `starpod-bot run` imports this module too.
    from rich.table import Table
    from rich.text import Text

    async def action(db: Database) -> tuple[Instance, list[dict[str, Any]]]:
        instance = await remembered(db, ref)
        async with db.session() as session:
            changes = await status_history(session, instance.id, limit=limit)
        rows = [
            {
                "at": change.at.astimezone(UTC).isoformat(),
                "from": change.from_status,
                "to": change.to_status,
                "cause": change.cause,
                "actor": change.actor,
                "source": change.source,
                "reason": change.reason,
            }
            for change in changes
        ]
        return instance, rows

    instance, rows = run_database(action)
    if as_json:
        out().print_json(json.dumps({"id": instance.id, "name": instance.name, "changes": rows}))
        return
    now = datetime.now(UTC)
    table = Table(
        title=f"{instance.label}: {len(rows)} latest status changes", title_justify="left"
    )
    for column in ("AT (UTC)", "AGO", "CHANGE", "CAUSE", "BY", "REASON"):
        table.add_column(column)
    for row in rows:
        at = datetime.fromisoformat(row["at"])
        table.add_row(
            _when(at),
            human_duration((now - at).total_seconds()),
            Text(f"{row['from'] or '-'} → {row['to']}"),
            Text(row["cause"]),
            Text(row["actor"] or row["source"] or "-"),
            Text(row["reason"] or ""),
        )
    out().print(table)


def audit(
    ref: Annotated[
        str | None, typer.Argument(help="Only this instance (id, prefix or name).")
    ] = None,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """Who did what, newest first: every command and click the bot audited (its database)."""
    # rich when printing, not on import: `starpod-bot run` imports this module too.
    from rich.table import Table
    from rich.text import Text

    async def action(db: Database) -> tuple[Instance | None, list[dict[str, Any]]]:
        instance = await remembered(db, ref) if ref is not None else None
        async with db.session() as session:
            entries = await latest_audit(
                session, instance_id=instance.id if instance else None, limit=limit
            )
        rows = [
            {
                "at": entry.at.astimezone(UTC).isoformat(),
                "user": entry.user_id,
                "source": entry.source,
                "action": entry.action,
                "instance_id": entry.instance_id,
                "args": entry.args,
                "result": entry.result,
                "detail": entry.detail,
                "duration_ms": entry.duration_ms,
            }
            for entry in entries
        ]
        return instance, rows

    instance, rows = run_database(action)
    if as_json:
        out().print_json(json.dumps(rows))
        return
    title = f"{len(rows)} latest audit entries" + (f" of {instance.label}" if instance else "")
    table = Table(title=title, title_justify="left")
    for column in ("AT (UTC)", "USER", "SOURCE", "ACTION", "INSTANCE", "RESULT", "DETAIL"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            _when(datetime.fromisoformat(row["at"])),
            Text(row["user"]),
            Text(row["source"]),
            Text(row["action"]),
            Text((row["instance_id"] or "-")[:8]),
            Text(row["result"], style="green" if row["result"] == "ok" else "yellow"),
            Text(row["detail"] or row["args"] or ""),
        )
    out().print(table)
