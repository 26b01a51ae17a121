"""The incident Block Kit builders: pure, escaped, within Slack's limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.alerts import blocks
from bot.alerts.facts import IncidentFacts
from bot.alerts.records import IncidentView
from bot.blockkit.limits import MAX_BLOCKS, MAX_SECTION_TEXT

OPENED = datetime(2026, 11, 28, 14, 2, tzinfo=UTC)
ONCALL = "<!subteam^S0ONCALL>"


def view(**changes: object) -> IncidentView:
    base = IncidentView(
        id=12,
        scope="instance",
        instance_id="a1b2c3d4-0000-4000-8000-000000000000",
        instance_name="<!channel> & <@U0BOSS>",
        region="eu-<west>",
        kind="stale",
        state="open",
        flapping=False,
        announced=True,
        detail="heartbeat stale: 134 s old (timeout 90 s) <script>",
        opened_at=OPENED,
        updated_at=OPENED,
        facts=IncidentFacts.load(
            {
                "health": {
                    "cpu_percent": 12.5,
                    "memory_mb": 512,
                    "disk_mb": 2150,
                    "uptime_secs": 7300,
                },
                "heartbeat_age_secs": 134,
                "action": "auto-restart 1 of 3: <bad>",
            }
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def rendered(message: object) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)  # type: ignore[attr-defined]


def test_backend_text_is_escaped_and_only_the_configured_mention_stays_live() -> None:
    message = blocks.root_message(view(), mention=ONCALL)
    text = rendered(message)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; &lt;@U0BOSS&gt;" in text
    assert "<script>" not in text and "eu-&lt;west&gt;" in text and "&lt;bad&gt;" in text
    assert ONCALL in text, "the on-call group is a real mention"
    assert message.text.startswith(ONCALL + " ")
    assert "<!channel>" not in message.text and "<@U0BOSS>" not in message.text


def test_root_shows_state_age_health_and_action() -> None:
    text = rendered(blocks.root_message(view()))
    for expected in ("Open", "2 m 14 s", "CPU 12.5 %", "mem 512 MB", "disk 2.1 GB", "up 2 h 1 m"):
        assert expected in text, expected
    acked = rendered(
        blocks.root_message(view(state="acknowledged", acknowledged_by="U0ANA"), mention=ONCALL)
    )
    assert "Acknowledged by <@U0ANA>" in acked
    resolved = blocks.root_message(
        view(state="resolved", resolved_at=OPENED + timedelta(minutes=4)), mention=ONCALL
    )
    assert "Resolved after 4 m" in rendered(resolved)
    assert ONCALL not in resolved.text, "a resolved incident pings nobody"


def test_buttons_follow_the_state() -> None:
    def ids(v: IncidentView) -> list[str]:
        row = blocks.incident_buttons(v)
        return [] if row is None else [e["action_id"] for e in row["elements"]]

    assert ids(view()) == [
        "starpod.incident.ack",
        "starpod.incident.restart",
        "starpod.incident.logs",
        "starpod.incident.mute",
    ]
    assert "starpod.incident.ack" not in ids(view(state="acknowledged"))
    assert ids(view(state="resolved")) == ["starpod.incident.logs"]
    assert ids(view(scope="fleet", instance_id=None)) == ["starpod.incident.ack"]
    row = blocks.incident_buttons(view())
    assert row is not None and {e["value"] for e in row["elements"]} == {"12"}


def test_a_storm_of_ten_thousand_stays_one_small_message() -> None:
    members = [f"{n:08d}-0000-4000-8000-000000000000" for n in range(10_000)]
    storm = view(
        scope="fleet",
        instance_id=None,
        instance_name=None,
        facts=IncidentFacts(
            members=members, names={m: f"<pod-{i}>" for i, m in enumerate(members)}
        ),
        detail="10000 of 10000 running instances have a stale heartbeat",
    )
    message = blocks.root_message(storm, mention=ONCALL)
    text = rendered(message)
    assert "Storm: 10000 instances have a stale heartbeat" in text
    assert "and 9990 more" in text and "&lt;pod-0&gt;" in text
    assert len(message.blocks) <= MAX_BLOCKS
    for block in message.blocks:
        section = block.get("text", {}).get("text", "")
        assert len(section) <= MAX_SECTION_TEXT


def test_mute_notices() -> None:
    until = OPENED + timedelta(hours=1)
    started = blocks.mute_started_notice("<x> (a1b2)", until, actor="U0ANA", no_restart=True)
    assert "&lt;x&gt;" in rendered(started) and "auto-restart off" in rendered(started)
    ended = blocks.mute_ended_notice(
        "pod-7 (a1b2)", how="expired", actor=None, muted_by="U0ANA", status="running",
        open_incident=None,
    )  # fmt: skip
    assert "the mute set by <@U0ANA> expired" in rendered(ended)
    assert "running now" in rendered(ended)


# -- fallback texts: plain, escaped once; mentions live in blocks only ----------------------


def test_thread_notes_fallback_is_plain_text_with_users_as_ids() -> None:
    note = blocks.thread_note("🔄 <@U0OPERATOR> restarted it by hand: &lt;b&gt; &amp; *done*")
    assert "<@U0OPERATOR>" in rendered(note), "the blocks mention the user"
    # Notifications show the fallback: no literal <@…>, no &lt;@…&gt;, no double escapes.
    assert note.text == "🔄 @U0OPERATOR restarted it by hand: &lt;b&gt; &amp; done"
    recovered = blocks.recovered_note(view(), "fresh <again> & fine", after_secs=240)
    assert recovered.text == "✅ Recovered after 4 m: fresh &lt;again&gt; &amp; fine"


def test_escalation_fallback_is_escaped_once_and_keeps_the_group_mention() -> None:
    note = blocks.escalation_note(ONCALL, "Auto-restart gave up: &lt;boom&gt; &amp; more")
    assert note.text == f"{ONCALL} 📣 Auto-restart gave up: &lt;boom&gt; &amp; more"
    assert "&amp;lt;" not in note.text and "&amp;amp;" not in note.text


def test_action_taken_by_a_person_is_a_mention() -> None:
    by_hand = view(facts=IncidentFacts(action="restarted by hand", action_by="U0OPERATOR"))
    text = rendered(blocks.root_message(by_hand))
    assert "restarted by hand by <@U0OPERATOR>" in text
    assert "U0OPERATOR" not in blocks.root_message(by_hand).text
    by_bot = view(facts=IncidentFacts(action="auto-restart 1 of 3"))
    shown = rendered(blocks.root_message(by_bot))
    assert "auto-restart 1 of 3" in shown and "auto-restart 1 of 3 by" not in shown
