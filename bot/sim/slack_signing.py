"""Slack's request signing (v0), as Slack computes it for requests it sends to an app.

``X-Slack-Signature`` is ``"v0=" + hex(HMAC-SHA256(signing_secret, b"v0:" + ts + b":" + body))``
and ``X-Slack-Request-Timestamp`` is ``ts`` (whole seconds since the epoch).
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"


def compute_signature(signing_secret: str, body: bytes, timestamp: int | str) -> str:
    """Return the ``v0=`` signature Slack would send for ``body`` at ``timestamp``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(
    signing_secret: str,
    body: bytes,
    timestamp: int,
    *,
    content_type: str = "application/x-www-form-urlencoded",
    signature: str | None = None,
) -> dict[str, str]:
    """Headers for a request from "Slack"; ``signature`` overrides the computed one (for tests)."""
    return {
        "Content-Type": content_type,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature
        if signature is not None
        else compute_signature(signing_secret, body, timestamp),
    }
