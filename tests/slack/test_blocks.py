"""The pure Block Kit builders: content, escaping and Slack's limits.

Every message is checked with the Slack emulator's own validator (the same code that makes
the emulator answer ``invalid_blocks``), so "valid" here means what it means end to end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backend.errors import (
    AmbiguousInstance,
    BackendStatusError,
    BackendUnavailable,
    InstanceNotFound,
)
from bot.backend.models import HealthInfo, Instance, LogEntry, LogLevel, SshInfo
from bot.blockkit.ids import ActionId, MenuChoice, parse_menu_value
from bot.blockkit.limits import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    Reply,
    fallback,
    fit_blocks,
    split_text,
    truncate,
)
from bot.blockkit.mrkdwn import (
    DASH,
    code,
    code_block_line,
    date,
    duration,
    escape,
    plain,
    unescape,
    user,
)
from bot.blockkit.sparkline import bucketize, sparkline
from bot.catalog import SPECS, Role, Subcommand
from bot.monitor.events import MonitorStatus
from bot.sim.slack_checks import check_message_content
from bot.slack import blocks as b
from bot.slack.parser import UsageProblem, parse

NOW = datetime(2026, 3, 24, 12, 0, tzinfo=UTC)
EVIL = "<!channel> & <@U0BOSS>"


def make_instance(
    index: int = 0,
    *,
    name: str | None = "pod-7",
    status: str = "running",
    region: str | None = "eu-west-1",
    health: dict[str, Any] | None = None,
) -> Instance:
    data: dict[str, Any] = {
        "id": f"{index:08x}-aaaa-4bbb-8ccc-{index:012x}",
        "name": name,
        "status": status,
        "region": region,
        "created_at": int((NOW - timedelta(days=3)).timestamp()),
        "updated_at": int((NOW - timedelta(hours=2)).timestamp()),
    }
    if health is not None:
        data["health"] = health
    return Instance.model_validate(data)


def make_health(*, heartbeat_age: float = 5, cpu: float = 12.5) -> HealthInfo:
    return HealthInfo.model_validate(
        {
            "cpu_percent": cpu,
            "memory_mb": 1536,
            "disk_mb": 20480,
            "last_heartbeat": (NOW - timedelta(seconds=heartbeat_age)).timestamp(),
            "uptime_secs": 3 * 86400 + 4 * 3600,
        }
    )


def assert_valid(reply: Reply) -> None:
    check = check_message_content(text=reply.text, blocks=reply.blocks)
    assert check.ok, (check.error, check.detail)
    assert len(reply.blocks) <= MAX_BLOCKS


def all_text(reply: Reply) -> str:
    return reply.text + json.dumps(reply.blocks, ensure_ascii=False)


def mrkdwn_texts(value: Any) -> list[str]:
    """Every string Slack parses for mentions: mrkdwn objects (plain_text is shown as is)."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn":
            return [value["text"]]
        if value.get("type") == "plain_text":
            return []
        return [t for v in value.values() for t in mrkdwn_texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in mrkdwn_texts(v)]
    return []


def assert_no_ping(reply: Reply) -> None:
    """No raw Slack control sequence from the evil name survives where Slack parses it."""
    parsed = "\n".join([reply.text, *mrkdwn_texts(reply.blocks)])
    assert "<!channel>" not in parsed
    assert "<@U0BOSS>" not in parsed
    assert "&lt;!channel&gt;" in parsed


# -- mrkdwn --------------------------------------------------------------------------------


def test_escape_order_and_helpers() -> None:
    assert escape("<a> & <b>") == "&lt;a&gt; &amp; &lt;b&gt;"
    assert escape("&lt;") == "&amp;lt;"
    assert code("a`b <c>") == "`a'b &lt;c&gt;`"
    assert "```" not in code_block_line("x ``` y")
    assert user("U0ANA") == "<@U0ANA>"
    assert user("<!channel>") == "&lt;!channel&gt;"


