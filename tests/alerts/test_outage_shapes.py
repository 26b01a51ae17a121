"""Slack outages of every shape: each message arrives, in order, and nothing is failed.

The Slack emulator answers the bot's real ``AsyncWebClient`` over loopback with the
bodies real outages have: an HTML error page, ``upstream error`` as plain text, that
text labelled ``application/json``, and Slack's own JSON errors. Only an error name that
can never succeed marks a row failed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.alerts.sending import PERMANENT_ERRORS, classify
from tests.alerts.conftest import Harness
from tests.alerts.test_delivery import assert_ordered_per_stream, drain, start

# (status, body) of each outage shape; ``bad_json`` under 200 is a proxy's answer too.
SHAPES = [
    (500, "html"),
    (500, "text"),
    (500, "bad_json"),
    (502, "html"),
    (503, "text"),
    (504, "json"),
    (200, "bad_json"),
]


@pytest.mark.parametrize(("status", "body"), SHAPES)
async def test_every_message_arrives_in_order_after_an_outage_of_this_shape(
    make_harness: Callable[..., Harness], status: int, body: str
) -> None:
    h = make_harness()
    ids = await start(h, 4)
    await h.deliver()
    h.slack.fail_next(12, status=status, body=body)

    for victim in ids[:3]:
        h.sim.stop_heartbeat(victim)
    h.advance(100)
    await h.sweep()  # three incidents: a root and a restart reply each
    h.advance(30)
    await h.sweep()  # all recover while Slack is still down
    await drain(h)

    rows = await h.outbox()
    assert {row.state for row in rows} <= {"sent", "superseded"}, [
        (r.kind, r.state, r.last_error) for r in rows
    ]
    failed_attempts = [c for c in h.slack.calls if c.injected]
    assert len(failed_attempts) == 12, "the outage was seen"
    roots = h.channel()
    assert len(roots) == 3
    for root in roots:
        assert [r.text.split(" ")[0] for r in h.replies(root)] == ["🔁", "✅"]
        final = h.slack.find_message(root.ts)
        assert final is not None and "Resolved after 30 s" in str(final.blocks)
    posted = [c for c in h.slack.calls_to("chat.postMessage") if c.ok]
    assert len(posted) == 9, "three roots and six replies, each exactly once"
    assert h.delivery.failed_total == 0
    assert_ordered_per_stream(rows)


async def test_an_error_name_that_can_never_succeed_fails_the_row_and_no_other(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness()
    ids = await start(h, 2)
    await h.deliver()
    # An unknown error name is retried; a permanent one fails the row at once.
    h.slack.fail_next(1, status=200, error="some_new_error", methods={"chat.postMessage"})
    h.slack.fail_next(1, status=200, error="channel_not_found", methods={"chat.postMessage"})
    h.sim.stop_heartbeat(ids[0])
    h.advance(100)
    await h.sweep()
    await drain(h)
    rows = await h.outbox()
    [failed] = [r for r in rows if r.state == "failed"]
    assert failed.last_error == "channel_not_found (HTTP 200)"
    assert h.delivery.failed_total == 1


def test_only_names_in_the_permanent_table_are_permanent() -> None:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_slack_response import AsyncSlackResponse

    def answer(status: int, data: dict[str, object] | str) -> SlackApiError:
        response = AsyncSlackResponse(
            client=None,
            http_verb="POST",
            api_url="http://127.0.0.1/api/chat.postMessage",
            req_args={},
            data=data,  # type: ignore[arg-type]
            headers={},
            status_code=status,
        )
        return SlackApiError("x", response)

    for name in ("channel_not_found", "not_in_channel", "invalid_blocks", "msg_too_long"):
        assert name in PERMANENT_ERRORS
        assert classify(answer(200, {"ok": False, "error": name})).status == "failed"
    for name in ("internal_error", "fatal_error", "something_new", ""):
        assert classify(answer(200, {"ok": False, "error": name})).status == "retry"
    for status in (500, 502, 503, 504, 520):
        outcome = classify(answer(status, "upstream error"))
        assert outcome.status == "retry" and f"HTTP {status}" in (outcome.error or "")
    assert classify(answer(500, {"ok": False, "error": "channel_not_found"})).status == "failed"
