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
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext

RECEIVED_AT = "starpod_received_at"


def note_received(context: AsyncBoltContext) -> None:
    """Note when the request arrived (once: the first note wins)."""
    if context.get(RECEIVED_AT) is None:
        context[RECEIVED_AT] = time.perf_counter()


async def acknowledge(ack: AsyncAck, context: AsyncBoltContext, **body: Any) -> None:
    """Note when the request arrived, then ack: an empty 200, or ``body`` (Bolt's ``ack``
    keywords: ``options`` for a suggestion, ``response_action`` for a submitted form)."""
    note_received(context)
    await ack(**body)


async def ack_first(
    ack: AsyncAck, context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
) -> None:
    """A listener middleware that only acknowledges, then lets the listener run."""
    await acknowledge(ack, context)
    await next()