def test_plain_turns_mrkdwn_into_what_a_notification_shows() -> None:
    at = datetime(2026, 11, 28, 14, 2, tzinfo=UTC)
    text = (
        f"🔄 {user('U0ANA')} restarted *pod-7* {code('a1b2')} at {date(at)}: "
        f"{escape('<!channel> & <b>')} <!subteam^S0OPS|@oncall> <https://x.example|the page>"
    )
    assert plain(text) == (
        "🔄 @U0ANA restarted pod-7 a1b2 at 2026-11-28 14:02 UTC: <!channel> & <b> @oncall the page"
    )
    assert unescape(escape("&lt; <a> & b")) == "&lt; <a> & b"


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_a_fallback_built_from_plain_text_is_escaped_exactly_once(raw: str) -> None:
    # What a builder escapes for its blocks, plain() brings back for the fallback
    # (``*`` and backticks aside: those are formatting and plain() drops them).
    flat = " ".join(raw.replace("*", "").replace("`", "").split())
    if flat:
        assert fallback(plain(escape(flat))) == truncate(escape(flat), MAX_FALLBACK_TEXT)


def test_a_truncated_log_answer_escapes_its_fallback_once() -> None:
    answer = b.log_answer(
        make_instance(name="a<b>&c"), [], fetched=0, tail=50, truncated="cut at 1 MB"
    )
    assert "a&lt;b&gt;&amp;c" in answer.reply.text
    assert "&amp;lt;" not in answer.reply.text and "&amp;amp;" not in answer.reply.text
    assert answer.reply.text.endswith("(cut at 1 MB)")


@pytest.mark.parametrize(
    ("secs", "text"),
    [
        (0, "0 s"),
        (14, "14 s"),
        (192, "3 m 12 s"),
        (3600, "1 h"),
        (7500, "2 h 5 m"),
        (2 * 86400 + 3600, "2 d 1 h"),
    ],
)
def test_duration(secs: float, text: str) -> None:
    assert duration(secs) == text


# -- limits ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=5000), st.integers(min_value=1, max_value=400))
def test_split_text_round_trips_within_the_limit(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(len(p) <= limit for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")


def test_truncate_is_visible() -> None:
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abc", 4) == "abc"


def test_fit_blocks_splits_long_sections_and_says_what_it_left_out() -> None:
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x\n" * 4000}}
    many = [{"type": "divider"}] * 60
    fitted = fit_blocks([long_section, *many])
    assert len(fitted) == MAX_BLOCKS
    assert "more blocks not shown" in fitted[-1]["elements"][0]["text"]
    assert all(len(bl["text"]["text"]) <= 3000 for bl in fitted if bl["type"] == "section")
    button = {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "b" * 100}, "action_id": "a"}
        ],
    }
    assert len(fit_blocks([button])[0]["elements"][0]["text"]["text"]) == 75


def test_every_action_id_fits() -> None:
    assert all(len(a.value) <= 255 for a in ActionId)


# -- help and errors -------------------------------------------------------------------------


def test_help_lists_every_subcommand_with_its_usage() -> None:
    reply = b.help_message(role=Role.OPERATOR)
    assert_valid(reply)
    text = all_text(reply)
    for spec in SPECS.values():
        assert escape(spec.usage_line).split(" ")[1] in text
    assert "Your role: *operator*" in text
    assert "everyone here is an operator" in all_text(b.help_message(open_access=True))


def test_help_topic_shows_examples() -> None:
    reply = b.help_message(topic=Subcommand.LOGS)
    assert_valid(reply)
    assert "--level warn" in all_text(reply)
    assert "*viewer*" in all_text(reply)


def test_usage_answer_escapes_what_the_user_typed() -> None:
    problem = parse("lgos &lt;!channel&gt;")
    assert isinstance(problem, UsageProblem)
    reply = b.usage_answer(problem)
    assert_valid(reply)
    assert "Did you mean `logs`?" in all_text(reply)
    assert "Usage:" in all_text(reply)
    problem = parse("&lt;!channel&gt;")
    assert isinstance(problem, UsageProblem)
    assert "<!channel>" not in "".join(mrkdwn_texts(b.usage_answer(problem).blocks))


def test_backend_errors_show_status_and_body() -> None:
    error = BackendStatusError(method="GET", path="/instances", status_code=500, body="<b>boom</b>")
    reply = b.backend_error_answer(error)
    assert_valid(reply)
    text = all_text(reply)
    assert "500" in text and "&lt;b&gt;boom&lt;/b&gt;" in text
    down = b.backend_error_answer(
        BackendUnavailable(method="GET", path="/instances", reason="refused")
    )
    assert "not answering" in all_text(down)


