"""Following an accepted action to its end: poll the backend until done, failed or timed out.

Between polls nothing is being worked on, so the caller's ``while_waiting`` context (the
Slack app hands over its work slot with it) wraps only the sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from bot.backend.client import InstanceClient
from bot.backend.errors import BackendError, BackendStatusError
from bot.backend.models import Instance
from bot.instances.actor import Verb
from bot.instances.outcome import reached

log = logging.getLogger(__name__)

WhileWaiting = Callable[[], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True, slots=True)
class Polled:
    """Where polling ended: ``state`` is done, failed or pending."""

    state: str
    status: str  # the raw status last seen ("deleted" when the backend forgot it)
    instance: Instance | None


def look(verb: Verb, current: Instance, before: str, elapsed: float) -> Polled | None:
    """One look at ``current``: the end it shows, or None while the action still runs."""
    verdict = reached(verb, current, before, elapsed)
    if verdict is True:
        return Polled("done", current.status_raw, current)
    if verdict is False:
        return Polled("failed", current.status_raw, current)
    return None


async def poll_until_settled(
    backend: InstanceClient,
    verb: Verb,
    instance: Instance,
    before: str,
    *,
    started: float,
    interval: float,
    give_up_after: float,
    while_waiting: WhileWaiting | None = None,
) -> Polled:
    """Poll ``instance`` until ``verb``'s end state, an error status, or ``give_up_after`` seconds.

    ``started`` is the loop time the action began; ``before`` the status it began from.
    """
    loop = asyncio.get_running_loop()
    deadline = started + give_up_after
    last_status, last = instance.status_raw, instance
    while True:
        elapsed = loop.time() - started
        current: Instance | None
        try:
            current = await backend.get_instance(instance.id)
            if (
                verb is Verb.RESTART
                and current.status == "running"
                and before == "running"
                and current.health is None
            ):
                health = await backend.get_health(instance.id)
                current = current.model_copy(update={"health": health})
        except BackendStatusError as exc:
            if exc.status_code == 404 and verb is Verb.KILL:
                return Polled("done", "deleted", None)
            log.info("polling %s after %s: %s", instance.id, verb, exc)
            current = None
        except BackendError as exc:
            log.info("polling %s after %s: %s", instance.id, verb, exc)
            current = None
        if current is not None:
            last_status, last = current.status_raw, current
            ended = look(verb, current, before, elapsed)
            if ended is not None:
                return ended
        if loop.time() >= deadline:
            return Polled("pending", last_status, last)
        pause = min(interval, max(0.0, deadline - loop.time()))
        # Waiting is not working: the caller may give its slot to another request meanwhile.
        async with while_waiting() if while_waiting is not None else contextlib.nullcontext():
            await asyncio.sleep(pause)
