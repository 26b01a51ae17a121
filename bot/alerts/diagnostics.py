"""The diagnostics reply under every announced instance incident: logs, health, history.

What the engineer paged looks at first, gathered for them:

- the last :data:`LOG_LINES` warn/error log lines (from the last :data:`LOG_READ` lines the
  backend sends, each cut at :data:`LINE_CHARS`, escaped, in a code block), with a
  "More logs" button (the incident's Logs button: the last 50 lines, to the clicker);
- the last health sample against the instance's normal over the previous 24 h (CPU,
  memory, disk averages and peaks; uptime);
- the last :data:`CHANGES` status changes, with who or what caused each.

It is built **when the outbox row is sent** (:mod:`bot.alerts.delivery`), never in the
transaction that opens the incident: the monitor's decision never waits on the backend.
The log read has a deadline (:attr:`Diagnostics.deadline_secs`); a backend that fails or
is too slow gives one line, ``logs unavailable: …``, and the rest of the reply still goes.
Health and history come from the bot's own database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.backend.errors import BackendError
from bot.backend.models import LogEntry
from bot.blockkit.blocks import Block, actions, button, context, fields_section, section
from bot.blockkit.ids import ActionId, BlockId
from bot.blockkit.limits import MAX_SECTION_TEXT, Reply, reply
from bot.blockkit.mrkdwn import code_block_line, date, duration, escape, megabytes, user
from bot.store.heartbeats.reads import heartbeat_history, latest_heartbeat
from bot.store.models import StatusChange

if TYPE_CHECKING:
    from bot.backend.client import InstanceClient
    from bot.store.database import Database

log = logging.getLogger(__name__)

LOG_LINES = 20
LOG_READ = 500
LOG_READ_BYTES = 1024 * 1024  # a backend ignoring ?tail= is read this far, no further
LINE_CHARS = 140
CHANGES = 5
NORMAL_WINDOW = timedelta(hours=24)
DEADLINE_SECS = 8.0
PROBLEM_LEVELS = ("error", "warn")


@dataclass(frozen=True, slots=True)
class HealthNormal:
    """The last sample and the averages and peaks of the window before it."""

    last_at: datetime
    cpu: float
    memory_mb: int
    disk_mb: int
    uptime_secs: int
    samples: int
    cpu_avg: float | None
    cpu_max: float | None
    memory_avg: float | None
    memory_max: int | None
    disk_avg: float | None


@dataclass(frozen=True, slots=True)
class Change:
    """One status change as the reply shows it."""

    at: datetime
    from_status: str | None
    to_status: str
    cause: str
    actor: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class LogsRead:
    """The warn/error lines kept, how many lines were read, or why none could be."""

    lines: list[LogEntry]
    read: int = 0
    unavailable: str | None = None


async def health_normal(
    session: AsyncSession, instance_id: str, *, now: datetime
) -> HealthNormal | None:
    """The instance's last sample and its 24 h normal (None: never sampled)."""
    last = await latest_heartbeat(session, instance_id)
    if last is None:
        return None
    window = await heartbeat_history(session, instance_id, since=now - NORMAL_WINDOW)
    count = len(window)
    cpu = [s.cpu_percent for s in window]
    memory = [s.memory_mb for s in window]
    stats = (
        count,
        sum(cpu) / count if count else None,
        max(cpu, default=None),
        sum(memory) / count if count else None,
        max(memory, default=None),
        sum(s.disk_mb for s in window) / count if count else None,
    )

    def num(value: object) -> float | None:
        return float(value) if count and value is not None else None  # type: ignore[arg-type]

    memory_max = num(stats[4])
    return HealthNormal(
        last_at=last.sampled_at,
        cpu=last.cpu_percent,
        memory_mb=last.memory_mb,
        disk_mb=last.disk_mb,
        uptime_secs=last.uptime_secs,
        samples=count,
        cpu_avg=num(stats[1]),
        cpu_max=num(stats[2]),
        memory_avg=num(stats[3]),
        memory_max=int(memory_max) if memory_max is not None else None,
        disk_avg=num(stats[5]),
    )


async def recent_changes(session: AsyncSession, instance_id: str) -> list[Change]:
    """The instance's last :data:`CHANGES` status changes, newest first."""
    rows = await session.scalars(
        select(StatusChange)
        .where(StatusChange.instance_id == instance_id)
        .order_by(StatusChange.at.desc(), StatusChange.id.desc())
        .limit(CHANGES)
    )
    return [Change(r.at, r.from_status, r.to_status, r.cause, r.actor, r.reason) for r in rows]


