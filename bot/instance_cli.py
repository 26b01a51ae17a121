"""``starpod-bot instance …``: the seed's terminal CLI for the Starpod backend.

Exit codes (README's table says the same): 0 success; 1 backend error (the message
shows status and body), or a pause/restart that ended in an error status or was still
going when the wait ended; 2 usage or configuration error, including a reference that
names no instance, several, or (for an action) too short an id prefix; 3 a kill declined
at its prompt (nothing was done).

``pause`` and ``restart`` wait until the backend shows the change done (a spinner on a
terminal), then print the status it ended in; ``--no-wait`` prints the backend's first
answer instead. When the change has ended is decided by :mod:`bot.instances.waiting`,
the rule every entry point uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer

from bot.backend import (
    BackendError,
    BackendStatusError,
    HealthInfo,
    Instance,
    InstanceClient,
    InstanceLookupError,
    LogEntry,
    LogLevel,
    SshInfo,
)
from bot.backend.logfollow import FOLLOW_WINDOW, LogFollower
from bot.cli_help import StarpodTyper
from bot.config import Settings, load_settings
from bot.errors import ConfigError, UserError

if TYPE_CHECKING:
    from rich.console import Console

    from bot.instances.waiting import Polled

T = TypeVar("T")

LEVEL_STYLES: dict[LogLevel, str] = {
    LogLevel.ERROR: "red",
    LogLevel.WARN: "yellow",
    LogLevel.INFO: "green",
    LogLevel.DEBUG: "dim",
}

EXIT_BACKEND = 1
EXIT_USAGE = 2
EXIT_DECLINED = 3

# How long pause and restart wait for the change by default, and how often they look.
DEFAULT_WAIT_SECS = 120.0
POLL_INTERVAL_SECS = 0.5

instance_app = StarpodTyper(
    help="Manage Starpod instances from the terminal.", no_args_is_help=True
)


# rich is imported when a command prints, not with this module: `starpod-bot run` imports
# the CLI and never prints a table (4 MB of modules it would keep for nothing).
@functools.cache
def out() -> Console:
    """The terminal (stdout)."""
    from rich.console import Console

    return Console(highlight=False)


@functools.cache
def err() -> Console:
    """The terminal's stderr."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