def test_lookup_errors() -> None:
    assert "No instance matches `nope`" in all_text(
        b.backend_error_answer(InstanceNotFound(ref="nope"))
    )
    candidates = [make_instance(i, name=f"web-{i}") for i in range(14)]
    reply = b.backend_error_answer(AmbiguousInstance(ref="0000", candidates=candidates))
    assert_valid(reply)
    text = all_text(reply)
    assert "matches 14 instances" in text
    assert candidates[0].id in text and "and 4 more" in text


def test_unexpected_error_shows_only_an_id() -> None:
    reply = b.unexpected_error_answer("ab12cd")
    assert "`ab12cd`" in all_text(reply)
    assert "Traceback" not in all_text(reply)


# -- list -----------------------------------------------------------------------------------


def test_list_row_has_emoji_name_short_id_region_uptime_and_menu() -> None:
    inst = make_instance(health={**make_health().model_dump(), "last_heartbeat": NOW.timestamp()})
    reply = b.list_page([inst], b.ListQuery(), now=NOW)
    assert_valid(reply)
    row = reply.blocks[1]
    assert row["text"]["text"].startswith("🟢 *pod-7* `00000000`")
    assert "eu-west-1" in row["text"]["text"] and "up 3 d 4 h" in row["text"]["text"]
    values = [o["value"] for o in row["accessory"]["options"]]
    assert [parse_menu_value(v)[0] for v in values] == [  # type: ignore[index]
        MenuChoice.HEALTH,
        MenuChoice.LOGS,
        MenuChoice.SSH,
        MenuChoice.RESTART,
        MenuChoice.KILL,
    ]


def test_list_counts_by_status_on_top() -> None:
    fleet = [
        make_instance(i, status=s) for i, s in enumerate(["running"] * 3 + ["error", "paused"])
    ]
    top = b.list_page(fleet, b.ListQuery(), now=NOW).blocks[0]["text"]["text"]
    assert "*5 instances*" in top
    assert "🔴 1 error" in top and "🟢 3 running" in top and "⏸️ 1 paused" in top


def test_list_puts_broken_instances_first_and_filters() -> None:
    fleet = [
        make_instance(0, name="a", status="running"),
        make_instance(1, name="b", status="error"),
    ]
    rows = b.list_page(fleet, b.ListQuery(), now=NOW).blocks[1:]
    assert "*b*" in rows[0]["text"]["text"]
    only = b.list_page(fleet, b.ListQuery(status="running"), now=NOW)
    assert "Showing 1 matching" in all_text(only)
    none = b.list_page(fleet, b.ListQuery(region="mars"), now=NOW)
    assert "No instance matches" in all_text(none)


def test_500_instances_page_within_limits_and_cover_the_fleet() -> None:
    fleet = [make_instance(i, name=f"pod-{i:03d}") for i in range(500)]
    seen: list[str] = []
    query = b.ListQuery()
    pages = 0
    while True:
        reply = b.list_page(fleet, query, now=NOW)
        assert_valid(reply)
        pages += 1
        seen += [
            bl["block_id"].split(":", 1)[1]
            for bl in reply.blocks
            if bl.get("block_id", "").startswith("starpod.list.row")
        ]
        pager = next(
            (bl for bl in reply.blocks if bl.get("block_id") == "starpod.list.pager"), None
        )
        assert pager is not None
        nxt = [e for e in pager["elements"] if e["action_id"] == ActionId.LIST_PAGE_NEXT]
        if not nxt:
            break
        query = b.ListQuery.from_value(nxt[0]["value"])
    assert pages == 25
    assert sorted(seen) == sorted(i.id for i in fleet)


def test_list_query_value_round_trip_and_garbage() -> None:
    query = b.ListQuery(status="running", region="eu-west-1", page=3)
    assert b.ListQuery.from_value(query.to_value()) == query
    assert b.ListQuery.from_value("not json") == b.ListQuery()
    assert b.ListQuery.from_value('{"p": -4}') == b.ListQuery()


