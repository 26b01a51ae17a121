"""The audit log: every command and click, allowed or refused, with its result and duration.

A handler fills an :class:`AuditDraft` as it learns things (the resolved instance, the
outcome); exactly one row is written per request, by the listener pipeline in a
``finally`` (``middleware.py``), whatever the outcome. A failed audit write is logged and
never turns a working command into an error for the user.

Anonymous refusals are the exception: the gateway counts failed authentications in one
row per client per minute (:meth:`AuditLog.tally`), so they cannot fill the disk. Rows
older than the retention (``[database] audit_retention_days``, a year by default) are
deleted by a scheduled job (:meth:`AuditLog.prune`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.database import Database
from bot.store.errors import StoreUnwritable
from bot.store.slack_models import AUDIT_RESULTS, AUDIT_SOURCES, MAX_ARGS, AuditEntry

log = logging.getLogger(__name__)

MAX_DETAIL = 2000
DEFAULT_LIMIT = 20
#: Audit rows kept by default (``[database] audit_retention_days``).
DEFAULT_RETENTION_DAYS = 365
#: Rows deleted per transaction when pruning: short transactions, even after a flood.
PRUNE_BATCH = 5000


async def record_audit(
    session: AsyncSession,
    *,
    at: datetime,
    user_id: str,
    channel_id: str | None,
    source: str,
    action: str,
    instance_id: str | None = None,
    args: str | None = None,
    result: str = "ok",
    detail: str | None = None,
    duration_ms: int | None = None,
) -> AuditEntry:
    """Append one audit row (the caller owns the transaction)."""
    if source not in AUDIT_SOURCES:
        raise ValueError(f"source must be one of {AUDIT_SOURCES}, not {source!r}")
    if result not in AUDIT_RESULTS:
        raise ValueError(f"result must be one of {AUDIT_RESULTS}, not {result!r}")
    entry = AuditEntry(
        at=at,
        user_id=user_id[:64],
        channel_id=channel_id[:64] if channel_id else None,
        source=source,
        action=action[:64],
        instance_id=instance_id[:128] if instance_id else None,
        args=args[:MAX_ARGS] if args else None,
        result=result,
        detail=detail[:MAX_DETAIL] if detail else None,
        duration_ms=duration_ms,
    )
    session.add(entry)
    await session.flush()
    return entry


async def latest_audit(
    session: AsyncSession,
    *,
    instance_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
    user_id: str | None = None,
) -> list[AuditEntry]:
    """The latest ``limit`` entries, newest first, of everything, one instance or one user."""
    stmt = select(AuditEntry)
    if instance_id is not None:
        stmt = stmt.where(AuditEntry.instance_id == instance_id)
    if user_id is not None:
        stmt = stmt.where(AuditEntry.user_id == user_id)
    result = await session.scalars(
        stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    )
    return list(result)


async def prune_audit(session: AsyncSession, *, before: datetime, batch: int) -> int:
    """Delete up to ``batch`` of the oldest rows written before ``before``; how many went."""
    old = (
        select(AuditEntry.id)
        .where(AuditEntry.at < before)
        .order_by(AuditEntry.at, AuditEntry.id)
        .limit(batch)
    )
    ids = list((await session.scalars(old)).all())
    if ids:
        await session.execute(
            delete(AuditEntry)
            .where(AuditEntry.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)


@dataclass
class AuditDraft:
    """One request's audit row, filled in as the request goes."""

    user_id: str
    channel_id: str | None
    source: str
    action: str
    args: str | None = None
    instance_id: str | None = None
    result: str = "ok"
    detail: str | None = None
    started: float = field(default_factory=time.perf_counter)
    written: bool = False

    def counted_elsewhere(self) -> None:
        """This request is counted in an aggregate row (:meth:`AuditLog.tally`): no row of
        its own is written for it."""
        self.written = True

    def fail(self, result: str, detail: str) -> None:
        """Mark the outcome as ``refused``, ``usage`` or ``error`` with a short detail."""
        self.result = result
        self.detail = detail


#: Key of ``SlackDeps.extra`` holding an ``observer(draft)`` called for every audit row
#: (the runtime counts commands by subcommand and result with it).
AUDIT_OBSERVER = "audit_observer"


class AuditLog:
    """Writes drafts and reads the latest entries."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        observer: Callable[[AuditDraft], None] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._observer = observer

    async def write(self, draft: AuditDraft) -> None:
        """Write ``draft`` once; later calls for the same draft do nothing. Never raises."""
        if draft.written:
            return
        draft.written = True
        if self._observer is not None:
            try:
                self._observer(draft)
            except Exception:
                log.exception("audit observer failed")
        duration_ms = round((time.perf_counter() - draft.started) * 1000)
        at = self._clock()

        async def _insert(session: AsyncSession) -> None:
            await record_audit(
                session,
                at=at,
                user_id=draft.user_id,
                channel_id=draft.channel_id,
                source=draft.source,
                action=draft.action,
                instance_id=draft.instance_id,
                args=draft.args,
                result=draft.result,
                detail=draft.detail,
                duration_ms=duration_ms,
            )

        try:
            await self._db.run(_insert)
        except StoreUnwritable as exc:
            # A full or read-only database: the answer was given; say what was not recorded.
            log.warning(
                "audit row not written (%s): user=%s action=%s instance=%s result=%s",
                exc,
                draft.user_id,
                draft.action,
                draft.instance_id,
                draft.result,
            )
        except Exception:
            # The user's action already happened; losing its audit row is bad but must not
            # turn into an error message. The log line keeps who/what for the record.
            log.exception(
                "audit write failed: user=%s action=%s instance=%s result=%s",
                draft.user_id,
                draft.action,
                draft.instance_id,
                draft.result,
            )

    async def tally(
        self,
        row_id: int | None,
        *,
        at: datetime,
        user_id: str,
        action: str,
        result: str,
        detail: str,
        source: str = "gateway",
    ) -> int | None:
        """One row counting many events: insert it (``row_id`` None) or rewrite its detail.

        Returns the row's id (None when the write failed; it is logged, never raised).
        Rewriting a row in place keeps a flood of refused requests from growing the table.
        """

        async def _write(session: AsyncSession) -> int:
            if row_id is not None:
                await session.execute(
                    update(AuditEntry)
                    .where(AuditEntry.id == row_id)
                    .values(detail=detail[:MAX_DETAIL])
                    .execution_options(synchronize_session=False)
                )
                return row_id
            entry = await record_audit(
                session,
                at=at,
                user_id=user_id,
                channel_id=None,
                source=source,
                action=action,
                result=result,
                detail=detail,
            )
            return entry.id

        try:
            return await self._db.run(_write)
        except StoreUnwritable as exc:
            log.warning("audit tally not written (%s): action=%s", exc, action)
            return None
        except Exception:
            log.exception("audit tally failed: action=%s detail=%s", action, detail)
            return None

    async def prune(
        self, *, keep_days: int = DEFAULT_RETENTION_DAYS, batch: int = PRUNE_BATCH
    ) -> int:
        """Delete every row older than ``keep_days``, ``batch`` rows per transaction."""
        before = self._clock() - timedelta(days=keep_days)
        total = 0
        while True:
            deleted = await self._db.run(
                lambda session: prune_audit(session, before=before, batch=batch)
            )
            total += deleted
            if deleted < batch:
                return total

    async def latest(
        self,
        *,
        instance_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        user_id: str | None = None,
    ) -> list[AuditEntry]:
        """The latest entries, newest first (of one instance, of one user)."""
        async with self._db.session() as session:
            return await latest_audit(
                session, instance_id=instance_id, limit=limit, user_id=user_id
            )
