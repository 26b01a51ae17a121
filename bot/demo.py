"""``starpod-bot demo``: the whole product on one machine, no accounts.

One command supervises three parts:

1. the Starpod backend simulator, seeded with a handful of instances, two of which stop their
   heartbeat about a minute in: one the bot's auto-restart heals, one it cannot (the story
   is in :mod:`bot.demo_story`);
2. the Slack emulator with the browser playground (``http://127.0.0.1:3000/``);
3. the bot itself, as a child process running ``starpod-bot run`` in HTTP mode on its own port
   and a local SQLite file, pointed at both: the production path, not a shortcut (its parts
   come from :func:`bot.wiring.build`, as in production and in the runtime tests).

With ``--socket-mode`` the bot runs in Socket Mode instead (``SLACK_APP_TOKEN``, no signing
secret): it opens a WebSocket to the emulator, and the playground (unchanged) hands each
command and click to the emulator's socket rather than posting to the bot's URL.

The parent owns the child: the child runs in its own session (a terminal's Ctrl-C reaches only
the parent), and the parent stops it with SIGTERM, then SIGKILL after a grace period. If the bot
dies on its own, the demo prints why (its exit code and last lines) and stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.blockkit.ids import CallbackId
from bot.demo_story import RESTART_BUDGET, Story, StoryInstance, monitor_toml, story_notes
from bot.errors import StarpodBotError
from bot.sim.backend import BackendSimulator
from bot.sim.playground import CommandHint, Playground, PlaygroundUser
from bot.sim.playground_views import ShortcutHint
from bot.sim.process import free_port
from bot.sim.slack import VIA_SOCKET, SlackEmulator

ALERT_CHANNEL = "C0ALERTS"
OPS_CHANNEL = "C0OPS"
ONCALL_GROUP = "S0ONCALL"
ONCALL_MENTION = f"<!subteam^{ONCALL_GROUP}|@oncall>"
USERS = (
    PlaygroundUser("U0OPERATOR", "operator", "operator"),
    PlaygroundUser("U0VIEWER", "viewer", "viewer"),
    PlaygroundUser("U0ADMIN", "admin", "admin"),
)
STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 60.0
# Settings of the developer's shell that must not leak into the demo's bot.
_DROPPED_ENV = ("SLACK_APP_TOKEN", "STARPOD_CONFIG", "STARPOD_GATEWAY_KEYS", "ANTHROPIC_API_KEY")

Echo = Callable[[str], None]


class DemoError(StarpodBotError):
    """The demo could not start (a port in use, the bot never became ready …)."""


@dataclass(frozen=True)
class DemoOptions:
    """What ``starpod-bot demo`` runs; the defaults are the newcomer's minute-long story."""

    port: int = 3000  # Slack emulator + playground; 0 picks a free port
    bot_port: int = 3001  # the bot's own web server; 0 picks a free port
    host: str = "127.0.0.1"
    instances: int = 6
    stall_after: float = 60.0
    monitor_interval: float = 5.0
    heartbeat_timeout: float = 15.0
    transition_secs: float = 2.0
    database: Path | None = None  # None: a temporary file, removed at the end
    duration: float | None = None  # None: until Ctrl-C
    bot_log_level: str = "WARNING"
    seed: int = 0
    socket_mode: bool = False  # the bot connects to the emulator's socket (no public URL)


@dataclass
class _Running:
    """What the demo started, for the banner and for stopping it in reverse."""

    backend: BackendSimulator
    slack: SlackEmulator
    story: Story
    bot_url: str
    database_url: str


#: The app's shortcuts, as app-manifest.yml declares them (tests/test_manifest.py checks).
SHORTCUTS = (
    ShortcutHint("Act on an instance", "global", CallbackId.ACT_SHORTCUT),
    ShortcutHint("Incident actions", "message", CallbackId.INCIDENT_SHORTCUT),
)


def command_hints() -> tuple[CommandHint, ...]:
    """The composer's suggestions: every ``/starpod`` subcommand, from the bot's own catalog."""
    from bot.catalog import SPECS

    return tuple(CommandHint(spec.usage, spec.summary) for spec in SPECS.values())


def bot_command() -> list[str]:
    """``starpod-bot run``: the installed console script, else the same through ``-m bot``."""
    script = Path(sys.executable).with_name("starpod-bot")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), "run"]
    return [sys.executable, "-m", "bot", "run"]


