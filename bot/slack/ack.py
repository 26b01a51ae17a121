"""Acknowledge first: before a listener even starts, Slack gets its 200.

In Bolt's async HTTP mode (``process_before_response=False``) the listener runs as a task
and the HTTP answer waits, polling every 10 ms, until the listener calls ``ack()``. Acking
in listener middleware, before the task is created, returns the 200 at once, and makes it
structurally impossible for the backend, the database or the Web API to delay an
acknowledgement. Every listener's middleware (``middleware.ListenerPipeline.admit``)
starts with :func:`acknowledge`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

RECEIVED_AT = "starpod_received_at"


async def acknowledge(ack: AsyncAck, context: AsyncBoltContext) -> None:
    """Note when the request arrived, then ack with an empty 200."""
    context[RECEIVED_AT] = time.perf_counter()
    await ack()


async def ack_first(
    ack: AsyncAck, context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
) -> None:
    """A listener middleware that only acknowledges, then lets the listener run."""
    await acknowledge(ack, context)
    await next()
