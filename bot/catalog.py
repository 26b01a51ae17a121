"""The `/starpod` subcommands: usage lines, one-line descriptions and the role each needs.

One table, read by the parser (what is valid), the help builder (what to show) and
authorization (who may run it) — in Slack and in the gateway, which grants the same roles
to its keys — so they cannot drift apart. It sits low in the layers (pure data, no
imports) so every entry point can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

COMMAND = "/starpod"


class Role(IntEnum):
    """Roles, ordered: each one includes the ones below it."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The lower-case name users read: ``viewer``, ``operator``, ``admin``."""
        return self.name.lower()

    @property
    def acts(self) -> bool:
        """Whether what needs this role changes an instance (every role above viewer's).

        An action must name its instance exactly: a full id, an exact name or an id
        prefix of at least 4 characters (``bot.backend.refs``); reading takes any
        unique prefix.
        """
        return self > Role.VIEWER


class Subcommand(StrEnum):
    HELP = "help"
    LIST = "list"
    CREATE = "create"
    HEALTH = "health"
    LOGS = "logs"
    SSH = "ssh"
    PAUSE = "pause"
    RESTART = "restart"
    KILL = "kill"
    HISTORY = "history"
    MUTE = "mute"
    UNMUTE = "unmute"
    BUDGET = "budget"
    AUDIT = "audit"
    STATUS = "status"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class Spec:
    """How one subcommand is typed and who may run it."""

    name: Subcommand
    usage: str  # without the leading "/starpod "
    summary: str
    role: Role
    ref: str  # "none", "required" or "optional": the instance argument
    options: tuple[str, ...] = ()
    mutates: bool = False  # announced in the channel

    @property
    def acts(self) -> bool:
        """An action (create, pause, restart, kill, ssh, mute …), not a read."""
        return self.role.acts

    @property
    def usage_line(self) -> str:
        """The full usage line, as users type it."""
        return f"{COMMAND} {self.usage}"


SPECS: dict[Subcommand, Spec] = {
    spec.name: spec
    for spec in (
        Spec(Subcommand.HELP, "help [subcommand]", "what you are reading", Role.VIEWER, "none"),
        Spec(
            Subcommand.LIST,
            "list [--status S] [--region R]",
            "all instances, with a menu per row",
            Role.VIEWER,
            "none",
            ("--status", "--region"),
        ),
        Spec(
            Subcommand.CREATE,
            "create [--name NAME] [--region REGION]",
            "start a new instance",
            Role.OPERATOR,
            "none",
            ("--name", "--region"),
            mutates=True,
        ),
        Spec(
            Subcommand.HEALTH,
            "health <id>",
            "CPU, memory, disk, heartbeat, last hour",
            Role.VIEWER,
            "required",
        ),
        Spec(
            Subcommand.LOGS,
            "logs <id> [--tail N] [--level error|warn|info|debug] [--grep TEXT]",
            "the last N log lines (default 50)",
            Role.VIEWER,
            "required",
            ("--tail", "--level", "--grep"),
        ),
        Spec(
            Subcommand.SSH,
            "ssh <id>",
            "how to connect (only you see it)",
            Role.OPERATOR,
            "required",
        ),
        Spec(
            Subcommand.PAUSE,
            "pause <id>",
            "pause a running instance",
            Role.OPERATOR,
            "required",
            mutates=True,
        ),
        Spec(
            Subcommand.RESTART,
            "restart <id>",
            "restart (or resume) an instance",
            Role.OPERATOR,
            "required",
            mutates=True,
        ),
        Spec(
            Subcommand.KILL,
            "kill <id>",
            "terminate an instance (asks to confirm)",
            Role.ADMIN,
            "required",
            mutates=True,
        ),
        Spec(
            Subcommand.HISTORY,
            "history <id>",
            "latest status changes and why",
            Role.VIEWER,
            "required",
        ),
        Spec(
            Subcommand.MUTE,
            "mute <id> <duration> [--no-restart]",
            "silence alerts, e.g. 30m, 2h, 1d",
            Role.OPERATOR,
            "required",
            ("--no-restart",),
        ),
        Spec(Subcommand.UNMUTE, "unmute <id>", "alerts on again", Role.OPERATOR, "required"),
        Spec(
            Subcommand.BUDGET,
            "budget reset <id>",
            "give an instance its auto-restart budget back",
            Role.OPERATOR,
            "required",
            mutates=True,
        ),
        Spec(Subcommand.AUDIT, "audit [<id>]", "who did what, latest 20", Role.VIEWER, "optional"),
        Spec(
            Subcommand.STATUS,
            "status",
            "the bot itself: backend, last sweep, leader, incidents",
            Role.VIEWER,
            "none",
        ),
        Spec(
            Subcommand.MAINTENANCE,
            "maintenance add <name-glob|all> <start> <duration> [--no-restart] [--reason TEXT]"
            " | list | cancel <id>",
            "planned work: no incidents for matching instances while it runs",
            Role.OPERATOR,
            "none",
            ("--no-restart", "--reason"),
            mutates=True,
        ),
    )
}

# Button and menu actions that are not subcommands, with the role they need.
ACKNOWLEDGE_ROLE = Role.OPERATOR

# Words people type for something we do under another name. Never executed: the answer
# suggests the real subcommand, because guessing "stop" could mean pause or kill.
SYNONYMS: dict[str, tuple[Subcommand, ...]] = {
    "ls": (Subcommand.LIST,),
    "ps": (Subcommand.LIST,),
    "show": (Subcommand.LIST, Subcommand.HEALTH),
    "info": (Subcommand.HEALTH,),
    "log": (Subcommand.LOGS,),
    "tail": (Subcommand.LOGS,),
    "new": (Subcommand.CREATE,),
    "launch": (Subcommand.CREATE,),
    "start": (Subcommand.RESTART, Subcommand.CREATE),
    "resume": (Subcommand.RESTART,),
    "reboot": (Subcommand.RESTART,),
    "stop": (Subcommand.PAUSE, Subcommand.KILL),
    "suspend": (Subcommand.PAUSE,),
    "delete": (Subcommand.KILL,),
    "destroy": (Subcommand.KILL,),
    "terminate": (Subcommand.KILL,),
    "rm": (Subcommand.KILL,),
    "silence": (Subcommand.MUTE,),
    "snooze": (Subcommand.MUTE,),
    "connect": (Subcommand.SSH,),
    "events": (Subcommand.HISTORY,),
    "maint": (Subcommand.MAINTENANCE,),
    "downtime": (Subcommand.MAINTENANCE,),
}

# Spellings that simply mean one subcommand and are safe to run as such.
ALIASES: dict[str, Subcommand] = {
    "-h": Subcommand.HELP,
    "--help": Subcommand.HELP,
    "?": Subcommand.HELP,
}

LOG_LEVELS: tuple[str, ...] = ("error", "warn", "info", "debug")
LEVEL_ALIASES: dict[str, str] = {
    "err": "error",
    "fatal": "error",
    "critical": "error",
    "warning": "warn",
    "trace": "debug",
}

# The statuses of backend-api.md, including the variants of newer backends.
KNOWN_STATUSES: tuple[str, ...] = (
    "creating",
    "running",
    "paused",
    "stopped",
    "error",
    "pending",
    "provisioning",
    "starting",
    "stopping",
    "restarting",
    "deleting",
    "deleted",
)

DEFAULT_TAIL = 50
MAX_TAIL = 10_000