def test_list_escapes_names_and_regions() -> None:
    reply = b.list_page([make_instance(name=EVIL, region="<!here>")], b.ListQuery(), now=NOW)
    assert_valid(reply)
    assert_no_ping(reply)
    assert "<!here>" not in json.dumps(reply.blocks)


def test_empty_fleet() -> None:
    reply = b.list_page([], b.ListQuery(), now=NOW)
    assert_valid(reply)
    assert "No instances yet" in all_text(reply)


# -- health ---------------------------------------------------------------------------------


def test_health_card_shows_figures_sparklines_and_actions() -> None:
    view = b.HealthView(
        instance=make_instance(),
        now=NOW,
        stale_after_secs=90,
        health=make_health(),
        cpu=[10.0, None, 50.0, 90.0],
        memory=[500.0, 600.0, None, 700.0],
        samples=40,
        uptime_24h=0.993,
    )
    reply = b.health_card(view)
    assert_valid(reply)
    text = all_text(reply)
    assert "12.5 %" in text and "1.5 GB" in text and "20.0 GB" in text and "3 d 4 h" in text
    assert "5 s ago" in text and "stale" not in text
    assert "99.3 %" in text and "40 samples" in text
    assert "▁" in text or "▂" in text
    actions = [
        e["action_id"] for bl in reply.blocks if bl["type"] == "actions" for e in bl["elements"]
    ]
    assert ActionId.CARD_PAUSE in actions and ActionId.KILL_CONFIRM in actions


def test_the_sparkline_range_holds_the_live_cpu_figure_beside_it() -> None:
    """Issue 16: the stored hour said 10-40 % while the live figure beside it said 85 %."""
    view = b.HealthView(
        instance=make_instance(),
        now=NOW,
        stale_after_secs=90,
        health=make_health(cpu=85.0),
        cpu=[10.0, 20.0, 40.0],
        memory=[500.0, 600.0, 700.0],
        samples=30,
    )
    card = b.health_card(view)
    figures = next(bl for bl in card.blocks if "fields" in bl)
    assert "*CPU*\n85.0 %" in [f["text"] for f in figures["fields"]]
    hour = next(bl["text"]["text"] for bl in card.blocks if "*Last hour*" in str(bl))
    assert "the last bar is now" in hour
    cpu_line = next(line for line in hour.splitlines() if "CPU " in line)
    assert cpu_line.endswith(f"10{DASH}85 %"), cpu_line
    assert cpu_line.split()[-3][-1] == "▇"  # the last bar is the live 85 %
    # Without live health the line is the stored hour alone.
    stored = b.HealthView(
        instance=make_instance(),
        now=NOW,
        stale_after_secs=90,
        health_error="Backend unreachable",
        cpu=[10.0, 20.0, 40.0],
        memory=[500.0, 600.0, 700.0],
        samples=30,
    )
    assert f"10{DASH}40 %" in all_text(b.health_card(stored))


def test_health_card_marks_a_stale_heartbeat() -> None:
    view = b.HealthView(
        instance=make_instance(),
        now=NOW,
        stale_after_secs=90,
        health=make_health(heartbeat_age=200),
    )
    text = all_text(b.health_card(view))
    assert "⚠️ 3 m 20 s ago (stale: over 1 m 30 s)" in text
    assert "no stored samples" in text


def test_health_card_without_live_health() -> None:
    view = b.HealthView(
        instance=make_instance(name=EVIL, status="paused"),
        now=NOW,
        stale_after_secs=90,
        health_error="Backend returned 409 for GET /x: <nope>",
    )
    reply = b.health_card(view)
    assert_valid(reply)
    assert_no_ping(reply)
    assert "&lt;nope&gt;" in all_text(reply)


def test_sparkline_and_buckets() -> None:
    assert sparkline([0, 50, 100], lo=0, hi=100) == "▁▅█"
    assert sparkline([None, 1.0]) == "·▁"
    assert sparkline([]) == ""
    start = NOW - timedelta(hours=1)
    points = [(start + timedelta(minutes=m), float(m)) for m in range(60)]
    buckets = bucketize(points, start=start, end=NOW, buckets=6)
    assert buckets == [4.5, 14.5, 24.5, 34.5, 44.5, 54.5]
    assert bucketize([], start=start, end=NOW, buckets=3) == [None, None, None]


