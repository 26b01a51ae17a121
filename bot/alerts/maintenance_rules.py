"""What a maintenance window may say: its target, its start, its length; and who it covers.

No I/O and no clock of its own: the `/starpod maintenance` parser checks the text with
these rules, and :mod:`bot.alerts.maintenance` decides with :func:`covers` which instances a
window holds, so a glob means the same thing when it is typed and when it is applied.
Every problem comes back as one line to show the user.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from bot.store.maintenance_models import MAX_REASON, MAX_TARGET

__all__ = ["ALL", "MAX_REASON", "MAX_TARGET", "Start", "check_start", "check_target", "covers"]

ALL = "all"
MIN_LENGTH = timedelta(minutes=1)
MAX_LENGTH = timedelta(days=7)
# A window planned further ahead than this is almost certainly a typo in the date.
MAX_LEAD = timedelta(days=90)
# A start typed as "14:05" at 14:05:30 is "now", not tomorrow.
PAST_GRACE = timedelta(minutes=1)

_GLOB_CHARS = re.compile(r"^[A-Za-z0-9._*?\[\]!-]+$")
_RELATIVE = re.compile(r"^\+\s*(\d{1,5})\s*(m|min|h|d)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_UNIT_SECS = {"m": 60, "min": 60, "h": 3600, "d": 86400}
START_HELP = "use `now`, `+30m`, `14:00` (UTC, the next one) or `2026-12-01T14:00Z`"


@dataclass(frozen=True, slots=True)
class Start:
    """A start as typed: ``after`` from the moment of the command, the next ``clock`` time
    of day (UTC), or an absolute ``at``. Exactly one is set."""

    after: timedelta | None = None
    clock: time | None = None
    at: datetime | None = None

    def resolve(self, now: datetime) -> datetime:
        """The aware UTC moment this start names, for a command run at ``now``."""
        if self.after is not None:
            return now + self.after
        if self.clock is not None:
            today = datetime.combine(now.date(), self.clock, tzinfo=UTC)
            return today if today >= now - PAST_GRACE else today + timedelta(days=1)
        assert self.at is not None
        return self.at


def check_target(text: str) -> str:
    """The target as stored (``all``, or the glob), or raise ValueError with the problem."""
    target = text.strip()
    if target.lower() == ALL:
        return ALL
    shown = target if len(target) <= 40 else target[:39] + "…"
    if len(target) > MAX_TARGET:
        raise ValueError(f"A name glob is at most {MAX_TARGET} characters.")
    if not _GLOB_CHARS.match(target):
        raise ValueError(
            f"`{_plain(shown)}` is not a name glob: use letters, digits, `- _ .` and the "
            "wildcards `* ? [...]`, e.g. `web-*`, or `all`."
        )
    depth = 0
    for char in target:
        if char == "[":
            if depth:
                raise ValueError(f"`{shown}` nests `[`: close the first one with `]`.")
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        raise ValueError(f"`{shown}` opens `[` and never closes it, e.g. `web-[12]`.")
    return target


def parse_start(text: str) -> Start:
    """``now``, ``+30m``, ``14:00`` or an ISO date-time (UTC unless it says otherwise)."""
    raw = text.strip()
    folded = raw.lower()
    shown = _plain(raw if len(raw) <= 40 else raw[:39] + "…")
    if folded == "now":
        return Start(after=timedelta(0))
    relative = _RELATIVE.match(folded)
    if relative:
        return Start(
            after=timedelta(seconds=int(relative.group(1)) * _UNIT_SECS[relative.group(2)])
        )
    clock = _CLOCK.match(folded)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"`{shown}` is not a time of day: {START_HELP}.")
        return Start(clock=time(hour, minute))
    try:
        at = datetime.fromisoformat(raw.replace(" ", "T", 1) if " " in raw else raw)
    except ValueError:
        raise ValueError(f"`{shown}` is not a start time: {START_HELP}.") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return Start(at=at.astimezone(UTC))


def check_start(starts_at: datetime, now: datetime) -> None:
    """Raise ValueError when a resolved start is in the past or too far ahead."""
    if starts_at < now - PAST_GRACE:
        raise ValueError(
            f"That start ({starts_at:%Y-%m-%d %H:%M} UTC) is in the past: use `now` to start "
            "the window at once."
        )
    if starts_at > now + MAX_LEAD:
        raise ValueError(f"Plan windows at most {MAX_LEAD.days} days ahead.")


def covers(target: str, instance_id: str, name: str | None) -> bool:
    """True when a window on ``target`` holds this instance (its name, case-insensitive,
    matches the glob; or the glob is the instance's id)."""
    if target == ALL:
        return True
    pattern = target.lower()
    if name and fnmatch.fnmatchcase(name.lower(), pattern):
        return True
    return instance_id.lower() == pattern


def _plain(text: str) -> str:
    # Echoed inside `code`: a backtick would end the span early.
    return " ".join(text.split()).replace("`", "'")
