"""Who asks for an action, and from where: what every record of it names.

Every record of an action says the same three things, whatever its source: the cause
(``user`` for a person or a key, ``monitor`` for the auto-restart: the store's check
constraints keep those two), the ``source`` (slack, gateway, incident, monitor, cli) and
the actor; status changes add a reason: ``U123`` with "restart from Slack",
``gateway:ops`` with "restart through the gateway", and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verb(StrEnum):
    """The actions that change an instance."""

    CREATE = "create"
    PAUSE = "pause"
    RESTART = "restart"
    KILL = "kill"


class Source(StrEnum):
    """Where an action was asked for."""

    SLACK = "slack"
    GATEWAY = "gateway"
    INCIDENT = "incident"
    MONITOR = "monitor"
    CLI = "cli"


# How each source reads at the end of a history line ("restart from Slack").
_WHERE = {
    Source.SLACK: "from Slack",
    Source.GATEWAY: "through the gateway",
    Source.INCIDENT: "from the incident message",
    Source.MONITOR: "by the health monitor",
    Source.CLI: "from the command line",
}

# Actor ids are stored in 64 characters (a Slack user id, ``gateway:<key name>``).
ACTOR_MAX = 64


@dataclass(frozen=True, slots=True)
class Actor:
    """The person, key or component behind an action.

    ``id`` is a Slack user id, ``gateway:<key name>``, or None for the monitor.
    """

    source: Source
    id: str | None = None

    @classmethod
    def slack(cls, user_id: str) -> Actor:
        """A Slack user typing a command or clicking a button."""
        return cls(Source.SLACK, user_id)

    @classmethod
    def incident(cls, user_id: str) -> Actor:
        """A Slack user clicking an incident message's button."""
        return cls(Source.INCIDENT, user_id)

    @classmethod
    def gateway(cls, key_actor: str) -> Actor:
        """A gateway caller (``gateway:<key name>``)."""
        return cls(Source.GATEWAY, key_actor)

    @classmethod
    def monitor(cls) -> Actor:
        """The health monitor's auto-restart."""
        return cls(Source.MONITOR, None)

    @property
    def cause(self) -> str:
        """The store's cause for what this actor does: ``monitor`` or ``user``."""
        return "monitor" if self.source is Source.MONITOR else "user"

    @property
    def stored_id(self) -> str | None:
        """The actor id as the store keeps it (at most 64 characters)."""
        return None if self.id is None else self.id[:ACTOR_MAX]

    def reason(self, verb: Verb) -> str:
        """The history line's reason: ``"restart from Slack"``."""
        return f"{verb.value} {_WHERE[self.source]}"
