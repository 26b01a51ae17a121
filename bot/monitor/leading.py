"""Which replica sweeps: the monitor's side of a :class:`~bot.store.leader.Leadership`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from bot.store.errors import StoreUnwritable

if TYPE_CHECKING:
    from bot.store.leader import Leadership

log = logging.getLogger(__name__)


class LeaderGate:
    """Asks the leadership before each sweep and each batch of restarts.

    Without a leadership (None) this replica always leads. ``on_gain`` runs when this
    replica takes over: what memory says may be out of date, another replica acted.
    """

    def __init__(
        self,
        leadership: Leadership | None,
        *,
        on_gain: Callable[[], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.leadership = leadership
        self._on_gain = on_gain
        self._clock = clock
        self._tried = False
        #: Why the last election could not be decided (the leadership raised), or None.
        self.election_error: str | None = None
        #: When an election round last decided (leading or not): liveness of a standby.
        self.decided_at: datetime | None = None

    @property
    def is_leader(self) -> bool:
        """True when this replica sweeps (always, without a leadership)."""
        return self.leadership is None or self.leadership.is_leader

    @property
    def standing_by(self) -> bool:
        """True when this replica tried to lead and another one does."""
        return self.leadership is not None and self._tried and not self.leadership.is_leader

    async def lead(self) -> bool:
        """May this replica sweep now? Raises the leadership's refusal (SQLite held elsewhere)."""
        lead = self.leadership
        at = self._clock()
        if lead is None:
            self.decided_at = at
            return True
        was_leader = lead.is_leader
        self._tried = True
        try:
            leading = await lead.acquire()
        except Exception as exc:  # cannot tell: do not act as the leader this round
            if isinstance(exc, StoreUnwritable):
                # Logged once per episode by the database's WriteHealth, not every round.
                log.debug("leader election failed (%s); standing by", exc)
            else:
                log.warning("leader election failed (%s); standing by", exc)
            self.election_error = f"{type(exc).__name__}: {exc}"
            return False
        self.election_error, self.decided_at = None, at
        if leading and not was_leader:
            log.info("health monitor: this replica now leads the sweeps")
            self._on_gain()
        elif was_leader and not leading:
            log.warning("health monitor: lost the leadership; standing by")
        refusal = getattr(lead, "refusal", None)
        if not leading and callable(refusal):
            raise refusal()
        return leading

    async def may_restart(self, count: int) -> bool:
        """Still the leader? Checked again right before restarting ``count`` instances."""
        if self.leadership is not None and not await self.leadership.check():
            # Leadership lost since the sweep began: another replica may restart them.
            log.warning("lost the leadership before restarting %d instances; skipping", count)
            return False
        return True

    async def step_down(self) -> None:
        """Release the lock or lease if this replica holds it (it frees itself otherwise)."""
        if self.leadership is not None and self.leadership.is_leader:
            try:
                await self.leadership.release()
            except Exception as exc:
                log.warning("could not release the leadership: %s", exc)
