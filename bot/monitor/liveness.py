"""Is the monitor doing its job? The answer ``/readyz``, ``/starpod status`` and metrics share.

A scheduled monitor is live when, within the last :data:`STALL_INTERVALS` intervals, it
either completed a sweep (as the leader) or completed an election round that left it
standing by, and when the last election could be decided at all. A sweep held by
something the sweep's own deadlines do not cover, a scheduler that stopped firing, or a
database that cannot run the election: each makes the monitor "not live", with a reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta

STALL_INTERVALS = 3


def liveness_problem(
    *,
    now: datetime,
    interval: timedelta,
    started_at: datetime | None,
    is_leader: bool,
    last_sweep_at: datetime | None,
    last_round_at: datetime | None,
    election_error: str | None,
) -> str | None:
    """Why the monitor is not live, or None when it is.

    ``started_at`` is when the sweep was scheduled (None: never; nothing to expect);
    ``last_sweep_at`` the last completed sweep as the leader; ``last_round_at`` the last
    election round that decided (leading or standing by).
    """
    if election_error is not None:
        return f"leadership cannot be decided: {election_error}"
    if started_at is None:
        return None
    limit = interval * STALL_INTERVALS
    if is_leader:
        since, what = last_sweep_at, "completed sweep"
    else:
        since, what = last_round_at, "leader election"
    since = max(since, started_at) if since is not None else started_at
    age = now - since
    if age > limit:
        secs = interval.total_seconds()
        return (
            f"stalled: no {what} for {age.total_seconds():.0f} s "
            f"(more than {STALL_INTERVALS} intervals of {secs:g} s)"
        )
    return None
