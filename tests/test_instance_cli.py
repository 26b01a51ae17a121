"""The terminal CLI, driven as a user drives it: the real command in a subprocess, against
the backend simulator running as its own process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.sim.process import free_port, start_simulator, stop_process

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "bot"]


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    proc, url = start_simulator(4)
    yield url
    stop_process(proc)


def run_cli(
    *args: str, url: str | None, extra_env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARPOD_", "ANTHROPIC_"))}
    env["COLUMNS"] = "200"
    if url is not None:
        env["STARPOD_INSTANCE_BACKEND_URL"] = url
    env.update(extra_env or {})
    return subprocess.run(
        [*CLI, "instance", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )


def list_json(url: str) -> list[dict[str, object]]:
    result = run_cli("list", "--json", url=url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_missing_backend_url_is_exit_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("list", url=None, extra_env={"STARPOD_CONFIG": os.devnull})
    assert result.returncode == 2
    assert "STARPOD_INSTANCE_BACKEND_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_create_list_and_health(sim_url: str) -> None:
    created = run_cli("create", "--name", "cli-bot", "-r", "eu-west-1", url=sim_url)
    assert created.returncode == 0, created.stderr
    assert "cli-bot" in created.stdout
    rows = list_json(sim_url)
    assert any(r["name"] == "cli-bot" and r["region"] == "eu-west-1" for r in rows)
    table = run_cli("list", url=sim_url)
    assert table.returncode == 0
    for word in ("NAME", "ID", "STATUS", "REGION", "AGE", "cli-bot"):
        assert word in table.stdout
    health = run_cli("health", "cli-bot", "--json", url=sim_url)
    assert health.returncode == 0, health.stderr
    data = json.loads(health.stdout)
    assert {"cpu_percent", "memory_mb", "disk_mb", "uptime_secs", "heartbeat_age_secs"} <= set(data)
    pretty = run_cli("health", "cli-bot", url=sim_url)
    assert "CPU" in pretty.stdout and "Heartbeat" in pretty.stdout


def test_pause_restart_and_kill_by_prefix(sim_url: str) -> None:
    target = next(r for r in list_json(sim_url) if r["status"] == "running")
    prefix = str(target["id"])[:8]
    assert run_cli("pause", prefix, url=sim_url).returncode == 0
    time.sleep(1.2)  # the simulator process settles transitions after ~1 s
    assert next(r for r in list_json(sim_url) if r["id"] == target["id"])["status"] == "paused"
    assert run_cli("restart", prefix, url=sim_url).returncode == 0
    refused = run_cli("kill", prefix, url=sim_url, stdin="")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    killed = run_cli("kill", prefix, "--yes", url=sim_url)
    assert killed.returncode == 0, killed.stderr
    time.sleep(1.2)
    assert next(r for r in list_json(sim_url) if r["id"] == target["id"])["status"] == "stopped"


def test_backend_errors_exit_1_with_status_and_body(sim_url: str) -> None:
    missing = run_cli("health", "no-such-instance", url=sim_url)
    assert missing.returncode == 1
    assert "No instance matches 'no-such-instance'" in missing.stderr
    httpx.post(sim_url + "/_sim/faults", json={"error_rate": 1.0, "endpoints": ["list"]})
    try:
        failed = run_cli("list", url=sim_url)
    finally:
        httpx.post(sim_url + "/_sim/faults", json={})
    assert failed.returncode == 1
    assert "Backend returned 500 for GET /instances: Internal Server Error" in failed.stderr
    refused = run_cli("list", url=f"http://127.0.0.1:{free_port()}")
    assert refused.returncode == 1 and "Backend unreachable" in refused.stderr


def test_usage_errors_exit_2(sim_url: str) -> None:
    assert run_cli("logs", "x", "--tail", "0", url=sim_url).returncode == 2
    assert run_cli("frobnicate", url=sim_url).returncode == 2


def test_logs_tail_and_colors(sim_url: str) -> None:
    target = list_json(sim_url)[0]
    result = run_cli(
        "logs", str(target["id"])[:8], "--tail", "300", url=sim_url, extra_env={"FORCE_COLOR": "1"}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    # 300 lines, not 30: which lines come depends on the second the test runs, and 30 of the
    # simulator's lines (10% errors) hold no error about one time in 25; 300 always do.
    assert len(lines) == 300
    # rich's ANSI codes: red for error, yellow for warn, green for info, dim for debug.
    assert "\x1b[31mERROR" in result.stdout and "\x1b[33mWARN" in result.stdout
    assert "\x1b[32mINFO" in result.stdout and "\x1b[2mDEBUG" in result.stdout


FAKE_SSH = """#!{python}
import json, os, signal, stat, sys
args = sys.argv[1:]
key = args[args.index("-i") + 1] if "-i" in args else None
record = {{"args": args, "key": key}}
if key:
    record["mode"] = stat.S_IMODE(os.stat(key).st_mode)
    record["has_key"] = "PRIVATE KEY" in open(key).read()
with open({record!r}, "w") as handle:
    json.dump(record, handle)
behaviour = os.environ.get("FAKE_SSH", "ok")
if behaviour == "fail":
    sys.exit(255)
if behaviour == "interrupt":
    os.kill(os.getppid(), signal.SIGINT)
    sys.exit(130)
if behaviour == "terminate":
    os.kill(os.getppid(), signal.SIGTERM)
    sys.exit(143)
"""


@pytest.fixture
def fake_ssh(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "ssh-record.json"
    script = bin_dir / "ssh"
    script.write_text(FAKE_SSH.format(python=sys.executable, record=str(record)))
    script.chmod(0o755)
    return bin_dir, record


@pytest.mark.parametrize(
    ("behaviour", "code"), [("ok", 0), ("fail", 255), ("interrupt", 130), ("terminate", 130)]
)
def test_ssh_key_file_is_0600_and_gone_on_every_exit_path(
    sim_url: str, fake_ssh: tuple[Path, Path], behaviour: str, code: int
) -> None:
    bin_dir, record = fake_ssh
    target = next(r for r in list_json(sim_url) if r["status"] == "running")
    result = run_cli(
        "ssh",
        str(target["id"]),
        url=sim_url,
        extra_env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SSH": behaviour},
    )
    assert result.returncode == code, result.stderr
    seen = json.loads(record.read_text())
    assert seen["mode"] == stat.S_IRUSR | stat.S_IWUSR
    assert seen["has_key"] is True
    assert seen["args"][-1].startswith("starpod@") or "@" in seen["args"][-1]
    assert "-p" in seen["args"]
    assert not Path(seen["key"]).exists()
    assert "PRIVATE KEY" not in result.stdout + result.stderr
