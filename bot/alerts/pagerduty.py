"""Delivery to PagerDuty's Events API v2: one outbox ``event`` row → one POST.

The body (:func:`event_body`): ``trigger`` carries a summary, the severity of the incident's
kind (:data:`SEVERITY`), the instance as ``source``/``component``, its region as
``group``, the kind as ``class``, and a link to the incident's Slack thread;
``acknowledge`` and ``resolve`` carry only the ``dedup_key``. Every event of one
incident has the same ``dedup_key`` (``starpod-incident-<id>``), so PagerDuty folds them
into one alert.

PagerDuty's answers (:func:`classify`): ``202`` sent; ``400`` the event is invalid and
never will be valid — ``failed``, logged with PagerDuty's ``message`` and ``errors``;
``429`` rate limited — the destination pauses (``Retry-After`` when given, else a minute);
``5xx``, anything else and network errors — retried with back-off; 401/403/404 (a wrong
key or URL an operator can fix) wait the longest back-off. The routing key is sent in the
body only and is cut out of anything recorded (:func:`scrub`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot.alerts.claims import Claimed
from bot.alerts.paging import TRIGGER
from bot.alerts.sending import SendOutcome

log = logging.getLogger(__name__)

SEVERITY = {
    "restart_budget_exhausted": "critical",
    "backend_unreachable": "critical",
    "stale": "error",
    "error": "error",
    "health_unknown": "warning",
}
"""PagerDuty severity of each incident kind (unknown kinds: ``error``)."""

SUMMARY_LIMIT = 1024
RATE_LIMIT_WAIT_SECS = 60.0
# A trigger waits this many attempts (1 s, 2 s back-off) for the Slack root, so its page
# can link to the thread; then it goes without: paging never waits on Slack for long.
ROOT_WAIT_ATTEMPTS = 3

Permalink = Callable[[str, str], Awaitable[str | None]]
"""(channel, ts) → the message's permalink, or None."""


def dedup_key(incident_id: int) -> str:
    """The one ``dedup_key`` of an incident's events."""
    return f"starpod-incident-{incident_id}"


def event_body(
    payload: dict[str, Any], *, routing_key: str, thread_url: str | None
) -> dict[str, Any]:
    """The Events API v2 body of one outbox event row (pure)."""
    incident = payload.get("incident") or {}
    event = str(payload.get("event") or TRIGGER)
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": event,
        "dedup_key": dedup_key(int(incident.get("id") or 0)),
    }
    if event != TRIGGER:
        return body
    label = str(incident.get("label") or "fleet")
    summary = f"{label}: {incident.get('what') or incident.get('kind')}"
    if incident.get("detail"):
        summary += f" ({incident['detail']})"
    if len(summary) > SUMMARY_LIMIT:
        summary = summary[: SUMMARY_LIMIT - 1] + "…"
    details = {
        "incident": incident.get("id"),
        "instance_id": incident.get("instance_id"),
        "instance_name": incident.get("instance_name"),
        "state": incident.get("state"),
        "detail": incident.get("detail"),
        "opened_at": incident.get("opened_at"),
    }
    body["payload"] = {
        "summary": summary,
        "source": incident.get("instance_name") or incident.get("instance_id") or "starpod fleet",
        "severity": SEVERITY.get(str(incident.get("kind")), "error"),
        "timestamp": payload.get("at"),
        "component": incident.get("instance_id") or "fleet",
        "group": incident.get("region") or "starpod",
        "class": incident.get("kind"),
        "custom_details": {k: v for k, v in details.items() if v is not None},
    }
    body["client"] = "starpod-bot"
    if thread_url:
        body["client_url"] = thread_url
        body["links"] = [
            {"href": thread_url, "text": f"Slack thread of incident #{incident.get('id')}"}
        ]
    return body


def scrub(text: str, secret: str) -> str:
    """``text`` without ``secret`` in it (PagerDuty may quote the key back)."""
    return text.replace(secret, "[routing key]") if secret else text


def _retry_after(response: httpx.Response, default: float | None) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default


def _problem(response: httpx.Response) -> str:
    """PagerDuty's ``message`` and ``errors``, or the start of a body that is not JSON."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()[:120]
        return f"non-JSON body {text!r}" if text else "empty body"
    if not isinstance(data, dict):
        return f"unexpected body {str(data)[:120]!r}"
    message = str(data.get("message") or data.get("status") or "no message")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        message += ": " + "; ".join(str(e) for e in errors[:5])
    return message


def classify(response: httpx.Response) -> SendOutcome:
    """Map an Events API answer to an outcome (see the module docstring)."""
    status = response.status_code
    if 200 <= status < 300:
        return SendOutcome("sent")
    if status == 429:
        wait = _retry_after(response, RATE_LIMIT_WAIT_SECS)
        return SendOutcome(
            "ratelimited", error="PagerDuty: HTTP 429 rate limited", retry_after=wait
        )
    if status == 400:
        return SendOutcome(
            "failed", error=f"PagerDuty rejected the event (HTTP 400): {_problem(response)}"
        )
    if status in (401, 403, 404):
        return SendOutcome(
            "retry", error=f"PagerDuty: HTTP {status}: {_problem(response)}", config_error=True
        )
    return SendOutcome(
        "retry",
        error=f"PagerDuty: HTTP {status}: {_problem(response)}",
        retry_after=_retry_after(response, None),
    )


class PagerDutySender:
    """Sends ``pagerduty`` event rows; ``permalink`` finds the Slack thread to link to."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        routing_key: str,
        url: str,
        permalink: Permalink | None = None,
    ) -> None:
        self._http = http
        self._key = routing_key
        self._url = url
        self._permalink = permalink

    def __repr__(self) -> str:
        return f"PagerDutySender(url={self._url!r})"  # never the key

    async def send(self, row: Claimed) -> SendOutcome:
        """POST one event; never raises (but for cancellation)."""
        thread_url: str | None = None
        if row.payload.get("event") == TRIGGER:
            if row.root_ts is None and row.root_pending and row.attempts < ROOT_WAIT_ATTEMPTS:
                return SendOutcome("retry", error="waiting for the Slack thread to link to")
            thread_url = await self._thread_url(row)
        body = event_body(row.payload, routing_key=self._key, thread_url=thread_url)
        try:
            response = await self._http.post(self._url, json=body)
        except httpx.HTTPError as exc:
            return SendOutcome(
                "retry", error=scrub(f"PagerDuty: {type(exc).__name__}: {exc}", self._key)
            )
        outcome = classify(response)
        if outcome.error:
            return SendOutcome(
                outcome.status,
                error=scrub(outcome.error, self._key),
                retry_after=outcome.retry_after,
                config_error=outcome.config_error,
            )
        return outcome

    async def _thread_url(self, row: Claimed) -> str | None:
        if self._permalink is None or row.root_ts is None:
            return None
        try:
            return await self._permalink(row.root_channel or row.channel, row.root_ts)
        except Exception as exc:  # a page without its link beats no page
            log.info("no Slack link for PagerDuty event %d: %s", row.id, exc)
            return None
