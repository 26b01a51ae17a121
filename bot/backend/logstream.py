"""Reading a log stream that the backend controls, in bounded memory and linear time.

A backend may ignore ``?tail=``, send a line of 200 MB with no newline, or never stop.
:func:`iter_log_lines` splits bytes into lines as they arrive, scanning each byte once and
cutting any line at :data:`MAX_LINE_BYTES`; :class:`ByteBudget` stops a stream after a
number of bytes; :class:`LogTail` is what a bounded read returns, saying what was cut.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bot.backend.models import LogEntry

MAX_LINE_BYTES = 16 * 1024
CUT_NOTE = " … [line cut at 16 KiB]"


@dataclass(frozen=True)
class LogLine:
    """One line's bytes (without its newline); ``cut`` when it was longer than the cap."""

    text: bytes
    cut: bool = False


async def iter_log_lines(
    chunks: AsyncIterator[bytes], *, max_line: int = MAX_LINE_BYTES
) -> AsyncIterator[LogLine]:
    """Lines of ``chunks`` as they complete; the last one even without a newline."""
    pending = bytearray()
    cut = False
    async for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            stop = len(chunk) if end < 0 else end
            take = min(stop - start, max_line - len(pending))
            if take < stop - start:
                cut = True  # only what fits is copied: a huge line costs no memory
            pending += chunk[start : start + take]
            if end < 0:
                break
            yield LogLine(bytes(pending), cut)
            pending.clear()
            cut = False
            start = end + 1
    if pending or cut:
        yield LogLine(bytes(pending), cut)


def mark_cut(entry: LogEntry) -> LogEntry:
    """The entry of a line that was cut, saying so at its end."""
    return entry.model_copy(update={"message": entry.message + CUT_NOTE})


@dataclass
class ByteBudget:
    """Passes chunks through until ``limit`` bytes have gone by, then ends the stream."""

    limit: int
    used: int = 0
    exhausted: bool = False

    async def take(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks``, stopping (and marking ``exhausted``) at the limit."""
        async for chunk in chunks:
            room = self.limit - self.used
            if len(chunk) > room:
                self.used = self.limit
                self.exhausted = True
                if room > 0:
                    # Up to the last newline that fits: a half line would read as a whole one.
                    last = chunk.rfind(b"\n", 0, room)
                    if last >= 0:
                        yield chunk[: last + 1]
                return
            self.used += len(chunk)
            yield chunk


@dataclass(frozen=True)
class LogTail:
    """The last entries of a bounded read; ``stopped`` says why reading ended early."""

    entries: list[LogEntry] = field(default_factory=list)
    received: int = 0
    stopped: str | None = None

    @property
    def truncated(self) -> str | None:
        """A note for the reader when the backend's answer was not read to its end."""
        if self.stopped is None:
            return None
        return f"Stopped reading: {self.stopped}; showing the last lines received."