def _cut(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= LINE_CHARS else flat[: LINE_CHARS - 1] + "…"


def logs_text(logs: LogsRead) -> str:
    """The logs part (mrkdwn, escaped)."""
    if logs.unavailable is not None:
        return f"*Logs*: logs unavailable: {escape(_cut(logs.unavailable))}"
    if not logs.lines:
        return f"*Logs*: no warn or error lines in the last {logs.read} lines."
    lines = [
        code_block_line(
            f"{e.timestamp.strftime('%H:%M:%S') if e.timestamp else '--:--:--'} "
            f"{e.level.value.upper():5} {_cut(e.message)}"
        )
        for e in logs.lines
    ]

    def text() -> str:
        head = f"*Last {len(lines)} warn/error lines* (of the last {logs.read} read)"
        return head + "\n```" + "\n".join(lines) + "```"

    # Escaping can make a line several times longer: drop the oldest lines until the
    # section fits whole (a cut block would lose its closing fence).
    while len(lines) > 1 and len(text()) > MAX_SECTION_TEXT:
        lines.pop(0)
    return text()


def _vs(now: float, avg: float | None, peak: float | None, fmt: Callable[[float], str]) -> str:
    if avg is None:
        return fmt(now)
    text = f"{fmt(now)} (24 h avg {fmt(avg)}"
    if peak is not None:
        text += f", peak {fmt(peak)}"
    return text + ")"


def health_fields(health: HealthNormal | None) -> list[str]:
    """The health part: last sample vs the 24 h normal."""
    if health is None:
        return ["*Health*\nno samples recorded yet"]

    def pct(value: float) -> str:
        return f"{value:.0f} %"

    return [
        f"*CPU*\n{_vs(health.cpu, health.cpu_avg, health.cpu_max, pct)}",
        f"*Memory*\n{_vs(health.memory_mb, health.memory_avg, health.memory_max, megabytes)}",
        f"*Disk*\n{_vs(health.disk_mb, health.disk_avg, None, megabytes)}",
        f"*Uptime*\n{duration(health.uptime_secs)} (sampled {date(health.last_at)})",
    ]


def _who(change: Change) -> str:
    if change.cause == "user":
        return f"by {user(change.actor)}" if change.actor else "by someone"
    return "seen by the monitor" if change.cause == "monitor" else f"by the {escape(change.cause)}"


def changes_text(changes: Sequence[Change]) -> str:
    """The history part: newest first, with who caused each."""
    if not changes:
        return "*Status changes*: none recorded."
    lines = []
    for c in changes:
        line = f"• {date(c.at)} {escape(c.from_status or 'new')} → {escape(c.to_status)} {_who(c)}"
        if c.reason:
            line += f": {escape(_cut(c.reason))}"
        lines.append(line)
    return "*Last status changes*\n" + "\n".join(lines)


def diagnostics_message(
    incident_id: int,
    label: str,
    logs: LogsRead,
    health: HealthNormal | None,
    changes: Sequence[Change],
) -> Reply:
    """The whole reply (pure)."""
    blocks: list[Block] = [
        section(
            f"🩺 *Diagnostics* for {escape(label)}",
            block_id=f"{BlockId.INCIDENT_DIAGNOSTICS}:{incident_id}",
        ),
        section(logs_text(logs)),
        fields_section(health_fields(health)),
        section(changes_text(changes)),
        actions(
            [button("More logs", ActionId.INCIDENT_LOGS, str(incident_id))],
            block_id=f"{BlockId.INCIDENT_DIAGNOSTICS}.actions:{incident_id}",
        ),
    ]
    if health is not None and health.samples:
        blocks.insert(3, context(f"24 h normal from {health.samples} samples"))
    state = "logs unavailable" if logs.unavailable else f"{len(logs.lines)} warn/error lines"
    return reply(f"Diagnostics for {label}: {state}", blocks)


class Diagnostics:
    """Builds an incident's diagnostics reply: logs from the backend (with a deadline),
    health and history from the database."""

    def __init__(
        self,
        db: Database,
        client: InstanceClient | None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        deadline_secs: float = DEADLINE_SECS,
    ) -> None:
        self._db = db
        self._client = client
        self._clock = clock
        self.deadline_secs = deadline_secs

    async def read_logs(self, instance_id: str) -> LogsRead:
        """The last warn/error lines, or why there are none; never raises (but cancel)."""
        if self._client is None:
            return LogsRead([], unavailable="no backend client in this bot process")
        try:
            async with asyncio.timeout(self.deadline_secs):
                tail = await self._client.tail_logs(
                    instance_id, LOG_READ, max_bytes=LOG_READ_BYTES, max_secs=self.deadline_secs
                )
        except TimeoutError:
            return LogsRead(
                [], unavailable=f"the backend did not answer in {self.deadline_secs:g} s"
            )
        except BackendError as exc:
            return LogsRead([], unavailable=str(exc))
        except Exception as exc:
            log.warning("diagnostics: reading the logs of %s failed: %s", instance_id, exc)
            return LogsRead([], unavailable=f"{type(exc).__name__}")
        kept = [e for e in tail.entries if e.level.value in PROBLEM_LEVELS][-LOG_LINES:]
        return LogsRead(kept, read=len(tail.entries))

    async def build(self, incident_id: int, instance_id: str, label: str) -> Reply:
        """The reply for one incident (logs read concurrently with the database)."""
        now = self._clock()

        async def from_db(session: AsyncSession) -> tuple[HealthNormal | None, list[Change]]:
            return (
                await health_normal(session, instance_id, now=now),
                await recent_changes(session, instance_id),
            )

        logs, (health, changes) = await asyncio.gather(
            self.read_logs(instance_id), self._db.run(from_db)
        )
        return diagnostics_message(incident_id, label, logs, health, changes)
