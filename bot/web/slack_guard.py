"""The door in front of Bolt: what reaches ``/slack/events`` before anything is parsed.

Order matters, and each step refuses with one status and nothing else:

1. **Read at most** ``max_body`` bytes of what the client actually sends, chunked or not
   (a ``Content-Length`` header is only a hint): over the limit → 413, reading stops there.
2. **Verify the signature** (Slack's v0 HMAC over ``v0:<timestamp>:<body>``, timestamp
   within five minutes) before the body is parsed: any failure, for any reason (missing
   or non-numeric timestamp, bad signature, no signing secret in Socket Mode) → 401. The
   body of a refused request is never looked at, so no ``response_url`` or user id in it
   is ever used, nothing is audited, and at most one WARNING line per minute says how
   many were refused.
3. **Check the shape** Slack always sends (UTF-8; a form body whose ``payload`` is a JSON
   object, or a JSON object body; bounded nesting) → 400 otherwise.

Only then does Bolt see the request (it verifies the signature once more, which costs
microseconds).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import ClientDisconnect, Request

from bot.errors import StarpodBotError

log = logging.getLogger(__name__)

MAX_SLACK_BODY = 1_000_000  # Slack's payloads are a few kB; a view submission stays far below
MAX_SIGNATURE_AGE_SECS = 300  # Slack's documented replay window
MAX_JSON_DEPTH = 64  # Slack's deepest payloads (view state) nest about a dozen levels
WARN_EVERY_SECS = 60.0
_TIMESTAMP_DIGITS = 12  # 10 digits until the year 2286; more is not a timestamp
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


class Refused(StarpodBotError):
    """The request is refused with ``status``; ``reason`` is for the log, never the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refusing past ``limit`` bytes of what was really received."""
    announced = request.headers.get("content-length")
    if announced is not None and (not announced.isdigit() or int(announced) > limit):
        raise Refused(413, "announced body over the limit")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused(413, "body over the limit")
    except ClientDisconnect:
        raise Refused(400, "client went away mid-body") from None
    return bytes(body)


def signature_problem(
    secret: str | None, headers: Mapping[str, str], body: bytes, now: float
) -> str | None:
    """Why the request's Slack signature does not hold (None when it does)."""
    if not secret:
        return "no signing secret is configured (Socket Mode only)"
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _TIMESTAMP_DIGITS):
        return "missing or malformed X-Slack-Request-Timestamp"
    if abs(now - int(timestamp)) > MAX_SIGNATURE_AGE_SECS:
        return "timestamp outside the five-minute window"
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not (signature.isascii() and hmac.compare_digest(expected, signature)):
        return "signature mismatch"
    return None


def shape_problem(content_type: str, body: bytes) -> str | None:
    """Why ``body`` is not something Slack sends (None when it could be)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == _JSON:
        return _json_object_problem(text)
    if media_type not in (_FORM, ""):
        return f"unsupported content type {media_type[:64]!r}"
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=200)
    except ValueError:
        return "form body has too many fields"
    payloads = fields.get("payload")
    if payloads is None:
        return None
    if len(payloads) != 1:
        return "more than one payload field"
    return _json_object_problem(payloads[0])


def _json_object_problem(text: str) -> str | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return "not valid JSON"
    if not isinstance(value, dict):
        return "JSON is not an object"
    if _depth_over(value, MAX_JSON_DEPTH):
        return "JSON nests too deeply"
    return None


def _depth_over(value: Any, limit: int) -> bool:
    """True when ``value`` nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


@dataclass
class _RefusalLog:
    """At most one WARNING per ``every`` seconds, counting what it did not print."""

    every: float
    monotonic: Callable[[], float]
    last: float | None = None
    unlogged: int = 0

    def note(self, reason: str) -> None:
        now = self.monotonic()
        self.unlogged += 1
        if self.last is not None and now - self.last < self.every:
            return
        log.warning("refused %d unverifiable Slack request(s) (latest: %s)", self.unlogged, reason)
        self.last, self.unlogged = now, 0


class SlackRequestGuard:
    """Reads, verifies and shape-checks a request to ``/slack/events`` (see the module doc)."""

    def __init__(
        self,
        signing_secret: str | None,
        *,
        max_body: int = MAX_SLACK_BODY,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret = signing_secret
        self._max_body = max_body
        self._clock = clock
        self._refusals = _RefusalLog(WARN_EVERY_SECS, monotonic)

    async def admit(self, request: Request) -> bytes:
        """The verified body of ``request``; raises :class:`Refused` otherwise."""
        body = await read_body(request, self._max_body)
        problem = signature_problem(self._secret, request.headers, body, self._clock())
        if problem is not None:
            self._refusals.note(problem)
            raise Refused(401, problem)
        problem = shape_problem(request.headers.get("content-type", ""), body)
        if problem is not None:
            log.info("refused a signed but malformed Slack request: %s", problem)
            raise Refused(400, problem)
        return body
