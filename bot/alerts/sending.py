"""Delivery, stage 2: send one claimed row to Slack, and name the outcome.

``root`` and ``notice`` rows are posted; a ``reply`` goes in its incident's thread (or,
when the root failed for good, to the channel); an ``update`` edits the root (or becomes
the root when it never made it). :func:`classify` maps the Web API's errors to
``sent``/``retry``/``ratelimited``/``failed``; the rules are in :mod:`bot.alerts.delivery`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.claims import Claimed
from bot.alerts.outbox import NOTICE, REPLY, ROOT, UPDATE

RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Configuration an operator can fix (a new token, an added scope): keep the rows.
CONFIG_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "no_permission",
    }
)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What happened to one request: ``sent``, ``retry``, ``ratelimited`` or ``failed``."""

    status: str
    ts: str | None = None
    error: str | None = None
    retry_after: float | None = None
    config_error: bool = False
    # Set when an edit or reply had to be posted as a new top-level message.
    new_root: bool = False


def classify(exc: BaseException) -> SendOutcome:
    """Map an exception from the Web API client to an outcome (pure; no I/O)."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = int(getattr(response, "status_code", 200) or 200)
        error = ""
        try:
            error = str(response.get("error") or "")
        except Exception:  # a body that is not JSON
            error = ""
        if status == 429 or error == "ratelimited":
            return SendOutcome("ratelimited", error="ratelimited", retry_after=_retry_after(exc))
        if status >= 500 or error in RETRYABLE_ERRORS:
            return SendOutcome("retry", error=f"HTTP {status}: {error or 'server error'}")
        if error in CONFIG_ERRORS:
            return SendOutcome("retry", error=error, config_error=True)
        return SendOutcome("failed", error=error or f"HTTP {status}")
    if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
        return SendOutcome("retry", error=f"{type(exc).__name__}: {exc}".strip(": "))
    return SendOutcome("retry", error=f"unexpected {type(exc).__name__}: {exc}")


def _retry_after(exc: SlackApiError) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    raw = None
    for key in ("Retry-After", "retry-after"):
        if key in headers:
            raw = headers[key]
            break
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


async def send(web: AsyncWebClient, row: Claimed) -> SendOutcome:
    """Send one claimed row with the Web API; never raises (but for cancellation)."""
    payload = row.payload
    text = str(payload.get("text") or " ")
    blocks = payload.get("blocks") or None
    try:
        if row.kind in (ROOT, NOTICE):
            answer = await web.chat_postMessage(channel=row.channel, text=text, blocks=blocks)
            return SendOutcome("sent", ts=answer.get("ts"), new_root=row.kind == ROOT)
        if row.kind == REPLY:
            if row.root_ts is None and row.root_pending:
                # Cannot happen in stream order; wait rather than lose the thread.
                return SendOutcome("retry", error="root message not delivered yet")
            kwargs: dict[str, Any] = {"channel": row.root_channel or row.channel}
            if row.root_ts is not None:
                kwargs["thread_ts"] = row.root_ts
                if payload.get("reply_broadcast"):
                    kwargs["reply_broadcast"] = True
            answer = await web.chat_postMessage(text=text, blocks=blocks, **kwargs)
            return SendOutcome("sent", ts=answer.get("ts"))
        if row.kind == UPDATE:
            if row.root_ts is None:
                if row.root_pending:
                    return SendOutcome("retry", error="root message not delivered yet")
                # The root never made it (poison): this edit becomes the root.
                answer = await web.chat_postMessage(channel=row.channel, text=text, blocks=blocks)
                return SendOutcome("sent", ts=answer.get("ts"), new_root=True)
            answer = await web.chat_update(
                channel=row.root_channel or row.channel,
                ts=row.root_ts,
                text=text,
                blocks=blocks,
            )
            return SendOutcome("sent", ts=answer.get("ts") or row.root_ts)
        return SendOutcome("failed", error=f"unknown outbox kind {row.kind!r}")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return classify(exc)
