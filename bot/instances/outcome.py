"""What an action ended as, and the pure rule that says when it has ended.

An entry point presents one of four results and decides nothing itself:

* :class:`Done` — the instance reached the action's end state;
* :class:`Failed` — the backend refused the call (``exc`` set) or the instance entered an
  error status (``status`` is what was observed);
* :class:`Pending` — the backend accepted it and is still working when the wait ended;
* :class:`Busy` — another action on the instance is running (who, what, since when);
  nothing was asked of the backend, and nothing failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.backend.errors import BackendError
from bot.backend.models import Instance
from bot.instances.actor import Actor, Source, Verb

GONE_STATUSES = frozenset({"stopped", "deleted", "terminated"})
FAILED_STATUSES = frozenset({"error"})
# A restarted instance's uptime may start a little before we started counting.
FRESH_UPTIME_SLACK_SECS = 2.0


@dataclass(frozen=True, slots=True)
class Done:
    """The instance reached the end state of ``verb``."""

    verb: Verb
    instance: Instance | None  # None when the backend forgot a killed instance
    status: str  # the raw status last seen ("deleted" when the backend forgot it)
    elapsed: float
    before: Instance | None  # the instance as it was (None for create)


@dataclass(frozen=True, slots=True)
class Failed:
    """The backend refused the action, or the instance ended in an error status."""

    verb: Verb
    instance: Instance | None
    error: str
    elapsed: float
    before: Instance | None
    status: str | None = None  # the observed error status; None when the call was refused
    exc: BackendError | None = None  # the refusal, for entry points that translate it


@dataclass(frozen=True, slots=True)
class Pending:
    """Accepted by the backend, still not at its end state when the wait ended."""

    verb: Verb
    instance: Instance
    status: str
    elapsed: float
    before: Instance | None


@dataclass(frozen=True, slots=True)
class Holder:
    """The action that holds an instance's lease."""

    verb: str
    source: str
    actor: str | None
    since: datetime
    holder: str  # the replica

    @property
    def who(self) -> Actor:
        """The actor holding the lease (an unknown source reads as the monitor's)."""
        try:
            source = Source(self.source)
        except ValueError:
            source = Source.MONITOR
        return Actor(source, self.actor)


@dataclass(frozen=True, slots=True)
class Busy:
    """Another action on the instance is running; this one was not started."""

    verb: Verb
    instance: Instance
    running: Holder
    age_secs: float


ActionResult = Done | Failed | Pending | Busy


def reached(verb: Verb, current: Instance, before: str, elapsed: float) -> bool | None:
    """True when ``verb`` is done, False when it failed, None while still in progress.

    ``before`` is the status when the action started; ``elapsed`` the seconds since.
    """
    status = current.status
    if status in FAILED_STATUSES and verb is not Verb.KILL:
        return False
    if verb is Verb.PAUSE:
        return status == "paused" or None
    if verb is Verb.KILL:
        return status in GONE_STATUSES or None
    if status != "running":
        return None
    if verb is Verb.CREATE or before != "running":
        return True
    # Restarting a running instance: "running" proves nothing, a fresh uptime does.
    health = current.health
    if health is not None:
        return health.uptime_secs <= elapsed + FRESH_UPTIME_SLACK_SECS or None
    return None
