"""Delivery to the generic outgoing webhook: one outbox ``event`` row → one signed POST.

The body is JSON (:func:`event_body`): ``{"id": <delivery id>, "type":
"incident.opened" | "incident.acknowledged" | "incident.resolved" | "incident.action",
"at": …, "actor": …, "action": …, "incident": {…}, "slack": {"channel", "ts",
"permalink"}}``. The ``id`` is the same on every retry of one event: receivers dedupe on
it, because delivery is at least once.

Signature (:func:`signature`): ``X-Starpod-Signature: v1=<hex HMAC-SHA256 of
"<timestamp>." + body, keyed with STARPOD_WEBHOOK_SECRET>`` and ``X-Starpod-Timestamp:
<unix seconds>``; the README shows how to verify it.

Answers: 2xx sent; 429 pauses the destination (``Retry-After``, else a minute); 400, 413
and 422 (the receiver will never take this body) are ``failed`` and logged; 401, 403,
404 and 410 (a URL or secret an operator can fix) wait the longest back-off; 5xx,
anything else and network errors are retried with back-off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from bot.alerts.claims import Claimed
from bot.alerts.pagerduty import Permalink
from bot.alerts.sending import SendOutcome

SIGNATURE_HEADER = "X-Starpod-Signature"
TIMESTAMP_HEADER = "X-Starpod-Timestamp"
DELIVERY_HEADER = "X-Starpod-Delivery"
RATE_LIMIT_WAIT_SECS = 60.0

EVENT_TYPES = {
    "trigger": "incident.opened",
    "acknowledge": "incident.acknowledged",
    "resolve": "incident.resolved",
    "action": "incident.action",
}
PERMANENT = frozenset({400, 413, 422})
CONFIG = frozenset({401, 403, 404, 410})


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``timestamp.body`` under ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def event_body(row_id: int, payload: dict[str, Any], *, slack: dict[str, Any]) -> bytes:
    """The JSON body of one event row (compact, keys sorted: what is signed is what is sent)."""
    data = {
        "id": row_id,
        "type": EVENT_TYPES.get(str(payload.get("event")), f"incident.{payload.get('event')}"),
        "at": payload.get("at"),
        "actor": payload.get("actor"),
        "action": payload.get("action"),
        "incident": payload.get("incident") or {},
        "slack": slack,
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def classify(response: httpx.Response) -> SendOutcome:
    """Map the receiver's answer to an outcome (see the module docstring)."""
    status = response.status_code
    if 200 <= status < 300:
        return SendOutcome("sent")
    hint = response.text.strip()[:120]
    said = f"webhook: HTTP {status}" + (f": {hint!r}" if hint else "")
    if status == 429:
        raw = response.headers.get("Retry-After")
        try:
            wait = max(0.0, float(raw)) if raw is not None else RATE_LIMIT_WAIT_SECS
        except ValueError:
            wait = RATE_LIMIT_WAIT_SECS
        return SendOutcome("ratelimited", error=said, retry_after=wait)
    if status in PERMANENT:
        return SendOutcome("failed", error=said)
    return SendOutcome("retry", error=said, config_error=status in CONFIG)


class WebhookSender:
    """Sends ``webhook`` event rows, signed; ``now`` gives the signature's timestamp."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str,
        secret: str,
        permalink: Permalink | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._url = url
        self._secret = secret
        self._permalink = permalink
        self._now = now

    def __repr__(self) -> str:
        return f"WebhookSender(url={self._url!r})"  # never the secret

    async def send(self, row: Claimed) -> SendOutcome:
        """POST one event; never raises (but for cancellation)."""
        slack: dict[str, Any] = {
            "channel": row.root_channel or row.channel or None,
            "ts": row.root_ts,
            "permalink": await self._thread_url(row),
        }
        body = event_body(row.id, row.payload, slack=slack)
        timestamp = str(int(self._now()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
            DELIVERY_HEADER: str(row.id),
        }
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendOutcome("retry", error=f"webhook: {type(exc).__name__}: {exc}")
        return classify(response)

    async def _thread_url(self, row: Claimed) -> str | None:
        if self._permalink is None or row.root_ts is None:
            return None
        try:
            return await self._permalink(row.root_channel or row.channel, row.root_ts)
        except Exception:
            return None
