"""Every Slack entry point refuses a request Slack did not sign, and does nothing for it.

Entry points: a slash command (``/starpod restart``), a button (the card's Restart) and the
kill confirmation (the one click that destroys). Forgeries: no signature headers, a wrong
signature, the valid signature of another body, and a correctly signed request replayed more
than five minutes later. Each must get 401, and afterwards the backend has seen no restart
or kill, Slack has seen no message or answer, and no audit row was written. A correctly
signed request through the same path is the control: it acts, so the checks can fail.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.blockkit.ids import ActionId
from bot.sim.slack_signing import compute_signature
from bot.store.slack_models import AuditEntry

ADMIN = "U0ADMIN"
FORGERIES = ("missing", "wrong", "other_body", "replayed")


def _slash_body(text: str) -> bytes:
    return urlencode(
        {
            "command": "/starpod",
            "text": text,
            "user_id": ADMIN,
            "user_name": "admin",
            "channel_id": "C0OPS",
            "channel_name": "ops",
            "team_id": "T0EMULATOR",
            "response_url": "http://127.0.0.1:9/response/none",
            "trigger_id": "1.2.3",
        }
    ).encode()


def _action_body(action_id: str, value: str, block_id: str = "b") -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": ADMIN, "username": "admin", "team_id": "T0EMULATOR"},
        "team": {"id": "T0EMULATOR"},
        "channel": {"id": "C0OPS", "name": "ops"},
        "trigger_id": "1.2.3",
        "response_url": "http://127.0.0.1:9/response/none",
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "type": "button",
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        ) as response,
    ):
        await response.read()
        return response.status


def _headers(secret: str, body: bytes, forgery: str | None) -> dict[str, str]:
    now = int(time.time())
    if forgery == "missing":
        return {}
    if forgery == "wrong":
        return {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": "v0=" + "0" * 64}
    if forgery == "other_body":
        other = compute_signature(secret, b"text=list&user_id=U0ADMIN", now)
        return {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": other}
    ts = now - 301 if forgery == "replayed" else now
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": compute_signature(secret, body, ts),
    }


async def _audit_rows(bot: Any) -> int:
    async with bot.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


EntryPoint = Callable[[Any], Awaitable[tuple[bytes, str, str]]]


async def _slash_restart(bot: Any) -> tuple[bytes, str, str]:
    target = bot.sim.instance_ids()[0]
    name = bot.sim.instance(target)["name"]
    return _slash_body(f"restart {name}"), "restart", target


async def _button_restart(bot: Any) -> tuple[bytes, str, str]:
    target = bot.sim.instance_ids()[1]
    return _action_body(ActionId.CARD_RESTART, target), "restart", target


async def _kill_confirm(bot: Any) -> tuple[bytes, str, str]:
    target = bot.sim.instance_ids()[2]
    # The kill button of a card the bot showed the admin: it carries its confirmation.
    block_id = await bot.kill_block_id(ADMIN, target)
    return _action_body(ActionId.KILL_CONFIRM, target, block_id), "kill", target


ENTRY_POINTS: dict[str, EntryPoint] = {
    "slash_command": _slash_restart,
    "button": _button_restart,
    "kill_confirm": _kill_confirm,
}


async def _settle(check: Callable[[], Awaitable[bool]] | Callable[[], bool], secs: float) -> None:
    """Give a wrongly accepted request time to act (so a pass is not just a fast assert)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + secs
    while loop.time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
async def test_forged_requests_get_401_and_change_nothing(
    bot: Any, entry: str, reliability_figures: dict[str, object]
) -> None:
    body, kind, target = await ENTRY_POINTS[entry](bot)
    secret = bot.slack.signing_secret
    audit_before = await _audit_rows(bot)
    for forgery in FORGERIES:
        calls_before = len(bot.slack.calls) + len(bot.slack.responses)
        status = await _post(bot.events_url, body, _headers(secret, body, forgery))
        assert status == 401, (entry, forgery, status)
        await _settle(lambda: bot.sim.calls[(kind, target)] > 0, 0.3)
        assert bot.sim.calls[(kind, target)] == 0, (entry, forgery)
        assert len(bot.slack.calls) + len(bot.slack.responses) == calls_before, (entry, forgery)
    assert await _audit_rows(bot) == audit_before

    # The control: the same request, signed now, is accepted and acts.
    status = await _post(bot.events_url, body, _headers(secret, body, None))
    assert status == 200
    await _settle(lambda: bot.sim.calls[(kind, target)] > 0, 5.0)
    assert bot.sim.calls[(kind, target)] == 1, entry
    reliability_figures.update(entry_point=entry, forgeries_refused=len(FORGERIES), actions_taken=0)


