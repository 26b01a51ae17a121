"""The terminal CLI, driven as a user drives it: the real command in a subprocess, against
the backend simulator running as its own process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
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


def status_of(url: str, instance_id: object) -> object:
    return next(r for r in list_json(url) if r["id"] == instance_id)["status"]


def test_pause_restart_and_kill_wait_and_print_the_new_status(sim_url: str) -> None:
    """Issue 16: they printed the status from before the change and returned before it was
    done, so the next command got a 409. Now the next command sees the change done."""
    target = next(r for r in list_json(sim_url) if r["status"] == "running")
    prefix = str(target["id"])[:8]
    paused = run_cli("pause", prefix, url=sim_url)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.strip() == f"Paused {target['name']} ({prefix}): status paused"
    assert paused.stderr == ""  # no spinner, no escape codes when stderr is not a terminal
    assert status_of(sim_url, target["id"]) == "paused"
    restarted = run_cli("restart", prefix, url=sim_url)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.strip() == f"Restarted {target['name']} ({prefix}): status running"
    assert status_of(sim_url, target["id"]) == "running"
    refused = run_cli("kill", prefix, url=sim_url, stdin="")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    killed = run_cli("kill", prefix, "--yes", url=sim_url)
    assert killed.returncode == 0, killed.stderr
    assert killed.stdout.strip() == f"Killed {target['name']} ({prefix}): status stopped"
    assert status_of(sim_url, target["id"]) == "stopped"


def test_no_wait_returns_at_once_and_a_wait_that_ends_first_exits_1() -> None:
    """Against a backend whose transitions take a minute: --no-wait prints the backend's
    first answer and returns; a wait shorter than the transition ends in exit code 1."""
    proc, url = start_simulator(2, extra_args=["--transition-secs", "60"])
    try:
        first, second = sorted(list_json(url), key=lambda r: str(r["name"]))
        late = run_cli("restart", str(first["name"]), "--wait-secs", "1", url=url)
        asked = run_cli("pause", str(second["name"]), "--no-wait", url=url)
        still = status_of(url, second["id"])
    finally:
        stop_process(proc)
    short_id = str(first["id"])[:8]
    assert late.returncode == 1
    assert late.stderr.strip() == (
        f"error: the restart of {first['name']} ({short_id}) is not done after 1 s "
        f"(status running); see: starpod-bot instance health {short_id}"
    )
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith(f"Asked to pause {second['name']} ")
    assert asked.stdout.strip().endswith("(not waiting: --no-wait)")
    assert still != "paused"


def test_create_names_the_id_once(sim_url: str) -> None:
    """Issue 16: it said "Created web (1a2b3c4d) (id 1a2b3c4d-…)"."""
    created = run_cli("create", "--name", "once-pod", url=sim_url)
    assert created.returncode == 0, created.stderr
    row = next(r for r in list_json(sim_url) if r["name"] == "once-pod")
    assert created.stdout.strip() == f"Created once-pod with id {row['id']}: status creating"


def test_an_action_needs_four_characters_of_a_prefix(sim_url: str) -> None:
    """Issue 16: `/starpod pause 8` paused pod-001; the CLI follows the same rule."""
    solo = "zq12-0000-4000-8000-000000000000"
    httpx.post(sim_url + "/_sim/instances", json={"name": "solo", "id": solo}).raise_for_status()
    short = run_cli("pause", "z", url=sim_url)
    assert short.returncode == 2
    assert short.stderr.strip() == (
        "error: 'z' is too short to act on: type at least 4 characters of the id, "
        "or the exact name (it matches zq12-000 (solo))."
    )
    assert status_of(sim_url, solo) == "running"
    read = run_cli("health", "z", "--json", url=sim_url)  # reading takes a short prefix
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["id"] == solo
    assert run_cli("pause", "zq12", url=sim_url).returncode == 0
    assert status_of(sim_url, solo) == "paused"


def test_unknown_names_exit_2_with_the_nearest_names(sim_url: str) -> None:
    """The README reserves exit code 1 for backend errors; a typo is a usage error."""
    missing = run_cli("health", "pod", url=sim_url)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "error: No instance matches 'pod' (by id, id prefix or name); "
        "did you mean pod-001, pod-002 or pod-003?"
    )


def test_backend_errors_exit_1_with_status_and_body(sim_url: str) -> None:
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


def run_on_a_terminal(
    *args: str, url: str, answer: str = "", columns: int = 200
) -> tuple[int, str, str]:
    """Run ``starpod-bot instance …`` with stdin and stderr on a pseudo-terminal.

    Returns the exit code, stdout, and what the terminal showed (the prompt's echo and any
    spinner on stderr).
    """
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STARPOD_", "ANTHROPIC_"))}
    env.update({"STARPOD_INSTANCE_BACKEND_URL": url, "COLUMNS": str(columns), "TERM": "xterm"})
    proc = subprocess.Popen(
        [*CLI, "instance", *args], stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    if answer:
        os.write(master, answer.encode())
    shown = bytearray()
    while True:  # read until the child closes the terminal (EOF or EIO on Linux)
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=60)
    os.close(master)
    return code, stdout, shown.decode(errors="replace")


def test_a_declined_kill_is_a_plain_answer_with_exit_code_3(sim_url: str) -> None:
    """Issue 16: answering no printed a red "error: not killed"."""
    target = next(r for r in list_json(sim_url) if r["status"] == "running")
    code, stdout, shown = run_on_a_terminal(
        "kill", str(target["id"])[:8], url=sim_url, answer="n\n"
    )
    assert code == 3
    assert f"Kill {target['name']}" in stdout  # the prompt
    assert f"Not killed: {target['name']} ({str(target['id'])[:8]}) is unchanged." in stdout
    assert "error" not in stdout + shown
    assert status_of(sim_url, target["id"]) == "running"


def test_a_spinner_shows_on_a_terminal_while_waiting(sim_url: str) -> None:
    target = next(r for r in list_json(sim_url) if r["status"] == "running")
    code, stdout, shown = run_on_a_terminal("pause", str(target["id"])[:8], url=sim_url)
    assert code == 0, shown
    assert f"Pausing {target['name']}" in shown  # the spinner's line, on the terminal only
    assert stdout.strip() == f"Paused {target['name']} ({str(target['id'])[:8]}): status paused"
    assert run_cli("restart", str(target["id"])[:8], url=sim_url).returncode == 0


def test_headings_are_not_wrapped_to_the_tables_width(sim_url: str) -> None:
    """Issue 16: the health heading was wrapped mid-word to the table's width."""
    name = "a-rather-long-instance-name"
    assert run_cli("create", "--name", name, url=sim_url).returncode == 0
    result = run_cli("health", name, url=sim_url, extra_env={"COLUMNS": "60"})
    assert result.returncode == 0, result.stderr
    short_id = str(next(r for r in list_json(sim_url) if r["name"] == name)["id"])[:8]
    first = result.stdout.splitlines()[0]
    assert first in (f"{name} ({short_id}): creating", f"{name} ({short_id}): running")
    table_width = max(len(line) for line in result.stdout.splitlines()[1:])
    assert len(first) > table_width  # one line, wider than the table, as the terminal allows