IdArg = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="Instance id, exact name, or unique id prefix (at least 4 characters to act).",
        show_default=False,
    ),
]
NoWaitOpt = Annotated[
    bool,
    typer.Option("--no-wait", help="Return once the backend accepted it; print its first answer."),
]
WaitSecsOpt = Annotated[
    float,
    typer.Option("--wait-secs", min=1.0, help="Give up waiting after this many seconds."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    from rich.text import Text

    err().print(Text(f"error: {message}", style="bold red"), soft_wrap=True)
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = load_settings()
        settings.require_backend_url()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    return settings


def _client(settings: Settings) -> InstanceClient:
    key = settings.backend.api_key.get_secret_value() if settings.backend.api_key else None
    return InstanceClient(
        settings.require_backend_url(), key, timeout=settings.backend.timeout_secs
    )


def run_backend(action: Callable[[InstanceClient], Awaitable[T]]) -> T:
    """Run ``action`` with a client built from settings; map errors to exit codes."""
    settings = _settings()

    async def main() -> T:
        async with _client(settings) as client:
            return await action(client)

    try:
        return asyncio.run(main())
    except (InstanceLookupError, UserError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None  # what was typed, not the backend
    except BackendError as exc:
        raise fail(str(exc), EXIT_BACKEND) from None
    except ValueError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def _age(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    return human_duration((now - when).total_seconds())


def human_duration(seconds: float) -> str:
    """3725 → ``1h 2m``; short and readable at a glance."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def _instance_json(instance: Instance) -> dict[str, Any]:
    return instance.model_dump(mode="json", by_alias=True)


def heading(text: str) -> None:
    """A bold heading line above a table: wrapped at the terminal's width, never the table's."""
    from rich.text import Text

    out().print(Text(text, style="bold"), soft_wrap=True)


@instance_app.command("create")
def create(
    name: Annotated[str | None, typer.Option("--name", "-n", help="Instance name.")] = None,
    region: Annotated[str | None, typer.Option("--region", "-r", help="Region.")] = None,
) -> None:
    """Create a new instance."""
    instance = run_backend(lambda c: c.create_instance(name=name, region=region))
    # The name once and the full id once (the label would repeat the id's first 8 characters).
    named = f"{instance.name} " if instance.name else ""
    out().print(f"Created {named}with id {instance.id}: status {instance.status}")


@instance_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List all instances."""
    from rich.table import Table
    from rich.text import Text

    instances = run_backend(lambda c: c.list_instances())
    if as_json:
        out().print_json(json.dumps([_instance_json(i) for i in instances]))
        return
    now = datetime.now(UTC)
    heading(f"{len(instances)} instances")
    table = Table()
    for column in ("NAME", "ID", "STATUS", "REGION", "AGE"):
        table.add_column(column)
    for instance in sorted(instances, key=lambda i: (i.name or "", i.id)):
        table.add_row(
            Text(instance.name or "-"),
            instance.short_id,
            Text(instance.status, style="green" if instance.is_running else "yellow"),
            Text(instance.region or "-"),
            _age(instance.created_at, now),
        )
    out().print(table)


@instance_app.command("kill")
def kill(
    ref: IdArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    no_wait: NoWaitOpt = False,
    wait_secs: WaitSecsOpt = DEFAULT_WAIT_SECS,
) -> None:
    """Terminate an instance (asks for confirmation unless --yes); wait until it is gone."""

    async def action(client: InstanceClient) -> Instance:
        return await client.resolve(ref, acting=True)

    instance = run_backend(action)
    if not yes:
        if not sys.stdin.isatty():
            raise fail(
                f"refusing to kill {instance.label} without confirmation: pass --yes", EXIT_USAGE
            )
        if not typer.confirm(f"Kill {instance.label}? This cannot be undone", default=False):
            # The user's answer, not an error: a plain line and its own exit code.
            out().print(f"Not killed: {instance.label} is unchanged.")
            raise typer.Exit(EXIT_DECLINED)
    _change("kill", instance, None if no_wait else wait_secs)


@instance_app.command("pause")
def pause(
    ref: IdArg, no_wait: NoWaitOpt = False, wait_secs: WaitSecsOpt = DEFAULT_WAIT_SECS
) -> None:
    """Suspend an instance; wait until it is paused and print its new status."""
    _change("pause", ref, None if no_wait else wait_secs)


@instance_app.command("restart")
def restart(
    ref: IdArg, no_wait: NoWaitOpt = False, wait_secs: WaitSecsOpt = DEFAULT_WAIT_SECS
) -> None:
    """Resume a paused instance, or restart a running one; wait and print its new status."""
    _change("restart", ref, None if no_wait else wait_secs)


Change = Literal["pause", "restart", "kill"]
_WORDS: dict[Change, tuple[str, str]] = {
    "pause": ("Pausing", "Paused"),
    "restart": ("Restarting", "Restarted"),
    "kill": ("Killing", "Killed"),
}


async def _ask(client: InstanceClient, verb: Change, instance: Instance) -> Instance | None:
    """The backend call of ``verb``; its answer (None when it sent no body, and for a kill)."""
    if verb == "pause":
        return await client.pause_instance(instance.id)
    if verb == "restart":
        return await client.restart_instance(instance.id)
    await client.kill_instance(instance.id)
    return None


def _change(verb: Change, target: str | Instance, wait_secs: float | None) -> None:
    """Ask for ``verb``, follow it to its end unless ``wait_secs`` is None, print the outcome."""
    # Imported here: bot.instances brings the store (SQLAlchemy), which the other commands
    # do not need to load.
    from bot.instances.actor import Verb
    from bot.instances.waiting import Polled, poll_until_settled

    going, done = _WORDS[verb]
    asked = verb

    async def action(client: InstanceClient) -> tuple[Instance, Polled]:
        if isinstance(target, Instance):
            instance = target
        else:
            instance = await client.resolve(target, acting=True)
        started = asyncio.get_running_loop().time()
        answer = await _ask(client, verb, instance)
        if wait_secs is None:
            if verb == "kill":  # accepted; a status now would be the old one
                return instance, Polled("pending", "", instance)
            current = answer or await client.get_instance(instance.id)
            return instance, Polled("pending", current.status_raw, current)
        with _spinner(f"{going} {instance.label}…"):
            polled = await poll_until_settled(
                client,
                Verb(verb),
                instance,
                instance.status_raw,
                started=started,
                interval=POLL_INTERVAL_SECS,
                give_up_after=wait_secs,
            )
        return instance, polled

    instance, polled = run_backend(action)
    label = (polled.instance or instance).label
    status = f": status [bold]{polled.status}[/bold]" if polled.status else ""
    if polled.state == "done":
        out().print(f"{done} {label}{status}")
    elif wait_secs is None:
        out().print(f"Asked to {asked} {label}{status} (not waiting: --no-wait)")
    elif polled.state == "failed":
        raise fail(f"could not {asked} {label}: it ended in status {polled.status}", EXIT_BACKEND)
    else:
        raise fail(
            f"the {asked} of {label} is not done after {wait_secs:g} s "
            f"(status {polled.status}); see: starpod-bot instance health {instance.short_id}",
            EXIT_BACKEND,
        )


def _spinner(message: str) -> contextlib.AbstractContextManager[Any]:
    """A spinner on stderr while waiting, on a terminal only (no escape codes in pipes)."""
    if not err().is_terminal:
        return contextlib.nullcontext()
    return err().status(message)


@instance_app.command("logs")
def logs(
    ref: IdArg,
    tail: Annotated[
        int, typer.Option("--tail", "-t", min=1, max=100_000, help="How many lines.")
    ] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, max=300.0, help="Seconds between polls.")
    ] = 2.0,
) -> None:
    """Print the last N log lines, colored by level (bounded: see README); --follow polls."""
    from rich.text import Text

    if follow:
        raise typer.Exit(follow_logs(ref, tail=tail, interval=interval))

    async def action(client: InstanceClient) -> int:
        instance = await client.resolve(ref, acting=False)
        fetched = await client.tail_logs(instance.id, tail=tail)
        for entry in fetched.entries:
            print_log_entry(entry)
        if fetched.truncated is not None:
            err().print(Text(fetched.truncated, style="yellow"))
        return len(fetched.entries)

    run_backend(action)


def print_log_entry(entry: LogEntry) -> None:
    """One log line: time, level (colored), message."""
    from rich.text import Text

    stamp = entry.timestamp.strftime("%Y-%m-%d %H:%M:%S") if entry.timestamp else ""
    line = Text()
    if stamp:
        line.append(stamp + " ", style="dim")
    line.append(f"{entry.level.value.upper():<5} ", style=LEVEL_STYLES[entry.level])
    line.append(entry.message)
    out().print(line, soft_wrap=True)


def follow_logs(ref: str, *, tail: int, interval: float) -> int:
    """``logs --follow``: the last ``tail`` lines, then every new line once, until Ctrl-C
    (exit 130). The backend has no cursor: each poll reads the last lines again and
    :class:`~bot.backend.logfollow.LogFollower` keeps only the new ones. A backend that
    fails for a while is said once on stderr and polled on; an instance gone is exit 1."""
    from rich.text import Text

    settings = _settings()

    async def main() -> None:
        follower = LogFollower(max(tail, FOLLOW_WINDOW))
        async with _client(settings) as client:
            instance = await client.resolve(ref, acting=False)
            first = await client.tail_logs(instance.id, tail=tail)
            for entry in follower.take(first.entries).entries:
                print_log_entry(entry)
            failing = False
            while True:
                await asyncio.sleep(interval)
                try:
                    fetched = await client.tail_logs(instance.id, tail=follower.window)
                except BackendStatusError as exc:
                    if exc.status_code in (404, 410):
                        raise  # the instance is gone: nothing more will come
                    if not failing:
                        err().print(Text(f"warning: {exc}; still trying", style="yellow"))
                    failing = True
                    continue
                except BackendError as exc:
                    if not failing:
                        err().print(Text(f"warning: {exc}; still trying", style="yellow"))
                    failing = True
                    continue
                if failing:
                    err().print(Text("the backend answers again", style="green"))
                    failing = False
                fresh = follower.take(fetched.entries)
                if fresh.gap:
                    err().print(
                        Text(
                            f"warning: more than {follower.window} lines since the last poll; "
                            "some are not shown",
                            style="yellow",
                        )
                    )
                for entry in fresh.entries:
                    print_log_entry(entry)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    except (InstanceLookupError, UserError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None  # what was typed, as in run_backend
    except BackendError as exc:
        raise fail(str(exc), EXIT_BACKEND) from None
    except ValueError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    return 0


def health_json(instance: Instance, health: HealthInfo, now: datetime) -> dict[str, Any]:
    return {
        "id": instance.id,
        "name": instance.name,
        "status": instance.status,
        **health.model_dump(mode="json"),
        "heartbeat_age_secs": round(health.heartbeat_age(now), 1),
    }


@instance_app.command("health")
def health(ref: IdArg, as_json: JsonOpt = False) -> None:
    """Show CPU, memory, disk, uptime and heartbeat age."""
    from rich.table import Table
    from rich.text import Text

    async def action(client: InstanceClient) -> tuple[Instance, HealthInfo]:
        instance = await client.resolve(ref, acting=False)
        return instance, await client.get_health(instance.id)

    instance, info = run_backend(action)
    now = datetime.now(UTC)
    if as_json:
        out().print_json(json.dumps(health_json(instance, info, now)))
        return
    settings = _settings()
    age = info.heartbeat_age(now)
    stale = age > settings.monitor.heartbeat_timeout_secs
    heading(f"{instance.label}: {instance.status}")
    table = Table()
    table.add_column("METRIC")
    table.add_column("VALUE", justify="right")
    table.add_row("CPU", f"{info.cpu_percent:.1f} %")
    table.add_row("Memory", f"{info.memory_mb:,} MB")
    table.add_row("Disk", f"{info.disk_mb:,} MB")
    table.add_row("Uptime", human_duration(info.uptime_secs))
    table.add_row(
        "Heartbeat",
        Text(
            f"{human_duration(age)} ago" + (" (STALE)" if stale else ""),
            style="bold red" if stale else "green",
        ),
    )
    out().print(table)


@contextlib.contextmanager
def ephemeral_key_file(private_key: str | None) -> Iterator[Path | None]:
    """Write the ephemeral key to a 0600 file and remove it on every exit path."""
    if not private_key:
        yield None
        return
    fd, name = tempfile.mkstemp(prefix="starpod-ssh-", suffix=".key")
    path = Path(name)
    try:
        # mkstemp creates the file 0600 already; chmod again so a umask quirk cannot widen it.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(private_key if private_key.endswith("\n") else private_key + "\n")
        yield path
    finally:
        path.unlink(missing_ok=True)


def ssh_argv(info: SshInfo, key_file: Path | None) -> list[str]:
    """The native ssh command line for ``info``."""
    argv = ["ssh"]
    if key_file is not None:
        argv += ["-i", str(key_file), "-o", "IdentitiesOnly=yes"]
    argv += ["-p", str(info.port), f"{info.user}@{info.host}"]
    return argv


@instance_app.command("ssh")
def ssh(ref: IdArg) -> None:
    """Open an SSH session with the connection info (and ephemeral key) from the backend."""

    async def action(client: InstanceClient) -> SshInfo:
        return await client.get_ssh_info((await client.resolve(ref, acting=True)).id)

    info = run_backend(action)
    if shutil.which("ssh") is None:
        raise fail("no ssh executable on PATH", EXIT_USAGE)
    # SIGTERM would kill us without running finally blocks; turn it into an exception.
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with ephemeral_key_file(info.private_key) as key_file:
            try:
                code = subprocess.call(ssh_argv(info, key_file))
            except KeyboardInterrupt:
                code = 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
