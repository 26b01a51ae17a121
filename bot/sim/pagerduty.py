"""A fake PagerDuty Events API v2: a real HTTP server on loopback (aiohttp.web).

``POST /v2/enqueue`` answers as PagerDuty documents it:

- ``202 {"status": "success", "message": "Event processed", "dedup_key": …}`` for a valid
  event (a trigger without a ``dedup_key`` gets one made up, as PagerDuty does);
- ``400 {"status": "invalid event", "message": "Event object is invalid", "errors": […]}``
  for a body that is not JSON, a wrong routing key, an unknown ``event_action``, a trigger
  without ``payload.summary``/``source``/``severity`` or with an unknown severity, a
  summary over 1,024 characters or a ``dedup_key`` over 255;
- scripted faults (:meth:`PagerDutySimulator.fail_next`): ``429`` (with or without
  ``Retry-After``) and ``5xx`` answers (HTML, as a load balancer sends them), for the next
  N requests, before any validation;
- held answers (:meth:`PagerDutySimulator.hold_answers`): the event is processed, its
  answer waits until :meth:`PagerDutySimulator.release_answers` (a sender killed while it
  waits is the duplicate window of the outbox).

Accepted events are kept in order (:attr:`PagerDutySimulator.events`), and each alert's
state is folded from them as PagerDuty would (:meth:`PagerDutySimulator.alert_state`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.sim.listening import listen

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")


@dataclass
class Fault:
    """The answer the next ``count`` requests get instead of being processed."""

    status: int
    count: int
    retry_after: float | None = None


@dataclass
class Received:
    """One request as it arrived (valid or not)."""

    status: int
    body: dict[str, Any] | None
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)


class PagerDutySimulator:
    """The fake Events API; ``routing_key`` is the only integration key it accepts."""

    def __init__(self, *, routing_key: str = "R0UTINGKEYR0UTINGKEYR0UTINGKEY01") -> None:
        self.routing_key = routing_key
        self.received: list[Received] = []
        self._faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._arrived = asyncio.Condition()
        self._released = asyncio.Event()
        self._released.set()

    @property
    def url(self) -> str:
        """The enqueue endpoint (``http://127.0.0.1:<port>/v2/enqueue``)."""
        if self._url is None:
            raise RuntimeError("the PagerDuty simulator is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: any free port); returns :attr:`url`."""
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._runner = web.AppRunner(app, access_log=None)
        bound = await listen(self._runner, host, port)
        self._url = f"http://{host}:{bound}/v2/enqueue"
        return self._url

    async def stop(self) -> None:
        """Stop listening (held answers are released first)."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> PagerDutySimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- controls ------------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, *, retry_after: float | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (429 or 5xx)."""
        self._faults.append(Fault(status, count, retry_after))

    def hold_answers(self) -> None:
        """Process events but keep their answers until :meth:`release_answers`."""
        self._released.clear()

    def release_answers(self) -> None:
        """Send the held answers (and stop holding)."""
        self._released.set()

    @property
    def events(self) -> list[dict[str, Any]]:
        """The accepted events, oldest first."""
        return [r.body for r in self.received if r.status == 202 and r.body is not None]

    def alert_state(self, dedup_key: str) -> str | None:
        """``triggered``, ``acknowledged`` or ``resolved`` as PagerDuty folds the events."""
        state: str | None = None
        for event in self.events:
            if event.get("dedup_key") != dedup_key:
                continue
            action = event.get("event_action")
            if action == "trigger" and state in (None, "resolved"):
                state = "triggered"
            elif action == "acknowledge" and state == "triggered":
                state = "acknowledged"
            elif action == "resolve" and state in ("triggered", "acknowledged"):
                state = "resolved"
        return state

    async def wait_for(self, count: int) -> list[Received]:
        """Wait until ``count`` requests have arrived (of any outcome); callers bound it
        with ``asyncio.timeout``."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return list(self.received)

    # -- the endpoint --------------------------------------------------------------------

    async def _enqueue(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = dict(request.headers)
        if self._faults:
            fault = self._faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self._faults.pop(0)
            return await self._note(Received(fault.status, None, raw, headers), _fault(fault))
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return await self._note(
                Received(400, None, raw, headers), _invalid(["Event object is not valid JSON"])
            )
        errors = self._validate(body)
        if errors:
            return await self._note(Received(400, body, raw, headers), _invalid(errors))
        key = body.get("dedup_key") or uuid.uuid4().hex
        answer = {"status": "success", "message": "Event processed", "dedup_key": key}
        return await self._note(
            Received(202, body, raw, headers), web.json_response(answer, status=202)
        )

    async def _note(self, received: Received, response: web.Response) -> web.Response:
        async with self._arrived:
            self.received.append(received)
            self._arrived.notify_all()
        await self._released.wait()
        return response

    def _validate(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return ["Event object must be a JSON object"]
        errors = []
        if body.get("routing_key") != self.routing_key:
            errors.append("'routing_key' is invalid")
        action = body.get("event_action")
        if action not in ACTIONS:
            errors.append("'event_action' is invalid (must be trigger, acknowledge or resolve)")
        dedup = body.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action in ("acknowledge", "resolve") and not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if action == "trigger":
            payload = body.get("payload")
            if not isinstance(payload, dict):
                return [*errors, "'payload' is missing or not an object"]
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary:
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > 1024:
                errors.append("'payload.summary' is longer than 1024 characters")
            if not payload.get("source"):
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid (critical, error, warning, info)")
        return errors


def _invalid(errors: list[str]) -> web.Response:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return web.json_response(body, status=400)


def _fault(fault: Fault) -> web.Response:
    if fault.status == 429:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        body = {
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
        }
        return web.json_response(body, status=429, headers=headers)
    html = f"<html><body><h1>{fault.status}</h1>upstream error</body></html>"
    return web.Response(status=fault.status, text=html, content_type="text/html")
