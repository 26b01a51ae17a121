"""Acknowledge first: a listener middleware that acks before the listener even starts.

In Bolt's async HTTP mode (``process_before_response=False``) the listener runs as a task
and the HTTP answer waits, polling every 10 ms, until the listener calls ``ack()``. Acking
here, before the task is created, returns the 200 at once, and makes it structurally
impossible for the backend, the database or the Web API to delay an acknowledgement.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

RECEIVED_AT = "starpod_received_at"


async def ack_first(
    ack: AsyncAck, context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
) -> None:
    """Ack with an empty 200, note when the request arrived, then run the listener."""
    context[RECEIVED_AT] = time.perf_counter()
    await ack()
    await next()
