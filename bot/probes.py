"""The readiness probe: ``GET /readyz`` answers 200 when the bot can do its work, else 503.

The checks, each answering ``"ok"`` or the reason it is not:

- ``database``: the engine answers ``SELECT 1``, on SQLite a fresh connection can still
  open the file read-write (pooled connections keep working on a deleted file), and a
  one-row write commits (a full disk or a read-only database refuses it);
- ``slack``: ``auth.test`` accepts the bot token (asked again at most every
  ``slack_recheck_secs``);
- ``slack socket`` (Socket Mode only, added by the runtime before its first connection
  attempt): the WebSocket link is up;
- ``monitor``: the sweep is scheduled, leading or standing by, and live: a sweep (or an
  election round when standing by) completed within 3 intervals, and leadership can be
  decided (see ``bot.monitor.liveness``).

The backend is not checked: when it is down the bot must stay up to say so in Slack.
``GET /healthz`` (liveness) lives with the web app and only says the process serves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.store.database import Database
from bot.store.write_probe import write_refusal

log = logging.getLogger(__name__)

OK = "ok"
CHECK_SECS = 5.0
Check = Callable[[], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """Every check's answer; ready when all are ``"ok"``."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return all(answer == OK for answer in self.checks.values())

    @property
    def reasons(self) -> list[str]:
        """``"name: reason"`` for every failed check."""
        return [f"{name}: {answer}" for name, answer in self.checks.items() if answer != OK]

    def as_json(self) -> dict[str, Any]:
        """The body of ``/readyz``."""
        return {
            "status": "ready" if self.ready else "not ready",
            "reasons": self.reasons,
            "checks": self.checks,
        }


class Readiness:
    """Named checks, run together for each probe."""

    def __init__(self, checks: dict[str, Check] | None = None) -> None:
        self.checks: dict[str, Check] = dict(checks or {})

    def add(self, name: str, check: Check) -> None:
        """Run ``check`` under ``name`` too."""
        self.checks[name] = check

    async def report(self) -> ReadinessReport:
        """Run every check (each bounded by :data:`CHECK_SECS`); one that raises is not ready."""
        timeout = CHECK_SECS

        async def one(name: str, check: Check) -> tuple[str, str]:
            try:
                async with asyncio.timeout(timeout):
                    return name, await check()
            except TimeoutError:
                return name, f"no answer within {timeout:.0f} s"
            except Exception as exc:  # a probe reports, it does not raise
                log.warning("readiness check %s failed: %s", name, exc)
                return name, f"check failed: {type(exc).__name__}: {exc}"

        results = await asyncio.gather(*(one(n, c) for n, c in self.checks.items()))
        return ReadinessReport(dict(results))


def readyz_route(readiness: Readiness, path: str = "/readyz") -> Route:
    """``GET /readyz``: 200 and ``{"status": "ready", …}``, or 503 with the reasons."""

    async def endpoint(_request: Request) -> Response:
        report = await readiness.report()
        return Response(
            json.dumps(report.as_json()),
            status_code=200 if report.ready else 503,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    return Route(path, endpoint, methods=["GET"], name="readyz")


def _open_sqlite_file(path: Path) -> None:
    # mode=rw: never create the file. Reading alembic_version proves it is still our
    # database: a deleted file is silently re-created empty by the next pooled connection.
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=2)
    try:
        conn.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        conn.close()


def database_check(db: Database) -> Check:
    """Ready when the database answers, a SQLite file can still be opened, and writes commit."""

    async def check() -> str:
        if not await db.ping():
            return f"{db.safe_url} does not answer"
        if db.sqlite_path is not None:
            try:
                await asyncio.to_thread(_open_sqlite_file, db.sqlite_path)
            except sqlite3.Error as exc:
                return f"cannot open {db.sqlite_path}: {exc}"
        return await write_refusal(db) or OK

    return check


class SlackCheck:
    """Socket Mode connected, or ``auth.test`` accepting the token (cached a while)."""

    def __init__(
        self,
        auth_test: Callable[[], Awaitable[str | None]],
        *,
        socket_connected: Callable[[], Awaitable[bool]] | None = None,
        recheck_secs: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth_test = auth_test
        self._socket_connected = socket_connected
        self._recheck_secs = recheck_secs
        self._monotonic = monotonic
        self._last: tuple[float, str] | None = None

    def remember(self, answer: str) -> None:
        """Record an ``auth.test`` outcome just learned (e.g. at start)."""
        self._last = (self._monotonic(), answer)

    async def __call__(self) -> str:
        """``"ok"`` or why Slack is not usable."""
        if self._socket_connected is not None:
            if await self._socket_connected():
                return OK
            return "Socket Mode is not connected"
        now = self._monotonic()
        if self._last is not None and now - self._last[0] < self._recheck_secs:
            return self._last[1]
        problem = await self._auth_test()
        answer = OK if problem is None else problem
        self._last = (now, answer)
        return answer
