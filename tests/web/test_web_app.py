"""The web server: signed Slack requests only, probes, limits, extra routes, port 0."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.sim.slack import SlackAckTimeout
from bot.web.app import create_web_app
from bot.web.ratelimit import RateLimiter
from bot.web.server import freeze_startup_heap, serve_web
from tests.slack.conftest import Bot


async def _nothing_happened(bot: Bot) -> None:
    await asyncio.sleep(0.3)  # give a wrongly accepted request time to do something
    assert bot.emulator.responses == []
    assert bot.emulator.messages("C0OPS") == []
    assert bot.emulator.ephemerals() == []
    assert bot.sim.calls[("restart", bot.ids[0])] == 0
    assert await bot.audit() == []


async def test_a_wrong_signature_is_refused_and_nothing_happens(bot: Bot) -> None:
    reply = await bot.slash("restart pod-001", signature="v0=" + "0" * 64)
    assert reply.status_code == 401
    await _nothing_happened(bot)


async def test_a_timestamp_older_than_five_minutes_is_refused(bot: Bot) -> None:
    reply = await bot.slash("restart pod-001", timestamp=int(time.time()) - 301)
    assert reply.status_code == 401
    await _nothing_happened(bot)


async def test_a_replayed_click_with_a_bad_signature_is_refused(bot: Bot) -> None:
    reply = await bot.emulator.send_block_action(
        bot.events_url,
        action_id="starpod.kill.confirm",
        value=bot.ids[0],
        user_id="U0ADMIN",
        signature="v0=deadbeef",
    )
    assert reply.status_code == 401
    await asyncio.sleep(0.2)
    assert bot.sim.calls[("kill", bot.ids[0])] == 0


async def test_the_ack_comes_before_the_work(bot: Bot) -> None:
    # The backend answers only after a second. The emulator raises SlackAckTimeout past
    # Slack's 3 s; beyond that, the ack must arrive before the answer exists at all.
    bot.sim.set_faults(latency_secs=1.0, endpoints={"list"})
    reply = await bot.slash("list")
    assert reply.status_code == 200 and reply.text == ""
    assert bot.emulator.ephemerals("U0OPERATOR") == []  # acked while the work was pending
    await bot.emulator.wait_for(lambda: bool(bot.emulator.ephemerals("U0OPERATOR")), 6)
    assert bot.sim.calls[("list", "")] == 1


async def test_healthz(bot: Bot) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as r:
        assert r.status == 200 and await r.text() == "ok"


async def test_payload_too_large(bot: Bot) -> None:
    async with aiohttp.ClientSession() as session:
        body = b"x" * 1_000_001
        async with session.post(bot.events_url, data=body) as response:
            assert response.status == 413


async def test_ssh_key_rate_limit_says_when_to_retry(bot: Bot) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            async with session.get(f"{bot.url}/ssh-key/{'C' * 43}") as response:
                assert response.status == 404
        async with session.get(f"{bot.url}/ssh-key/{'C' * 43}") as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) >= 1
            assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("ready", "status"), [(True, 200), (False, 503), (None, 503)])
async def test_readiness_route_and_extra_routes(bot: Bot, ready: bool | None, status: int) -> None:
    async def readiness() -> bool:
        if ready is None:
            raise RuntimeError("probe exploded")
        return ready

    async def metrics(_request: Request) -> Response:
        return PlainTextResponse("up 1\n")

    app = create_web_app(
        slack_app=bot.app,
        signing_secret=bot.settings.slack.signing_secret,
        ssh_links=bot.deps.ssh_links,
        readiness=readiness,
        extra_routes=[Route("/metrics", metrics)],
    )
    async with serve_web(app) as server, aiohttp.ClientSession() as session:
        assert server.port != 0
        async with session.get(f"{server.url}/readyz") as response:
            assert response.status == status
        async with session.get(f"{server.url}/metrics") as response:
            assert await response.text() == "up 1\n"
        async with session.get(f"{server.url}/nope") as response:
            assert response.status == 404
        # The same Slack app answers on this server too.
        reply = await bot.emulator.send_slash_command(f"{server.url}/slack/events", "help")
        assert reply.status_code == 200


def test_rate_limiter_window() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=2, window=10, monotonic=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")
    assert limiter.retry_after("a") == 11
    now[0] = 10.0
    assert limiter.allow("a")
    with pytest.raises(ValueError):
        RateLimiter(limit=0)


def test_rate_limiter_memory_is_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=1, window=10, max_keys=4, monotonic=lambda: now[0])
    for i in range(20):
        assert limiter.allow(f"k{i}")
    assert len(limiter._hits) <= 4


async def test_slow_acks_would_be_caught_by_the_emulator(bot: Bot) -> None:
    # Guards the ack tests: the emulator does raise when a bot answers too late.
    async def slow(_request: Request) -> Response:
        await asyncio.sleep(1.0)
        return PlainTextResponse("")

    async with serve_web(Starlette(routes=[Route("/slow", slow, methods=["POST"])])) as server:
        with pytest.raises(SlackAckTimeout):
            await bot.emulator.send_slash_command(f"{server.url}/slow", "help", ack_timeout=0.3)


def test_freeze_startup_heap() -> None:
    import gc

    try:
        assert freeze_startup_heap() > 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