# -- logs -----------------------------------------------------------------------------------


def make_logs(count: int, *, message: str = "request served in 12 ms") -> list[LogEntry]:
    levels = [LogLevel.INFO, LogLevel.DEBUG, LogLevel.WARN, LogLevel.ERROR]
    return [
        LogEntry(
            timestamp=NOW - timedelta(seconds=count - i),
            level=levels[i % 4],
            message=f"{message} #{i}",
        )
        for i in range(count)
    ]


def test_logs_inline_with_level_emoji() -> None:
    entries = make_logs(8)
    answer = b.log_answer(make_instance(), entries, fetched=8, tail=50)
    assert answer.file is None
    assert_valid(answer.reply)
    text = all_text(answer.reply)
    for emoji in ("🔴", "🟡", "🟢", "⚪"):
        assert emoji in text
    assert "8 lines" in text


def test_logs_filter_by_level_and_grep() -> None:
    entries = make_logs(8)
    assert {e.level for e in b.filter_entries(entries, level="warn", grep=None)} == {
        LogLevel.WARN,
        LogLevel.ERROR,
    }
    assert [e.message for e in b.filter_entries(entries, level=None, grep="#3")] == [
        "request served in 12 ms #3"
    ]
    assert b.filter_entries(entries, level=None, grep="REQUEST") == entries


def test_logs_split_into_blocks_of_at_most_3000_characters() -> None:
    entries = make_logs(300, message="x" * 60)
    answer = b.log_answer(make_instance(), entries, fetched=300, tail=300)
    assert answer.file is None
    assert_valid(answer.reply)
    code_blocks = [bl["text"]["text"] for bl in answer.reply.blocks[1:]]
    assert len(code_blocks) > 1
    assert all(c.startswith("```") and c.endswith("```") for c in code_blocks)
    shown = sum(c.count("\n") + 1 for c in code_blocks)
    assert shown == 300  # nothing cut


def test_a_huge_line_is_wrapped_not_cut() -> None:
    entries = [LogEntry(timestamp=NOW, level=LogLevel.ERROR, message="y" * 7000)]
    answer = b.log_answer(make_instance(), entries, fetched=1, tail=1)
    assert_valid(answer.reply)
    assert sum(bl["text"]["text"].count("y") for bl in answer.reply.blocks[1:]) == 7000


def test_10000_lines_go_to_a_file_with_a_preview() -> None:
    entries = make_logs(10_000)
    answer = b.log_answer(make_instance(), entries, fetched=10_000, tail=10_000)
    assert answer.file is not None
    assert_valid(answer.reply)
    assert answer.file.content.count("\n") == 10_000
    assert answer.file.filename == "pod-7-logs.txt"
    assert "too long for a message" in all_text(answer.reply)
    assert "#9999" in all_text(answer.reply)  # the preview ends with the newest line


def test_log_lines_are_escaped_and_cannot_close_the_code_block() -> None:
    entries = [
        LogEntry(timestamp=NOW, level=LogLevel.WARN, message="<!channel> ``` <@U0BOSS> & done")
    ]
    answer = b.log_answer(make_instance(), entries, fetched=1, tail=50)
    block = answer.reply.blocks[1]["text"]["text"]
    assert block.count("```") == 2
    assert "&lt;!channel&gt;" in block and "&amp; done" in block


def test_no_log_lines() -> None:
    assert "no log lines yet" in all_text(
        b.log_answer(make_instance(), [], fetched=0, tail=50).reply
    )
    none = b.log_answer(make_instance(), [], fetched=50, tail=50, grep="zzz")
    assert "None of the last 50 lines" in all_text(none.reply)


def test_the_log_header_says_each_number_once() -> None:
    """Issue 16: it said "50 lines (last 50 lines)"."""
    head = b.log_answer(make_instance(), make_logs(50), fetched=50, tail=50).reply.blocks[0]
    text = head["text"]["text"]
    assert "the last 50 lines, times in UTC" in text
    assert text.count("50") == 1
    fewer = b.log_answer(make_instance(), make_logs(12), fetched=12, tail=50).reply.blocks[0]
    assert "all 12 lines there are (the last 50 were asked for)" in fewer["text"]["text"]
    filtered = b.log_answer(
        make_instance(), make_logs(7), fetched=200, tail=200, level="error"
    ).reply.blocks[0]
    assert "7 of the last 200 lines (level error or worse)" in filtered["text"]["text"]
    one = b.log_answer(make_instance(), make_logs(1), fetched=1, tail=1).reply.blocks[0]
    assert "the last 1 line," in one["text"]["text"]