# --- Hostile bodies: verified before parsed, bounded by what is read, malformed → 400 ---

MALFORMED_TIMESTAMPS = ("soon", "", "1e9", "-1", "9" * 40, "\u0661\u0667" * 5)


@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS)
async def test_an_unverifiable_timestamp_gets_401_and_touches_no_url_in_the_body(
    bot: Any, timestamp: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The body names a response_url that Slack's emulator would record if anything posted to
    # it, and a user the audit log would name: a refused request must use neither.
    response_url = bot.slack.new_response_url(channel_id="C0OPS", user_id=ADMIN)
    body = _slash_body("restart pod-001").replace(
        b"http%3A%2F%2F127.0.0.1%3A9%2Fresponse%2Fnone",
        urlencode({"u": response_url}).encode()[2:],
    )
    assert response_url.encode() not in body  # still url-encoded
    headers = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": "v0=" + "a" * 64}
    status = await _post(bot.events_url, body, headers)
    assert status == 401
    # Nothing was dispatched (the guard answers before Bolt sees the request), so there is
    # nothing to wait for: no answer, no audit row, no traceback.
    assert bot.slack.responses == []
    assert await _audit_rows(bot) == 0
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a forgery"


async def test_refusals_are_logged_at_most_once_a_minute(
    bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    body = _slash_body("list")
    for _ in range(20):
        assert await _post(bot.events_url, body, {"X-Slack-Request-Timestamp": "x"}) == 401
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "refused" in r.message]
    assert len(warnings) <= 1


def _signed(secret: str, body: bytes) -> dict[str, str]:
    now = int(time.time())
    return {
        "X-Slack-Request-Timestamp": str(now),
        "X-Slack-Signature": compute_signature(secret, body, now),
    }


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


MALFORMED_BODIES: dict[str, tuple[str, bytes]] = {
    "invalid_utf8": ("application/x-www-form-urlencoded", b"text=\xff\xfe&command=%2Fstarpod"),
    "payload_not_json": ("application/x-www-form-urlencoded", b"payload=%7Bnot+json"),
    "payload_json_list": ("application/x-www-form-urlencoded", b"payload=%5B1%2C2%5D"),
    "payload_deep": (
        "application/x-www-form-urlencoded",
        urlencode({"payload": _nested(100)}).encode(),
    ),
    "payload_very_deep": (
        "application/x-www-form-urlencoded",
        urlencode({"payload": _nested(30_000)}).encode(),
    ),
    "two_payloads": ("application/x-www-form-urlencoded", b"payload=%7B%7D&payload=%7B%7D"),
    "json_list": ("application/json", b"[1, 2, 3]"),
    "json_garbage": ("application/json", b'{"type": '),
    "other_type": ("text/xml", b"<a/>"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_BODIES))
async def test_malformed_bodies_get_400_when_signed_and_401_when_not(
    bot: Any, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    content_type, body = MALFORMED_BODIES[case]
    secret = bot.slack.signing_secret
    plain = {"Content-Type": content_type}
    assert await _post(bot.events_url, body, plain) == 401
    assert await _post(bot.events_url, body, {**plain, **_signed(secret, body)}) == 400
    assert bot.slack.responses == [] and await _audit_rows(bot) == 0
    assert not [r for r in caplog.records if r.exc_info]


CHUNK = b"x" * 65_536
ENDLESS_BYTES = 200 * 1024 * 1024


async def test_a_chunked_body_is_cut_at_the_limit_and_signed_commands_still_answer(
    bot: Any,
) -> None:
    """No Content-Length: the limit holds on the bytes read, and reading stops there."""
    sent = 0

    async def endless() -> Any:
        nonlocal sent
        while sent < ENDLESS_BYTES:
            sent += len(CHUNK)
            yield CHUNK

    async def one_post() -> int | None:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.post(bot.events_url, data=endless()) as response:
                    return response.status
            except (aiohttp.ClientError, ConnectionError):
                return None  # the server closed the connection once it had answered 413

    statuses = await asyncio.gather(*(one_post() for _ in range(4)))
    assert set(statuses) <= {413, None}, statuses
    # The server stopped reading: what it accepted is the limit plus socket buffers, a far
    # cry from the 4 x 200 MB the clients were ready to send.
    assert sent < 4 * 32 * 1024 * 1024, sent
    # The bot still answers a signed command.
    body = _slash_body("help")
    assert await _post(bot.events_url, body, _signed(bot.slack.signing_secret, body)) == 200
