"""Following a log through a backend that only answers "the last N lines" (no cursor).

Each poll asks for the last lines again; :class:`LogFollower` says which of them are new,
so ``starpod-bot instance logs --follow`` prints every line once:

- With timestamps (what backends send), a line is new when it is later than the last one
  printed; lines sharing that last timestamp are told apart by their count (the first ones
  of that second were printed, the rest are new).
- Without timestamps (or when they go backwards), the lines already printed are found as
  the longest run at the start of the answer that continues what was printed; the match
  nearest the end wins, so a repeated line is never printed twice (it may be missed).

A poll whose every line is new, in an answer as long as the window, may have missed lines
in between (more arrived between two polls than the window holds): ``gap`` says so.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from bot.backend.models import LogEntry

FOLLOW_WINDOW = 500

_Key = tuple[datetime | None, str, str]


def _key(entry: LogEntry) -> _Key:
    return (entry.timestamp, entry.level.value, entry.message)


@dataclass(frozen=True, slots=True)
class Fresh:
    """The new entries of one poll, oldest first; ``gap``: lines may be missing before them."""

    entries: list[LogEntry]
    gap: bool = False


class LogFollower:
    """Remembers the last ``window`` lines printed; :meth:`take` returns only new ones."""

    def __init__(self, window: int = FOLLOW_WINDOW) -> None:
        self.window = window
        self._seen: deque[_Key] = deque(maxlen=window)

    def take(self, fetched: Sequence[LogEntry]) -> Fresh:
        """The entries of ``fetched`` (one poll's answer, oldest first) not taken before."""
        keys = [_key(e) for e in fetched]
        start = self._new_from(keys)
        gap = bool(self._seen) and start == 0 and len(keys) >= self.window
        self._seen.extend(keys[start:])
        return Fresh(list(fetched[start:]), gap)

    def _new_from(self, keys: list[_Key]) -> int:
        if not self._seen or not keys:
            return 0
        if _timed(keys) and _timed(self._seen):
            return self._after_last_time(keys)
        return self._after_overlap(keys)

    def _after_last_time(self, keys: list[_Key]) -> int:
        last = self._seen[-1][0]
        assert last is not None
        printed_at_last = 0
        for key in reversed(self._seen):
            if key[0] != last:
                break
            printed_at_last += 1
        same = 0
        for index, key in enumerate(keys):
            stamp = key[0]
            assert stamp is not None
            if stamp > last:
                return index
            if stamp == last:
                same += 1
                if same > printed_at_last:
                    return index
        return len(keys)

    def _after_overlap(self, keys: list[_Key]) -> int:
        seen = list(self._seen)
        for end in range(len(keys), 0, -1):
            run = min(end, len(seen))
            if keys[end - run : end] == seen[-run:]:
                return end
        return 0


def _timed(keys: Sequence[_Key]) -> bool:
    stamps = [k[0] for k in keys if k[0] is not None]
    return len(stamps) == len(keys) and all(a <= b for a, b in pairwise(stamps))