def bot_environment(
    options: DemoOptions,
    *,
    backend_url: str,
    slack: SlackEmulator,
    bot_port: int,
    database_url: str,
    config_file: Path,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of ``starpod-bot run``: every setting points at the demo's parts."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _DROPPED_ENV}
    slack_mode = (
        {"SLACK_APP_TOKEN": slack.app_token}
        if options.socket_mode
        else {"SLACK_SIGNING_SECRET": slack.signing_secret}
    )
    env.pop("SLACK_SIGNING_SECRET", None)
    env.update(
        slack_mode
        | {
            "STARPOD_CONFIG": str(config_file),
            "STARPOD_INSTANCE_BACKEND_URL": backend_url,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_URL": database_url,
            "PORT": str(bot_port),
            "STARPOD_HTTP_HOST": options.host,
            "STARPOD_PUBLIC_URL": f"http://{options.host}:{bot_port}",
            "STARPOD_ALERT_CHANNEL": ALERT_CHANNEL,
            "STARPOD_ALERT_MENTION": ONCALL_MENTION,
            "STARPOD_MONITOR_INTERVAL": _number(options.monitor_interval),
            "STARPOD_HEARTBEAT_TIMEOUT": _number(options.heartbeat_timeout),
            "STARPOD_ACCESS_ADMINS": "U0ADMIN",
            "STARPOD_ACCESS_OPERATORS": "U0OPERATOR",
            "STARPOD_ACCESS_VIEWERS": "U0VIEWER",
            "LOG_LEVEL": options.bot_log_level,
            "LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_port_free(host: str, port: int, flag: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise DemoError(
                f"port {port} on {host} is in use; choose another with {flag}"
            ) from None


async def run_demo(options: DemoOptions, *, echo: Echo = print) -> int:
    """Run the demo until Ctrl-C/SIGTERM, ``duration`` or the bot's death; the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workdir = tempfile.TemporaryDirectory(prefix="starpod-demo-")
    try:
        return await _run(options, stop, Path(workdir.name), echo)
    except DemoError as exc:
        echo(f"demo: {exc}")
        return 2
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        workdir.cleanup()


async def _run(options: DemoOptions, stop: asyncio.Event, workdir: Path, echo: Echo) -> int:
    bot_port = options.bot_port or free_port(options.host)
    _check_port_free(options.host, bot_port, "--bot-port")
    if options.port:
        _check_port_free(options.host, options.port, "--port")
    database = options.database or workdir / "starpod-demo.db"
    database_url = f"sqlite:///{database.resolve()}"

    config_file = workdir / "starpod-demo.toml"
    config_file.write_text(
        monitor_toml(options.monitor_interval, options.heartbeat_timeout), encoding="utf-8"
    )

    backend = BackendSimulator(seed=options.seed, transition_secs=options.transition_secs)
    story = _set_the_stage(backend, options)
    await backend.start(options.host, 0)
    slack = SlackEmulator()
    slack.add_usergroup(ONCALL_GROUP, ["U0OPERATOR"])
    running = _Running(
        backend=backend,
        slack=slack,
        story=story,
        bot_url=f"http://{options.host}:{bot_port}",
        database_url=database_url,
    )
    playground = Playground(
        emulator=slack,
        # In Socket Mode "Slack" hands commands and clicks to the bot's socket.
        bot_url=VIA_SOCKET if options.socket_mode else f"{running.bot_url}/slack/events",
        users=USERS,
        hints=command_hints(),
        shortcuts=SHORTCUTS,
        default_channel=OPS_CHANNEL,
        title="Starpod demo",
        extra_state=lambda user: {"notes": _notes(running, user)},
    )
    try:
        await slack.start(options.host, options.port, extend=playground.mount)
    except OSError as exc:
        await backend.stop()
        raise DemoError(f"cannot serve the playground on port {options.port}: {exc}") from None
    env = bot_environment(
        options,
        backend_url=backend.url,
        slack=slack,
        bot_port=bot_port,
        database_url=database_url,
        config_file=config_file,
    )
    child: asyncio.subprocess.Process | None = None
    relay: asyncio.Task[None] | None = None
    try:
        child = await asyncio.create_subprocess_exec(
            *bot_command(),
            env=env,
            cwd=str(workdir),  # no ./starpod-bot.toml of the developer's is picked up
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the parent, which stops the child in order
            limit=1024 * 1024,  # one long log line must not break the relay
        )
        relay = asyncio.create_task(_relay_output(child, echo))
        connected = (
            (lambda: bool(slack.socket_mode.open_connections)) if options.socket_mode else None
        )
        ready = await _wait_ready(child, running.bot_url, stop, connected)
        if ready is not None:
            return _report_death(ready, echo)
        if stop.is_set():
            echo("demo: stopped before the bot was ready")
            return 0
        _banner(options, running, child.pid, echo)
        outcome = await _supervise(child, stop, options.duration)
        if outcome is not None:
            await _finish_relay(relay)
            return _report_death(outcome, echo)
        echo("demo: stopping…")
        return 0
    finally:
        if child is not None:
            await _stop_child(child)
        if relay is not None:
            await _finish_relay(relay)
        await slack.stop()
        await backend.stop()


async def _relay_output(child: asyncio.subprocess.Process, echo: Echo) -> None:
    """Show the bot's output, each line prefixed, as it comes."""
    assert child.stdout is not None
    async for raw in child.stdout:
        echo(f"  bot │ {raw.decode('utf-8', errors='replace').rstrip()}")


async def _finish_relay(relay: asyncio.Task[None]) -> None:
    """Let the relay print the child's last lines (its pipe closes when the child exits)."""
    try:
        await asyncio.wait_for(asyncio.shield(relay), timeout=2.0)
    except TimeoutError:
        relay.cancel()


async def _wait_ready(
    child: asyncio.subprocess.Process,
    bot_url: str,
    stop: asyncio.Event,
    connected: Callable[[], bool] | None = None,
) -> int | None:
    """Poll the bot's /healthz until it answers (and, in Socket Mode, until ``connected()``:
    its socket is open); the exit code if it died first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            if child.returncode is not None:
                return child.returncode
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{bot_url}/healthz") as response:
                    if response.status == 200 and (connected is None or connected()):
                        return None
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the bot did not answer {bot_url}/healthz"
                    + (" and connect its socket" if connected else "")
                    + f" within {READY_TIMEOUT_S:.0f} s"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.2)
    return None


async def _supervise(
    child: asyncio.subprocess.Process, stop: asyncio.Event, duration: float | None
) -> int | None:
    """Wait for a stop request, the duration, or the child's exit (its code)."""
    exited = asyncio.create_task(child.wait())
    stopped = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {exited, stopped}, timeout=duration, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopped.cancel()
    if exited in done and not stop.is_set():
        return exited.result()
    exited.cancel()
    return None


async def _stop_child(child: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after the grace period; always reaps the process."""
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(child.wait(), timeout=STOP_GRACE_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()


def _report_death(code: int, echo: Echo) -> int:
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    echo(f"demo: the bot {how} (its output is above); stopping everything")
    return 1


def _set_the_stage(backend: BackendSimulator, options: DemoOptions) -> Story:
    """Seed the instances and schedule the story's two stalls (see :mod:`bot.demo_story`)."""
    ids = backend.seed_instances(options.instances)
    cast: list[StoryInstance] = []
    for instance_id, heals in zip(ids, (False, True), strict=False):
        # The wedge outlives every auto-restart of the budget; a plain stall any restart.
        survives = 0 if heals else RESTART_BUDGET
        backend.schedule_stall(instance_id, options.stall_after, survives_restarts=survives)
        cast.append(StoryInstance(instance_id, backend.instance(instance_id)["name"], heals))
    return Story(stall_at=time.time() + options.stall_after, instances=tuple(cast))


def _banner(options: DemoOptions, running: _Running, pid: int, echo: Echo) -> None:
    echo("")
    echo("Starpod demo is running. Open the playground:")
    echo("")
    echo(f"  Playground:  {running.slack.url}/")
    echo("")
    if options.socket_mode:
        echo(f"  Bot (Socket Mode):  {running.bot_url}  (pid {pid}; /healthz, /readyz, /metrics)")
    else:
        echo(
            f"  Bot (HTTP mode):    {running.bot_url}/slack/events  (pid {pid}; /healthz, /metrics)"
        )
    echo(f"  Slack emulator API: {running.slack.api_url}")
    echo(f"  Database:           {running.database_url}")
    story = running.story
    if story.instances:
        # The stalls were scheduled when the simulator started, before the bot was ready.
        left = max(story.stall_at - time.time(), 0)
        echo(f"  In ~{left:.0f} s:  " + _story_line(story))
    echo(f"  Backend simulator:  {running.backend.url}  ({options.instances} instances)")
    echo("")
    echo("Type /starpod list in #ops, use a row's ⋯ menu, and watch #alerts. Ctrl-C stops all.")
    echo("")


def _story_line(story: Story) -> str:
    parts = []
    if story.healing is not None:
        parts.append(f"{story.healing.name} stops its heartbeat and the bot heals it")
    if story.wedged is not None:
        parts.append(
            f"{story.wedged.name} wedges: it outlasts the bot's {RESTART_BUDGET} restarts, "
            "and the bot pages on-call"
        )
    return "; ".join(parts)


def _notes(running: _Running, user: str) -> list[str]:
    """The playground's 'About this demo' lines (mrkdwn) for ``user``, as of now."""
    role = next((u.role for u in USERS if u.id == user), "")
    alerts = [m.to_dict() for m in running.slack.messages(ALERT_CHANNEL)]
    # Stopped: no beat since the stall (a restart before it cancels a plain stall).
    stopped = {
        i.id: running.backend.health(i.id)["last_heartbeat"] <= running.story.stall_at
        for i in running.story.instances
    }
    return story_notes(running.story, role=role, alert_messages=alerts, heartbeat_stopped=stopped)
