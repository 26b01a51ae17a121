"""Delivery, stage 2: send one claimed row to Slack, and name the outcome.

``root`` and ``notice`` rows are posted; a ``reply`` goes in its incident's thread (or,
when the root failed for good, to the channel), and so does a ``diagnostics`` row once
:func:`send_diagnostics` has built it; an ``update`` edits the root (or becomes
the root when it never made it). :func:`classify` maps the Web API's errors to
``sent``/``retry``/``ratelimited``/``failed``; the rules are in :mod:`bot.alerts.delivery`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.claims import Claimed
from bot.alerts.outbox import NOTICE, REPLY, ROOT, UPDATE

if TYPE_CHECKING:
    from bot.alerts.diagnostics import Diagnostics

# Slack error names that can never succeed, however often the same request is repeated
# (chat.postMessage and chat.update, from Slack's method reference). Only these make a
# row "failed"; every other answer is retried, because a wrong "permanent" loses an alert
# for good while a wrong "retry" only costs a request every few minutes.
PERMANENT_ERRORS = frozenset(
    {
        # the channel or thread cannot take this message
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "is_inactive",
        "cannot_reply_to_message",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
        "ekm_access_denied",
        # the message itself is malformed or too big
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_attachments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_array_arg",
        "invalid_charset",
        "invalid_form_data",
        "invalid_post_type",
        "missing_post_type",
        # the message to edit is gone or can no longer be edited
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "method_deprecated",
        "deprecated_endpoint",
    }
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


class Sender(Protocol):
    """Sends one claimed row to a destination other than Slack (PagerDuty, the webhook)."""

    async def send(self, row: Claimed) -> SendOutcome:
        """Send it; never raises (but for cancellation)."""
        ...


def classify(exc: BaseException) -> SendOutcome:
    """Map an exception from the Web API client to an outcome (pure; no I/O).

    ``failed`` only for an error name in :data:`PERMANENT_ERRORS`; 429 (or
    ``ratelimited``) waits for ``Retry-After``; configuration errors wait long; every
    other answer (any 5xx, a body that is not JSON, an HTML error page, an unknown error
    name), dropped connections and timeouts are retried with back-off.
    """
    if isinstance(exc, SlackApiError):
        status = _status_of(exc.response)
        error = _error_name(exc.response)
        shown = f"HTTP {status}" if status is not None else "HTTP status unknown"
        if status == 429 or error in ("ratelimited", "rate_limited"):
            return SendOutcome("ratelimited", error="ratelimited", retry_after=_retry_after(exc))
        if error in PERMANENT_ERRORS:
            return SendOutcome("failed", error=f"{error} ({shown})")
        if error in CONFIG_ERRORS:
            return SendOutcome("retry", error=error, config_error=True)
        # A 503 may say when to come back: the back-off is then at least that long.
        return SendOutcome(
            "retry",
            error=f"{shown}: {error or _body_hint(exc)}",
            retry_after=_retry_after(exc, default=None),
        )
    if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
        return SendOutcome("retry", error=f"{type(exc).__name__}: {exc}".strip(": "))
    return SendOutcome("retry", error=f"unexpected {type(exc).__name__}: {exc}")


def _status_of(response: object) -> int | None:
    """The HTTP status of what slack-sdk put in the error: its own response object has
    ``status_code``; for a body that is not JSON it passes aiohttp's, which has
    ``status``. None when neither is there: never guess 200."""
    for name in ("status_code", "status"):
        value = getattr(response, name, None)
        if isinstance(value, int):
            return value
    return None


def _error_name(response: object) -> str:
    """Slack's ``error`` field, or "" when the body is not a JSON object."""
    data = getattr(response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "")
    if data is None and isinstance(response, dict):
        return str(response.get("error") or "")
    return ""


def _body_hint(exc: SlackApiError) -> str:
    """A short description of an answer without an error name (for ``last_error``)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, str) and data.strip():
        return f"non-JSON body {data.strip()[:60]!r}"
    return "no Slack error in the answer"


def _retry_after(exc: SlackApiError, default: float | None = 1.0) -> float | None:
    """The answer's ``Retry-After`` in seconds (``default`` when absent or unreadable)."""
    headers = getattr(exc.response, "headers", None) or {}
    raw = None
    for key in ("Retry-After", "retry-after"):
        if key in headers:
            raw = headers[key]
            break
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except (TypeError, ValueError):
        return default


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


async def send_diagnostics(
    web: AsyncWebClient, row: Claimed, diagnostics: Diagnostics | None
) -> SendOutcome:
    """Build the incident's diagnostics reply (the backend read has its own deadline),
    then post it in the thread like any reply."""
    if row.root_ts is None and row.root_pending:
        return SendOutcome("retry", error="root message not delivered yet")
    payload = row.payload
    instance_id = str(payload.get("instance_id") or "")
    label = str(payload.get("label") or instance_id[:8])
    if diagnostics is None:
        from bot.alerts.diagnostics import LogsRead, diagnostics_message

        message = diagnostics_message(
            row.incident_id or 0,
            label,
            LogsRead([], unavailable="no backend client in this bot process"),
            None,
            [],
        )
    else:
        try:
            message = await diagnostics.build(row.incident_id or 0, instance_id, label)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database: retried like a failed send
            return SendOutcome("retry", error=f"diagnostics: {type(exc).__name__}: {exc}")
    built = Claimed(**{**_fields(row), "kind": REPLY, "payload": message.kwargs()})
    return await send(web, built)


def _fields(row: Claimed) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__dataclass_fields__}
