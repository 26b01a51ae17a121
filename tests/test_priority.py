"""bot.priority: the sweep's loop lets the Slack loop's work pass first, never forever.

Real event loops in real threads, a real socket pair for the foreground's I/O. No timing
assertion: each test waits on the state it expects (a bounded poll on a counter).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bot.priority import (
    Precedence,
    background_loop,
    foreground_loop,
    precedence_of,
    run_foreground,
)
from tests.support.threads import WAIT_SECS, wait_until


@contextmanager
def loop_in_thread(loop: asyncio.AbstractEventLoop) -> Iterator[asyncio.AbstractEventLoop]:
    started = threading.Event()
    loop.call_soon(started.set)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    assert started.wait(WAIT_SECS)
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT_SECS * 2)
        loop.close()


async def two_steps(log: list[str]) -> str:
    log.append("first step")
    await asyncio.sleep(0)  # the next step needs another iteration of the loop
    log.append("second step")
    return "done"


def test_a_background_iteration_waits_while_the_foreground_is_busy() -> None:
    precedence = Precedence()
    steps: list[str] = []

    async def busy_from_the_first_step() -> str:
        precedence.enter()  # the foreground woke up with work while this one ran
        return await two_steps(steps)

    with loop_in_thread(background_loop(precedence, max_wait_secs=WAIT_SECS)) as loop:
        done = asyncio.run_coroutine_threadsafe(busy_from_the_first_step(), loop)
        wait_until(lambda: precedence.waiting == 1)
        assert steps == ["first step"] and not done.done()
        precedence.leave()
        assert done.result(WAIT_SECS) == "done"
    assert steps == ["first step", "second step"]
    assert precedence.yields == 1 and not precedence.busy


def test_a_busy_foreground_slows_the_background_but_never_stops_it() -> None:
    precedence = Precedence()
    precedence.enter()  # busy for the whole test: each iteration waits its maximum
    with loop_in_thread(background_loop(precedence, max_wait_secs=0.001)) as loop:

        async def many_steps() -> int:
            for _ in range(20):
                await asyncio.sleep(0)
            return 20

        assert asyncio.run_coroutine_threadsafe(many_steps(), loop).result(WAIT_SECS) == 20
    assert precedence.yields >= 20
    precedence.leave()


def test_an_idle_foreground_costs_the_background_nothing() -> None:
    precedence = Precedence()
    with loop_in_thread(background_loop(precedence)) as loop:
        steps: list[str] = []
        done = asyncio.run_coroutine_threadsafe(two_steps(steps), loop)
        assert done.result(WAIT_SECS) == "done"
    assert precedence.yields == 0


def test_the_foreground_is_busy_from_a_wake_up_with_io_until_it_waits_again() -> None:
    precedence = Precedence()
    seen: list[bool] = []
    here, there = socket.socketpair()
    with here, there, loop_in_thread(foreground_loop(precedence)) as loop:
        wait_until(lambda: not precedence.busy)  # started, waiting for I/O

        def on_readable() -> None:
            seen.append(precedence.busy)
            here.recv(16)

        loop.call_soon_threadsafe(loop.add_reader, here.fileno(), on_readable)
        wait_until(lambda: not precedence.busy)  # that wake-up (no I/O of its own) is over
        there.send(b"request")
        wait_until(lambda: bool(seen))
        wait_until(lambda: not precedence.busy)  # answered: waiting for I/O again
        loop.call_soon_threadsafe(loop.remove_reader, here.fileno())
    assert seen == [True]


def test_closing_a_busy_foreground_loop_leaves_nothing_marked() -> None:
    precedence = Precedence()
    loop = foreground_loop(precedence)
    here, there = socket.socketpair()
    with here, there:
        loop.add_reader(here.fileno(), lambda: loop.stop())
        there.send(b"x")
        loop.run_forever()  # woke with I/O, stopped while busy
        assert precedence.busy
        loop.remove_reader(here.fileno())
        loop.close()
    assert not precedence.busy


def test_run_foreground_runs_the_coroutine_on_a_loop_that_marks_the_precedence() -> None:
    precedence = Precedence()

    async def which() -> Precedence | None:
        return precedence_of(asyncio.get_running_loop())

    assert run_foreground(which(), precedence) is precedence
    assert isinstance(run_foreground(which()), Precedence)  # a new one by default
    assert asyncio.run(which()) is None  # any other loop: no precedence, nothing waits


def test_leave_without_enter_is_a_bug_said_at_once() -> None:
    with pytest.raises(RuntimeError, match="without a matching enter"):
        Precedence().leave()
    with pytest.raises(ValueError, match="positive"):
        background_loop(Precedence(), max_wait_secs=0)
