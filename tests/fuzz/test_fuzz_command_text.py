"""Any `/starpod` text → a command or a usage answer: never an exception, never a message
that Slack would reject, never a live mention or link made of what the user typed.

The answers are checked with the Slack emulator's own limit checks
(:func:`bot.sim.slack_checks.check_message_content`), the same code that rejects a bad
``chat.postMessage``, so "within Slack's limits" means what the emulator enforces.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.blockkit.limits import Reply
from bot.catalog import SPECS, Role, Subcommand
from bot.sim.slack_checks import check_message_content
from bot.slack.blocks import help_message, usage_answer
from bot.slack.parser import Command, UsageProblem, parse

pytestmark = pytest.mark.slow

# Test modules cannot import each other (importlib mode): the budget is read here too.
FUZZ_EXAMPLES = int(os.environ.get("STARPOD_FUZZ_EXAMPLES", "150"))

_SUBCOMMANDS = [s.value for s in Subcommand]
_OPTIONS = sorted({o for spec in SPECS.values() for o in spec.options} | {"--no-restart"})
_SLACK_MARKUP = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0123|@oncall>",
    "<@U0ADMIN>",
    "<@U0ADMIN|boss>",
    "<#C0OPS|ops>",
    "<http://evil.example|click>",
    "&lt;!channel&gt;",
    "&amp;lt;",
    "&lt;",
    "&gt;",
    "&amp;",
]
_ODD = ["\u201c", "\u201d", "\u2014", "\u2013", "\u200b", "\ufeff", "\u00a0", "`", "```", "\\", '"']

# Words users plausibly type, mixed with markup, odd punctuation and arbitrary unicode.
_word = st.one_of(
    st.sampled_from(_SUBCOMMANDS),
    st.sampled_from(_OPTIONS),
    st.sampled_from(_SLACK_MARKUP),
    st.sampled_from(_ODD),
    st.sampled_from(["30m", "2h", "1d", "0m", "99999999999d", "1h30m", "-5", "500", "1e9"]),
    st.text(max_size=30),
    st.text(alphabet="<>&@!#|^:/.-_=\"' ", max_size=20),
)
command_text = st.one_of(
    st.lists(_word, max_size=10).map(" ".join),
    st.text(max_size=4000),
)

# The only "<…>" a reply may contain: what the bot itself writes (dates, its own mentions).
_ALLOWED_MARKUP = re.compile(r"<!date\^\d+\^[^|<>]*\|[^<>]*>|<@U[A-Z0-9]+>|<#C[A-Z0-9]+>")


def _mrkdwn_texts(value: Any) -> list[str]:
    """Every string under a ``text`` key of a mrkdwn/plain_text object, recursively."""
    found: list[str] = []
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
            found.append(value["text"])
        for item in value.values():
            found.extend(_mrkdwn_texts(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_mrkdwn_texts(item))
    return found


def assert_sendable_and_inert(message: Reply) -> None:
    """Slack would accept ``message`` and nothing in it pings, links or formats by surprise."""
    result = check_message_content(text=message.text, blocks=message.blocks)
    assert result.ok, (result.error, result.detail, message)
    for text in [message.text, *_mrkdwn_texts(message.blocks)]:
        leftover = _ALLOWED_MARKUP.sub("", text)
        assert "<" not in leftover and ">" not in leftover, text


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=command_text)
def test_any_command_text_gives_a_command_or_a_sendable_usage_answer(
    text: str, reliability_figures: dict[str, object]
) -> None:
    result = parse(text)
    reliability_figures["bad_inputs_tried"] = (
        int(reliability_figures.get("bad_inputs_tried", 0)) + 1
    )
    if isinstance(result, UsageProblem):
        reliability_figures["usage_answers"] = int(reliability_figures.get("usage_answers", 0)) + 1
        assert result.usage, result
        assert_sendable_and_inert(usage_answer(result))
        return
    assert isinstance(result, Command)
    assert isinstance(result.subcommand, Subcommand)
    if result.ref is not None:
        # What reaches the backend client is bounded and never empty.
        assert 0 < len(result.ref) <= 200
    if result.subcommand is Subcommand.HELP:
        for role in (None, Role.VIEWER, Role.ADMIN):
            assert_sendable_and_inert(help_message(topic=result.options.topic, role=role))
