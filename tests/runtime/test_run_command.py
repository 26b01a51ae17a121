"""``starpod-bot run`` as a real process: start, serve, SIGTERM, secrets, refusals, bad settings.

Each test starts ``python -m bot run`` with an environment only (its working folder is an
empty tmp folder, so no ``starpod-bot.toml`` is read), pointed at the simulators running in
this test process on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.sim.backend import BackendSimulator
from bot.sim.process import free_port
from bot.sim.slack import SlackEmulator
from bot.store.database import Database
from tests.runtime.conftest import runtime_env
from tests.support.bot_process import BotProcess, bot_environ

pytestmark = pytest.mark.slow

BOT_TOKEN = "xoxb-4242-SECRETBOT-TOKENVALUE"
SIGNING_SECRET = "SECRET-signing-4242-value"
BACKEND_KEY = "SECRET-backend-key-4242"
GATEWAY_KEY = "SECRET-gateway-key-4242"
SSH_SECRET = "SECRET-fernet-secret-4242"
SECRETS = (BOT_TOKEN, SIGNING_SECRET, BACKEND_KEY, GATEWAY_KEY, SSH_SECRET)
STOP_WITHIN_SECS = 10.0
START_WITHIN_SECS = 30.0


def _env(
    tmp_path: Path, backend: BackendSimulator, slack: SlackEmulator, **extra: str
) -> dict[str, str]:
    return bot_environ(runtime_env(tmp_path, backend, slack, **extra))


@pytest.fixture
async def secret_sims() -> AsyncIterator[tuple[BackendSimulator, SlackEmulator]]:
    """Simulators that only accept the recognisable secrets above."""
    async with (
        BackendSimulator(transition_secs=0, api_key=BACKEND_KEY) as backend,
        SlackEmulator(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET) as slack,
    ):
        yield backend, slack


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


async def test_run_serves_logs_json_without_secrets_and_stops_on_sigterm(
    tmp_path: Path, workdir: Path, secret_sims: tuple[BackendSimulator, SlackEmulator]
) -> None:
    backend, slack = secret_sims
    [instance_id] = backend.seed_instances(1)
    port = free_port()
    env = _env(
        tmp_path,
        backend,
        slack,
        ANTHROPIC_API_KEY=BACKEND_KEY,
        STARPOD_GATEWAY_KEYS=f"ops:admin:{GATEWAY_KEY}",
        STARPOD_SSH_KEY_SECRET=SSH_SECRET,
        STARPOD_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PORT=str(port),
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",
    )
    bot = await BotProcess.start(env, workdir)
    try:
        url = await bot.listening(START_WITHIN_SECS)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            alive = await http.get("/healthz")
            ready = await http.get("/readyz")
            listed = await http.get("/api/instances", headers={"X-API-Key": GATEWAY_KEY})
            await slack.send_slash_command(f"{url}/slack/events", f"ssh {instance_id}")
            await slack.wait_for(lambda: bool(slack.responses), timeout=10, what="the ssh answer")
            metrics = await http.get("/metrics")
    finally:
        code = await bot.stop(STOP_WITHIN_SECS)
    assert code == 0, bot.output()
    assert alive.status_code == 200 and ready.status_code == 200, ready.text
    assert listed.status_code == 200 and listed.json()[0]["id"] == instance_id
    assert "starpod_sweeps_total" in metrics.text
    # Every line is one JSON object with the agreed fields.
    records = [json.loads(line) for line in bot.lines if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert any(r["msg"] == "starpod-bot stopped" for r in records)
    assert any(r["level"] == "DEBUG" for r in records)
    # Not one secret, not one line of the SSH key the backend handed out.
    output = bot.output()
    for secret in SECRETS:
        assert secret not in output
    assert backend.issued_private_keys, "the ssh command fetched no key"
    for key in backend.issued_private_keys:
        body = [line for line in key.splitlines() if line and not line.startswith("-----")]
        assert not any(line in output for line in body)
    assert slack.violations() == []


async def test_second_process_on_the_same_sqlite_file_is_refused(
    tmp_path: Path, workdir: Path, backend_sim: BackendSimulator, slack_emulator: SlackEmulator
) -> None:
    env = _env(tmp_path, backend_sim, slack_emulator)
    first = await BotProcess.start(env, workdir)
    try:
        await first.listening(START_WITHIN_SECS)
        second = await BotProcess.start(env, workdir)
        code = await second.finish(START_WITHIN_SECS)
    finally:
        first_code = await first.stop(STOP_WITHIN_SECS)
    assert code == 2, second.output()
    errors = [line for line in second.lines if " ERROR " in line]
    assert len(errors) == 1, second.output()
    assert "cannot start: another starpod-bot process is already using" in errors[0]
    assert f"(pid {first.proc.pid})" in errors[0]
    assert "Traceback" not in second.output()
    assert first_code == 0, first.output()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"PORT": "not-a-port"}, ["invalid setting PORT (http.port)"]),
        (
            {"STARPOD_INSTANCE_BACKEND_URL": "", "SLACK_SIGNING_SECRET": ""},
            ["STARPOD_INSTANCE_BACKEND_URL", "SLACK_SIGNING_SECRET"],
        ),
        ({"SLACK_BOT_TOKEN": "xoxb-wrong"}, ["Slack rejected SLACK_BOT_TOKEN"]),
    ],
    ids=["malformed", "missing", "rejected-token"],
)
async def test_bad_settings_are_one_line_each_and_exit_2(
    tmp_path: Path,
    workdir: Path,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    overrides: dict[str, str],
    expected: list[str],
) -> None:
    bot = await BotProcess.start(_env(tmp_path, backend_sim, slack_emulator, **overrides), workdir)
    code = await bot.finish(START_WITHIN_SECS)
    assert code == 2, bot.output()
    problems = [line for line in bot.lines if "error" in line.lower()]
    assert len(problems) == len(expected), bot.output()
    for line, needle in zip(problems, expected, strict=True):
        assert needle in line
    assert "Traceback" not in bot.output()
    assert "xoxb-wrong" not in bot.output()


@pytest.mark.parametrize(
    "stage",
    [
        "is at the latest schema",  # the database opened, without Alembic (migrated before)
        "instances",  # the backend answered
        "Slack accepted the bot token",
        "starpod-bot is up",
    ],
)
async def test_sigterm_at_any_stage_of_the_start_stops_cleanly(
    tmp_path: Path,
    workdir: Path,
    backend_sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    stage: str,
) -> None:
    backend_sim.seed_instances(200)
    async with Database(f"sqlite:///{tmp_path / 'bot.db'}") as db:
        await db.upgrade()
    bot = await BotProcess.start(_env(tmp_path, backend_sim, slack_emulator), workdir)
    try:
        await bot.logged(stage, START_WITHIN_SECS)
    finally:
        code = await bot.stop(STOP_WITHIN_SECS)
    assert code == 0, bot.output()
    assert "Traceback" not in bot.output() and " ERROR " not in bot.output(), bot.output()
    assert bot.lines[-1].endswith("starpod-bot stopped"), bot.output()
