"""The `/starpod status` answer: the bot itself, for the person wondering if it is alive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.blockkit.blocks import Block, context, fields_section, section
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import date, duration, escape


class MonitorStatusLike(Protocol):
    """The fields of ``bot.monitor.events.MonitorStatus`` this answer shows (read-only, so a
    frozen dataclass satisfies it)."""

    @property
    def last_sweep_at(self) -> datetime | None: ...
    @property
    def last_sweep_secs(self) -> float | None: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def is_leader(self) -> bool: ...
    @property
    def standing_by(self) -> bool: ...
    @property
    def backend_reachable(self) -> bool: ...
    @property
    def instances_tracked(self) -> int: ...
    @property
    def stale_count(self) -> int: ...
    @property
    def problem(self) -> str | None: ...


@dataclass(frozen=True)
class BotStatusView:
    """What /starpod status reports, gathered by the handler."""

    now: datetime
    version: str
    backend_ok: bool
    backend_detail: str
    database_ok: bool
    # Why the database refuses writes although it answers (None: it takes writes).
    database_refusal: str | None = None
    monitor: MonitorStatusLike | None = None
    incidents: Sequence[Any] | None = None  # None: the alerts feature is not wired
    incidents_error: str | None = None
    #: A web process (role web): the monitor runs in a worker, seen through the database.
    worker: WorkerView | None = None


@dataclass(frozen=True)
class WorkerView:
    """The worker's sweeps as a web process sees them: the newest recorded samples."""

    #: When the newest heartbeat samples were taken (None: none in the last hour or more).
    last_recorded_at: datetime | None
    #: Older than this, the worker is not sweeping (three sweep intervals, as /readyz).
    stalled_after_secs: float
    #: False when the backend listed no instance: an empty fleet records no samples.
    expects_samples: bool = True


def _incident_line(incident: Any) -> str:
    for attribute in ("summary", "title", "description"):
        value = getattr(incident, attribute, None)
        if isinstance(value, str) and value:
            return f"• {escape(value)}"
    return f"• {escape(incident)}"


def _worker_line(worker: WorkerView, now: datetime) -> str:
    """The monitor of a web process: in the worker, alive when it recorded samples lately."""
    where = "runs in the worker process (`--role worker`)"
    at = worker.last_recorded_at
    if not worker.expects_samples:
        return f"{where}; the fleet is empty, so no sweep records anything"
    if at is None:
        return f"🔴 {where}, but no sweep recorded anything in the last hour: is it running?"
    age = (now - at).total_seconds()
    ago = f"{duration(max(age, 0))} ago ({date(at, with_date=False)})"
    if age > worker.stalled_after_secs:
        return f"🔴 {where}, last sweep recorded {ago}: is it running?"
    return f"🟢 {where}, last sweep recorded {ago}"


def status_message(view: BotStatusView) -> Reply:
    """Backend reachable, last sweep, leader, open incidents; each with its own emoji."""
    backend = ("🟢 " if view.backend_ok else "🔴 ") + escape(view.backend_detail)
    if not view.database_ok:
        database = "🔴 not answering"
    elif view.database_refusal is not None:
        database = f"🔴 {escape(view.database_refusal[:300])}"
    else:
        database = "🟢 answering"
    fields = [f"*Backend*\n{backend}", f"*Database*\n{database}"]
    m = view.monitor
    if m is None and view.worker is not None:
        fields.append(f"*Monitor*\n{_worker_line(view.worker, view.now)}")
    elif m is None:
        fields.append("*Monitor*\nnot running in this process")
    else:
        if m.last_sweep_at is None:
            sweep = "no sweep yet"
        else:
            ago = duration((view.now - m.last_sweep_at).total_seconds())
            took = f", took {m.last_sweep_secs:.1f} s" if m.last_sweep_secs is not None else ""
            sweep = f"{ago} ago ({date(m.last_sweep_at, with_date=False)}{took})"
        if m.problem:
            sweep += f"\n🔴 not ready: {escape(m.problem[:300])}"
        if m.last_error:
            sweep += f"\n⚠️ {escape(m.last_error[:300])}"
        role = "leader" if m.is_leader else ("standing by" if m.standing_by else "not leading")
        fields += [
            f"*Last sweep*\n{sweep}",
            f"*This replica*\n{role}",
            f"*Tracked*\n{m.instances_tracked} instances, {m.stale_count} stale",
        ]
    blocks: list[Block] = [
        section(f"🤖 *starpod-bot {escape(view.version)}*"),
        fields_section(fields),
    ]
    if view.incidents_error is not None:
        blocks.append(
            section(f"*Open incidents*: could not list them ({escape(view.incidents_error)})")
        )
    elif view.incidents is None:
        blocks.append(context("Incidents arrive with the alerts feature; not available yet."))
    elif not view.incidents:
        blocks.append(section("*Open incidents*: none 🎉"))
    else:
        lines = [_incident_line(i) for i in view.incidents[:10]]
        more = len(view.incidents) - 10
        if more > 0:
            lines.append(f"…and {more} more")
        blocks.append(section(f"*Open incidents* ({len(view.incidents)})\n" + "\n".join(lines)))
    text = f"starpod-bot {view.version}: backend {'up' if view.backend_ok else 'DOWN'}"
    return reply(text, blocks)