# -- history, audit, status, ssh --------------------------------------------------------------


@dataclass
class Change:
    at: datetime
    from_status: str | None
    to_status: str
    cause: str
    actor: str | None = None
    reason: str | None = None


def test_history_says_who_and_how_long() -> None:
    changes = [
        Change(NOW - timedelta(minutes=10), "paused", "running", "user", "U0ANA"),
        Change(
            NOW - timedelta(hours=2, minutes=10), "running", "paused", "monitor", reason="<stale>"
        ),
        Change(NOW - timedelta(days=1), None, "running", "backend"),
    ]
    reply = b.history_message(make_instance(), changes, now=NOW)
    assert_valid(reply)
    text = all_text(reply)
    assert "by <@U0ANA>" in text and "10 m so far" in text
    assert "by the monitor" in text and "lasted 2 h" in text and "&lt;stale&gt;" in text
    assert "by the backend" in text and "lasted 21 h 50 m" in text
    assert "No recorded status changes" in all_text(b.history_message(make_instance(), [], now=NOW))


@dataclass
class Entry:
    at: datetime
    user_id: str
    channel_id: str | None
    source: str
    action: str
    instance_id: str | None
    args: str | None
    result: str
    detail: str | None
    duration_ms: int | None


def test_audit_rows() -> None:
    entries = [
        Entry(
            NOW,
            "U0ANA",
            "C0OPS",
            "slash",
            "restart",
            "abcdef0123",
            "restart pod-7",
            "ok",
            None,
            1400,
        ),
        Entry(
            NOW,
            "U0VIEW",
            "C0OPS",
            "button",
            "kill",
            "abcdef0123",
            None,
            "refused",
            "needs admin <x>",
            3,
        ),
    ]
    reply = b.audit_message(entries)
    assert_valid(reply)
    text = all_text(reply)
    assert "✅" in text and "<@U0ANA>" in text and "`restart`" in text and "1400 ms" in text
    assert "🔒" in text and "needs admin &lt;x&gt;" in text and "<#C0OPS>" in text


def monitor_status(problem: str | None = None) -> MonitorStatus:
    """What HealthMonitor.status() returns for a leader that swept 42 instances 20 s ago."""
    return MonitorStatus(
        last_sweep_at=NOW - timedelta(seconds=20),
        last_sweep_secs=1.5,
        last_error=None,
        is_leader=True,
        standing_by=False,
        backend_reachable=True,
        consecutive_backend_failures=0,
        instances_tracked=42,
        stale_count=1,
        running=True,
        problem=problem,
    )


def test_status_message() -> None:
    view = b.BotStatusView(
        now=NOW,
        version="0.1.0",
        backend_ok=True,
        backend_detail="answered in 12 ms",
        database_ok=True,
        monitor=monitor_status(),
    )
    reply = b.status_message(view)
    assert_valid(reply)
    text = all_text(reply)
    assert "20 s ago" in text and "leader" in text and "42 instances, 1 stale" in text
    assert "alerts feature" in text
    with_incidents = b.status_message(
        b.BotStatusView(
            now=NOW,
            version="0.1.0",
            backend_ok=False,
            backend_detail="refused",
            database_ok=False,
            incidents=["<!channel> down"],
        )
    )
    assert "Open incidents* (1)" in all_text(with_incidents)
    assert_no_ping(with_incidents)


def test_ssh_answer_never_contains_the_key() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----"
    info = SshInfo(host="10.0.0.7", port=2222, user="starpod", private_key=key)
    inst = make_instance()
    with_link = b.ssh_answer(
        inst, info, key_link="https://bot.example/ssh-key/tok", link_ttl_secs=300
    )
    assert_valid(with_link)
    text = all_text(with_link)
    assert "secret" not in text and "PRIVATE KEY" not in text
    assert "https://bot.example/ssh-key/tok" in text and "5 m" in text
    assert "ssh -i ~/.ssh/starpod-00000000 -p 2222 starpod@10.0.0.7" in text
    no_link = all_text(b.ssh_answer(inst, info, key_link=None, link_ttl_secs=300))
    assert "starpod-bot instance ssh 00000000" in no_link and "secret" not in no_link
    plain = all_text(
        b.ssh_answer(inst, SshInfo(host="h", user="u"), key_link=None, link_ttl_secs=300)
    )
    assert "ssh u@h" in plain


