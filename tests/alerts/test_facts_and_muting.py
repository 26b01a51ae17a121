"""Typed incident facts (old rows still load) and the one muting interface.

Real parts: a migrated SQLite file and the AlertService as the runtime builds it (no
delivery: rows wait in the outbox, which these tests do not need).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.alerts import blocks, rows
from bot.alerts.facts import HealthSnapshot, IncidentFacts, update_facts
from bot.alerts.mutes import Alert, Muter
from bot.alerts.service import AlertPolicy, AlertService
from bot.store.alert_models import AlertIncident
from bot.store.database import Database

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
POD = "a1b2c3d4-0000-4000-8000-000000000000"
OTHER = "b2c3d4e5-0000-4000-8000-000000000000"

# The facts JSON exactly as the untyped service wrote it (ints, a None, no fleet keys),
# plus a key no version of the code knows.
OLD_INSTANCE_FACTS = {
    "status": "stale",
    "action": "auto-restart due",
    "health": {"cpu_percent": 12.5, "memory_mb": 512, "disk_mb": 2150, "uptime_secs": 7300},
    "heartbeat_age_secs": 134.0,
    "from_the_future": True,
}
OLD_FLEET_FACTS = {
    "members": [POD, OTHER],
    "names": {POD: "pod-7"},
    "recovered": 3,
    "backend_down": False,
    "action": "no per-instance restarts during the storm",
}


def service(db: Database) -> AlertService:
    return AlertService(db, policy=AlertPolicy(channel="C0ALERTS"), clock=lambda: NOW)


async def test_rows_written_before_the_typed_facts_still_load_and_render(db: Database) -> None:
    async def write(session):  # type: ignore[no-untyped-def]
        old = rows.new_incident(
            AlertPolicy(), scope="instance", kind="stale", at=NOW, instance_id=POD, name="pod-7"
        )
        old.facts = OLD_INSTANCE_FACTS
        fleet = rows.new_incident(AlertPolicy(), scope="fleet", kind="stale", at=NOW)
        fleet.facts = OLD_FLEET_FACTS
        session.add_all([old, fleet])
        await session.flush()
        return old.id, fleet.id

    instance_id, fleet_id = await db.run(write)
    alerts = service(db)
    view = await alerts.get_incident(instance_id)
    assert view is not None
    assert view.facts.status == "stale" and view.facts.action == "auto-restart due"
    assert view.facts.health == HealthSnapshot(
        cpu_percent=12.5, memory_mb=512, disk_mb=2150, uptime_secs=7300
    )
    assert view.facts.heartbeat_age_secs == 134.0 and view.facts.members == []
    text = str(blocks.root_message(view).blocks)
    assert "CPU 12.5 %" in text and "mem 512 MB" in text and "auto-restart due" in text

    fleet = await alerts.get_incident(fleet_id)
    assert fleet is not None
    assert fleet.facts.members == [POD, OTHER] and fleet.facts.names == {POD: "pod-7"}
    assert fleet.facts.recovered == 3 and fleet.what == "storm: 2 instances stale"


def test_facts_store_only_what_they_know_and_round_trip() -> None:
    facts = IncidentFacts.load(OLD_INSTANCE_FACTS)
    stored = facts.dump()
    assert "from_the_future" not in stored
    assert not {"members", "names", "recovered", "backend_down"} & stored.keys()
    assert IncidentFacts.load(stored) == facts
    changed = facts.with_(action="restarted by hand by U1")
    assert changed.action == "restarted by hand by U1" and changed.health == facts.health
    assert facts.action == "auto-restart due", "facts are immutable: with_ copies"
    assert IncidentFacts.load(None) == IncidentFacts() == IncidentFacts.load({})


def test_an_action_by_the_bot_forgets_the_person_who_acted_before() -> None:
    incident = AlertIncident(facts={})
    by_hand = update_facts(incident, action="restarted by hand", action_by="U0ANA")
    assert (by_hand.action, by_hand.action_by) == ("restarted by hand", "U0ANA")
    assert update_facts(incident, status="stale").action_by == "U0ANA"
    by_bot = update_facts(incident, action="auto-restart 1 of 3")
    assert by_bot.action_by is None and incident.facts == {
        "action": "auto-restart 1 of 3",
        "status": "stale",
    }


async def test_silences_and_storm_inhibition_answer_through_one_muting_interface(
    db: Database,
) -> None:
    alerts = service(db)
    muters: dict[str, Muter] = {"silences": alerts.silences, "inhibitor": alerts.inhibitor}

    async def muted(alert: Alert) -> dict[str, bool]:
        async with db.session() as session:
            return {name: await m.mutes(session, alert) for name, m in muters.items()}

    stale = Alert(POD, NOW, stale=True)
    assert await muted(stale) == {"silences": False, "inhibitor": False}

    await alerts.mute(POD, NOW + timedelta(hours=1), False, "U0ANA")
    assert await muted(stale) == {"silences": True, "inhibitor": False}
    assert await muted(Alert(POD, NOW + timedelta(hours=2), stale=True)) == {
        "silences": False,
        "inhibitor": False,
    }, "a mute holds until its end"
    await alerts.unmute(POD, "U0ANA")
    assert await muted(stale) == {"silences": False, "inhibitor": False}

    # The storm's own sweep: its stale instances are covered whatever the event.
    alerts.inhibitor.storm(NOW, frozenset({POD}))
    assert await muted(Alert(POD, NOW)) == {"silences": False, "inhibitor": True}
    assert await muted(Alert(OTHER, NOW)) == {"silences": False, "inhibitor": False}

    # An open fleet incident covers instances going stale without an incident of their own.
    async def open_fleet(session):  # type: ignore[no-untyped-def]
        session.add(rows.new_incident(AlertPolicy(), scope="fleet", kind="stale", at=NOW))

    await db.run(open_fleet)
    later = NOW + timedelta(minutes=1)
    assert await muted(Alert(OTHER, later, stale=True)) == {"silences": False, "inhibitor": True}
    own = await muted(Alert(OTHER, later, stale=True, has_incident=True))
    assert own["inhibitor"] is False, "inhibition never takes an instance's own incident"
    not_stale = await muted(Alert(OTHER, later, stale=False))
    assert not_stale["inhibitor"] is False, "a storm covers stale heartbeats only"


async def test_a_fleet_incident_row_keeps_its_facts_in_the_same_json_column(
    db: Database,
) -> None:
    async def write(session):  # type: ignore[no-untyped-def]
        fleet = rows.new_incident(AlertPolicy(), scope="fleet", kind="stale", at=NOW)
        fleet.facts = IncidentFacts(members=[POD], names={POD: "pod-7"}).dump()
        session.add(fleet)
        await session.flush()
        return fleet.id

    fleet_id = await db.run(write)
    async with db.session() as session:
        row = await session.get(AlertIncident, fleet_id)
        assert row is not None
        assert row.facts == {"members": [POD], "names": {POD: "pod-7"}}
