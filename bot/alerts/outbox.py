"""Writing to the outbox: every Slack message the alerts feature sends starts as a row here.

Callers pass the session of the transaction that records the change, so the message
exists exactly when the change does (the transactional outbox). Nothing here sends;
:mod:`bot.alerts.delivery` does, in ``id`` order per ``stream``.

Kinds:

``root``    the incident's message in the channel (its ts is stored on the incident);
``reply``   a message in the incident's thread (waits for the root's ts);
``update``  ``chat.update`` of the root with the incident's current state;
``notice``  a top-level message that belongs to no incident (mute ended …);
``diagnostics``  the incident's diagnostics reply, built when it is sent (logs, health,
            history: :mod:`bot.alerts.diagnostics`), right after the root in its stream;
``event``   a PagerDuty or webhook event (``destination``), in a stream of its own per
            incident and destination (:mod:`bot.alerts.paging`).

Root edits coalesce: while the root itself is still waiting to be sent, its payload is
replaced by the newer state; otherwise older pending edits are marked ``superseded`` and
one new edit is queued. Rows a sender has claimed are never touched. A root row and its
edits carry a ``digest`` of their content (:mod:`bot.alerts.live`): an edit whose digest
is what Slack already shows (or is being sent) is not queued at all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.blockkit.limits import Reply
from bot.store.alert_models import AlertOutbox

ROOT = "root"
REPLY = "reply"
UPDATE = "update"
NOTICE = "notice"
DIAGNOSTICS = "diagnostics"
EVENT = "event"

SLACK = "slack"


def incident_stream(incident_id: int) -> str:
    """The stream of an incident's rows (sent strictly in order)."""
    return f"incident:{incident_id}"


def mute_stream(instance_id: str) -> str:
    """The stream of one instance's mute notices."""
    return f"mute:{instance_id}"


def _payload(
    message: Reply, *, broadcast: bool = False, digest: str | None = None
) -> dict[str, object]:
    data: dict[str, object] = message.kwargs()
    if broadcast:
        data["reply_broadcast"] = True
    if digest is not None:
        data["digest"] = digest
    return data


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    channel: str,
    message: Reply,
    now: datetime,
    stream: str,
    incident_id: int | None = None,
    broadcast: bool = False,
    digest: str | None = None,
) -> AlertOutbox:
    """Add one pending Slack row (due at once) and flush it so it has its id (``digest``:
    of a root or an edit, see :func:`refresh_root`)."""
    return await enqueue_raw(
        session,
        kind=kind,
        channel=channel,
        payload=_payload(message, broadcast=broadcast, digest=digest),
        now=now,
        stream=stream,
        incident_id=incident_id,
    )


async def enqueue_raw(
    session: AsyncSession,
    *,
    kind: str,
    channel: str,
    payload: dict[str, object],
    now: datetime,
    stream: str,
    incident_id: int | None = None,
    destination: str = SLACK,
) -> AlertOutbox:
    """Add one pending row with ``payload`` as given, for ``destination``."""
    row = AlertOutbox(
        incident_id=incident_id,
        stream=stream,
        kind=kind,
        destination=destination,
        channel=channel,
        payload=payload,
        state="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(row)
    await session.flush()
    return row


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(AlertOutbox.claimed_until.is_(None), AlertOutbox.claimed_until <= now)


async def refresh_root(
    session: AsyncSession,
    *,
    incident_id: int,
    channel: str,
    message: Reply,
    now: datetime,
    digest: str | None = None,
) -> None:
    """Make the incident's root show ``message``: rewrite the unsent root, or queue an edit.

    Nothing is queued when the newest root or edit Slack has (or is being sent) has the
    same ``digest``: the content did not change, only the live readings did.
    """
    if digest is not None:
        latest = await session.scalar(
            select(AlertOutbox)
            .where(
                AlertOutbox.incident_id == incident_id,
                AlertOutbox.kind.in_((ROOT, UPDATE)),
                AlertOutbox.state.in_(("pending", "sent")),
            )
            .order_by(AlertOutbox.id.desc())
            .limit(1)
        )
        in_flight = latest is not None and latest.state == "pending" and not _is_free(latest, now)
        shown = latest is not None and (latest.state == "sent" or in_flight)
        if shown and latest is not None and (latest.payload or {}).get("digest") == digest:
            return
    pending_root = await session.scalar(
        select(AlertOutbox)
        .where(
            AlertOutbox.incident_id == incident_id,
            AlertOutbox.kind == ROOT,
            AlertOutbox.state == "pending",
            _unclaimed(now),
        )
        .limit(1)
    )
    # Older edits still waiting say less than this one: drop them (never a claimed one).
    await session.execute(
        update(AlertOutbox)
        .where(
            AlertOutbox.incident_id == incident_id,
            AlertOutbox.kind == UPDATE,
            AlertOutbox.state == "pending",
            _unclaimed(now),
        )
        .values(state="superseded", last_error="replaced by a newer edit")
        .execution_options(synchronize_session=False)
    )
    if pending_root is not None:
        pending_root.payload = _payload(message, digest=digest)
        await session.flush()
        return
    await enqueue(
        session,
        kind=UPDATE,
        channel=channel,
        message=message,
        now=now,
        stream=incident_stream(incident_id),
        incident_id=incident_id,
        digest=digest,
    )


def _is_free(row: AlertOutbox, now: datetime) -> bool:
    return row.claimed_until is None or row.claimed_until <= now