# -- announcements and kill ------------------------------------------------------------------


def test_announcements() -> None:
    target, plain = "*pod-7* `00000000`", "pod-7 (00000000)"
    started = b.announce_started(b.Verb.RESTART, target, plain, "U0ANA")
    assert "<@U0ANA> is restarting *pod-7*" in all_text(started)
    done = b.announce_succeeded(b.Verb.RESTART, target, plain, "U0ANA", 14)
    assert "✅ *pod-7* `00000000` running again after 14 s" in all_text(done)
    failed = b.announce_failed(
        b.Verb.RESTART, target, plain, "U0ANA", "Backend returned 409 for POST /x: Cannot <stop>"
    )
    assert "❌ Restart of" in all_text(failed) and "Cannot &lt;stop&gt;" in all_text(failed)
    late = b.announce_unconfirmed(b.Verb.PAUSE, target, plain, "U0ANA", 30, "pausing")
    assert "still *pausing* after 30 s" in all_text(late)
    for reply in (started, done, failed, late):
        assert_valid(reply)


def test_kill_confirmation_is_a_danger_button_with_a_confirm_dialog() -> None:
    reply = b.kill_confirmation(make_instance(name=EVIL))
    assert_valid(reply)
    assert_no_ping(reply)
    kill = reply.blocks[1]["elements"][0]
    assert kill["action_id"] == ActionId.KILL_CONFIRM
    assert kill["style"] == "danger"
    assert kill["confirm"]["style"] == "danger"
    assert kill["value"] == make_instance().id


def test_the_kill_dialog_names_the_instance_and_its_id_once_each() -> None:
    """Issue 16: the dialog said "pod-7 (00000000) (00000000-aaaa-…)"."""
    instance = make_instance()
    kill = b.kill_confirmation(instance).blocks[1]["elements"][0]
    dialog = kill["confirm"]
    assert dialog["title"]["text"] == "Kill pod-7?"
    assert dialog["text"]["text"] == (
        f"This terminates the instance with id {instance.id}. It cannot be undone."
    )
    assert kill["text"]["text"] == "Kill pod-7"
    card = b.health_card(b.HealthView(instance=instance, now=NOW, stale_after_secs=90))
    card_kill = next(
        e
        for bl in card.blocks
        if bl["type"] == "actions"
        for e in bl["elements"]
        if e["action_id"] == ActionId.KILL_CONFIRM
    )
    assert card_kill["confirm"] == dialog
    unnamed = make_instance(name=None)
    title = b.kill_confirmation(unnamed).blocks[1]["elements"][0]["confirm"]["title"]["text"]
    assert title == f"Kill {unnamed.short_id}?"


def test_a_refusal_links_channels_in_blocks_and_names_them_in_the_fallback() -> None:
    refused = b.refusal_answer("Starpod commands are accepted in <#C0OPS> only & <!here>.")
    assert "<#C0OPS>" in all_text(refused) and "&lt;!here&gt;" in all_text(refused)
    assert refused.text == "🔒 Starpod commands are accepted in #C0OPS only &amp; &lt;!here&gt;."


def test_status_message_says_why_the_bot_is_not_ready() -> None:
    stalled = monitor_status(problem="stalled: no completed sweep for 95 s (more than 3 intervals)")
    reply = b.status_message(
        b.BotStatusView(
            now=NOW,
            version="0.1.0",
            backend_ok=True,
            backend_detail="answered in 12 ms",
            database_ok=True,
            database_refusal="sqlite:///bot.db refuses writes: database or disk is full",
            monitor=stalled,
        )
    )
    assert_valid(reply)
    text = all_text(reply)
    assert "not ready: stalled: no completed sweep for 95 s" in text
    assert "refuses writes: database or disk is full" in text
