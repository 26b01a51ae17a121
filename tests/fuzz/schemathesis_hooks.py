"""Schemathesis hooks for the flaky-backend gateway run (loaded through SCHEMATHESIS_HOOKS).

``not_a_server_error`` counts every 5xx, but with a failing backend the gateway is right to
answer 502/503. The promise is narrower: the gateway itself never fails, i.e. never 500.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def no_internal_error(ctx: Any, response: Any, case: Any) -> None:
    """Fail on a 500: the gateway's own bug, never an answer it means to give."""
    if response.status_code == 500:
        raise AssertionError(f"500 Internal Server Error: {response.text[:300]}")
