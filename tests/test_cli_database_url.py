"""A malformed or unreachable DATABASE_URL, through the real command in a subprocess: one
line naming the setting and what is wrong, exit code 2, and no folder created.

Issue 16: a port of ``abc`` ended in a raw ValueError (exit 1), ``sqlite://relative.db``
in SQLAlchemy's multi-line error, an unreachable or missing PostgreSQL said nothing
about the database, and ``sqlite:////nonexistent/dir/x.db`` created the folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot.sim.process import free_port

pytestmark = pytest.mark.slow

POSTGRES = os.environ.get("STARPOD_TEST_POSTGRES_URL")


def starpod(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STARPOD_", "SLACK_", "DATABASE_", "ANTHROPIC_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, "COLUMNS": "300", "STARPOD_CONFIG": os.devnull, **env},
        timeout=timeout,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@127.0.0.1:abc/x", "the port 'abc' is not a number"),
        ("postgresql://u:pw@127.0.0.1:70000/x", "the port 70000 is out of range"),
        (
            "sqlite://relative.db",
            "sqlite://relative.db has two slashes: write sqlite:///relative.db",
        ),
        ("mysql://u@h/x", "must be a sqlite:///path or postgresql://… URL"),
    ],
)
def test_a_malformed_url_is_one_line_naming_the_setting(
    tmp_path: Path, url: str, expected: str
) -> None:
    result = starpod("db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url})
    line = assert_one_line(result, "invalid setting DATABASE_URL (database.url): ", expected)
    assert "pw" not in line  # a password is never repeated
    assert list(tmp_path.iterdir()) == []


def test_the_toml_key_is_named_too(tmp_path: Path) -> None:
    config = tmp_path / "starpod-bot.toml"
    config.write_text('[database]\nurl = "sqlite://relative.db"\n')
    result = starpod("db", "upgrade", cwd=tmp_path, env={"STARPOD_CONFIG": str(config)})
    assert_one_line(result, "DATABASE_URL (database.url)", "has two slashes")


def test_a_sqlite_folder_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    result = starpod(
        "db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": f"sqlite:///{missing}/x.db"}
    )
    assert_one_line(
        result,
        "DATABASE_URL (database.url): ",
        f"the folder {missing} of the SQLite file does not exist",
    )
    assert not (tmp_path / "nonexistent").exists()


def test_an_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql://u:secret@127.0.0.1:{port}/x"
    line = assert_one_line(
        starpod("db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url}),
        f"DATABASE_URL (database.url): cannot open PostgreSQL at 127.0.0.1:{port}/x: ",
        "connection refused",
    )
    assert "secret" not in line


def test_run_says_the_same_and_exits_2(tmp_path: Path) -> None:
    """``starpod-bot run`` opens the database first: the same line, in its log, exit 2."""
    port = free_port()
    env = {
        "DATABASE_URL": f"postgresql://u@127.0.0.1:{port}/x",
        "SLACK_BOT_TOKEN": "xoxb-not-used",
        "SLACK_SIGNING_SECRET": "not-used",
        "STARPOD_INSTANCE_BACKEND_URL": f"http://127.0.0.1:{free_port()}",
        "PORT": "0",
    }
    result = starpod("run", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    wanted = (
        f"cannot start: DATABASE_URL (database.url): cannot open PostgreSQL at "
        f"127.0.0.1:{port}/x: connection refused"
    )
    assert wanted in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(POSTGRES is None, reason="STARPOD_TEST_POSTGRES_URL is not set")
def test_a_missing_postgresql_database_is_one_line(tmp_path: Path) -> None:
    assert POSTGRES is not None
    url = make_url(POSTGRES).set(database="starpod_no_such_database")
    result = starpod(
        "db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": url.render_as_string(False)}
    )
    assert_one_line(
        result,
        "DATABASE_URL (database.url): cannot open PostgreSQL at ",
        'database "starpod_no_such_database" does not exist',
    )
