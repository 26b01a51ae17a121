"""Delivery, stage 1: claim the due head of each outbox stream (one short transaction).

Read the pending rows in ``id`` order, take the first row of each stream (its *head*: a
later row never overtakes it), keep the heads that are due and not claimed by a live
sender, and claim them with a lease (``claimed_by``/``claimed_until``). On PostgreSQL the
heads are locked with ``FOR UPDATE SKIP LOCKED`` first, so two senders never wait on each
other; on both dialects the claim is a conditional UPDATE, so a row is only ever claimed
by one. See :mod:`bot.alerts.delivery` for the whole run.

A sender that leads (``take_over=True``) also takes the rows another holder claimed:
leadership moved, so that holder is dead or no longer the leader, and its claims would
otherwise hold that incident's replies and pages until they expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.outbox import ROOT
from bot.store.alert_models import AlertIncident, AlertOutbox

SCAN_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claimed outbox row, with its incident's root (ts, channel, still pending?)."""

    id: int
    kind: str
    destination: str
    channel: str
    payload: dict[str, Any]
    attempts: int
    incident_id: int | None
    root_ts: str | None
    root_channel: str | None
    root_pending: bool


def _unclaimed(now: datetime, holder: str, take_over: bool) -> ColumnElement[bool]:
    free = or_(AlertOutbox.claimed_until.is_(None), AlertOutbox.claimed_until <= now)
    if take_over:
        return or_(free, AlertOutbox.claimed_by != holder)
    return free


def _claimed_live(
    claimed_by: str | None,
    claimed_until: datetime | None,
    now: datetime,
    *,
    holder: str,
    take_over: bool,
) -> bool:
    """Whether a claim still keeps the row from ``holder``."""
    if claimed_until is None or claimed_until <= now:
        return False
    return not take_over or claimed_by == holder


async def _claim_some(
    session: AsyncSession,
    heads: list[int],
    now: datetime,
    *,
    holder: str,
    ttl: timedelta,
    skip_locked: bool,
    take_over: bool,
) -> list[int]:
    """Claim those of ``heads`` still free; returns the ids now ours."""
    if skip_locked:
        # Rows another sender is claiming right now are skipped, not waited for.
        heads = list(
            (
                await session.scalars(
                    select(AlertOutbox.id)
                    .where(AlertOutbox.id.in_(heads))
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if not heads:
            return []
    result = await session.execute(
        update(AlertOutbox)
        .where(
            AlertOutbox.id.in_(heads),
            AlertOutbox.state == "pending",
            _unclaimed(now, holder, take_over),
        )
        .values(claimed_by=holder, claimed_until=now + ttl)
        .returning(AlertOutbox.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars().all())


async def claim_due(
    session: AsyncSession,
    now: datetime,
    *,
    holder: str,
    ttl: timedelta,
    batch: int,
    skip_locked: bool = False,
    take_over: bool = False,
    skip_destinations: tuple[str, ...] = (),
) -> list[Claimed]:
    """Claim the due heads of the pending streams (at most ``batch``) for ``holder``
    until ``now + ttl``; returns them with what sending needs (the incident's root).

    ``skip_locked`` (PostgreSQL): lock the heads ``FOR UPDATE SKIP LOCKED`` first.
    ``take_over`` (the sender leads): other holders' live claims do not count.
    ``skip_destinations``: destinations paused by a 429 (a stream has one destination,
    so skipping its rows never reorders a stream)."""
    pending = AlertOutbox.state == "pending"
    if skip_destinations:
        pending = pending & AlertOutbox.destination.not_in(skip_destinations)
    rows = (
        await session.execute(
            select(
                AlertOutbox.id,
                AlertOutbox.stream,
                AlertOutbox.next_attempt_at,
                AlertOutbox.claimed_by,
                AlertOutbox.claimed_until,
            )
            .where(pending)
            .order_by(AlertOutbox.id)
            .limit(SCAN_LIMIT)
        )
    ).all()
    heads: list[int] = []
    seen: set[str] = set()
    for row in rows:
        if row.stream in seen:
            continue
        seen.add(row.stream)
        live = _claimed_live(
            row.claimed_by, row.claimed_until, now, holder=holder, take_over=take_over
        )
        if row.next_attempt_at <= now and not live:
            heads.append(row.id)
    # Another sender may claim some of these between our read and our claim: try the
    # next ones rather than stopping with work left.
    ids: list[int] = []
    for start in range(0, len(heads), batch):
        ids = await _claim_some(
            session,
            heads[start : start + batch],
            now,
            holder=holder,
            ttl=ttl,
            skip_locked=skip_locked,
            take_over=take_over,
        )
        if ids:
            break
    if not ids:
        return []
    full = (
        await session.scalars(
            select(AlertOutbox).where(AlertOutbox.id.in_(ids)).order_by(AlertOutbox.id)
        )
    ).all()
    incident_ids = {r.incident_id for r in full if r.incident_id is not None}
    incidents: dict[int, AlertIncident] = {}
    pending_roots: set[int] = set()
    if incident_ids:
        found = await session.scalars(
            select(AlertIncident).where(AlertIncident.id.in_(incident_ids))
        )
        incidents = {i.id: i for i in found}
        roots = await session.scalars(
            select(AlertOutbox.incident_id).where(
                AlertOutbox.incident_id.in_(incident_ids),
                AlertOutbox.kind == ROOT,
                AlertOutbox.state == "pending",
            )
        )
        pending_roots = {incident_id for incident_id in roots if incident_id is not None}
    claimed = []
    for r in full:
        incident = incidents.get(r.incident_id) if r.incident_id is not None else None
        claimed.append(
            Claimed(
                id=r.id,
                kind=r.kind,
                destination=r.destination,
                channel=r.channel,
                payload=dict(r.payload or {}),
                attempts=r.attempts,
                incident_id=r.incident_id,
                root_ts=incident.root_ts if incident is not None else None,
                root_channel=incident.channel if incident is not None else None,
                root_pending=r.incident_id in pending_roots and r.kind != ROOT,
            )
        )
    return claimed
