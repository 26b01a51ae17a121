"""Paging beyond Slack through the outbox: PagerDuty's Events API v2 and the webhook.

Everything real: the backend simulator, the monitor, the AlertService and its delivery
on a SQLite file, the Slack emulator, the fake PagerDuty Events API (bot/sim/pagerduty.py)
and a webhook receiver (bot/sim/webhook_receiver.py), each on 127.0.0.1, reached by the
production senders over httpx.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.pagerduty import PagerDutySender, dedup_key
from bot.alerts.paging import PAGERDUTY, WEBHOOK, PagingTargets
from bot.alerts.senders import permalink_of
from bot.alerts.service import AlertPolicy, AlertService
from bot.alerts.webhook import WebhookSender
from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.sim.pagerduty import PagerDutySimulator
from bot.sim.slack import SlackEmulator
from bot.sim.webhook_receiver import WebhookReceiver
from bot.store.database import Database
from tests.alerts.conftest import ALERTS, ONCALL, Harness, web_client

if TYPE_CHECKING:
    from tests.conftest import FakeClock

README = Path(__file__).resolve().parents[2] / "README.md"
SECRET = "whsec-test-0123456789"


@pytest.fixture
async def pagerduty() -> AsyncIterator[PagerDutySimulator]:
    async with PagerDutySimulator() as pd:
        yield pd


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def paged(
    sim: BackendSimulator,
    client: InstanceClient,
    slack: SlackEmulator,
    db: Database,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    pagerduty: PagerDutySimulator,
    receiver: WebhookReceiver,
    http: httpx.AsyncClient,
) -> Callable[..., Harness]:
    """The alert path with PagerDuty and the webhook configured (``routing_key`` to
    override the key the PagerDuty sender uses)."""

    def build(*, routing_key: str | None = None, budget: int = 3) -> Harness:
        web = web_client(slack)
        link = permalink_of(web)
        senders = {
            PAGERDUTY: PagerDutySender(
                http,
                routing_key=routing_key or pagerduty.routing_key,
                url=pagerduty.url,
                permalink=link,
            ),
            WEBHOOK: WebhookSender(
                http, url=receiver.url, secret=SECRET, permalink=link, now=fake_clock
            ),
        }
        delivery = OutboxDelivery(
            db,
            web,
            clock=utc_clock,
            holder="test",
            base_backoff=timedelta(seconds=1),
            max_backoff=timedelta(seconds=30),
            senders=senders,
        )
        service = AlertService(
            db,
            policy=AlertPolicy(channel=ALERTS, mention=ONCALL),
            delivery=delivery,
            clock=utc_clock,
            nudge=False,
            paging=PagingTargets(pagerduty=True, webhook=True),
        )
        monitor = (
            HealthMonitor(client, store=db)
            .with_clock(utc_clock)
            .with_heartbeat_timeout(timedelta(seconds=90))
            .with_restart_budget(budget, timedelta(minutes=30), (0, 60, 300))
        )
        service.attach(monitor)
        return Harness(
            sim=sim,
            slack=slack,
            db=db,
            clock=fake_clock,
            utc=utc_clock,
            monitor=monitor,
            service=service,
            delivery=delivery,
        )

    return build


async def open_incident(h: Harness) -> str:
    """Three healthy instances, then one goes stale: its incident opens."""
    ids = h.sim.seed_instances(3)
    await h.sweep()
    victim = ids[1]
    h.sim.stop_heartbeat(victim, sticky=True)
    h.advance(100)
    await h.sweep()
    return victim


async def settle(h: Harness, rounds: int = 6) -> None:
    """Deliver, moving the clock past each back-off, until nothing is pending."""
    for _ in range(rounds):
        await h.deliver()
        if not [r for r in await h.outbox() if r.state == "pending"]:
            return
        h.advance(31)
    raise AssertionError([(r.id, r.destination, r.last_error) for r in await h.outbox()])


def webhook_events(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [json.loads(d.body) for d in receiver.accepted]


async def test_an_incident_triggers_acknowledges_and_resolves_one_pagerduty_alert(
    paged: Callable[..., Harness], pagerduty: PagerDutySimulator, receiver: WebhookReceiver
) -> None:
    h = paged()
    victim = await open_incident(h)
    await h.deliver()
    [root] = h.channel()
    # The trigger waited for the Slack root so it can link to the thread.
    await settle(h)
    [incident] = await h.incidents()
    [trigger] = pagerduty.events
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == dedup_key(incident.id)
    assert trigger["payload"]["severity"] == "error", "a stale heartbeat is an error"
    assert trigger["payload"]["component"] == victim
    assert "heartbeat stale" in trigger["payload"]["summary"]
    assert trigger["payload"]["class"] == "stale"
    [link] = trigger["links"]
    assert link["href"].endswith(f"/archives/{ALERTS}/p{root.ts.replace('.', '')}")
    assert trigger["client_url"] == link["href"]

    ack = await h.service.acknowledge(incident.id, "U0ONCALL")
    assert ack.ok
    await settle(h)
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "acknowledge"]
    assert pagerduty.alert_state(dedup_key(incident.id)) == "acknowledged"

    h.sim.resume_heartbeat(victim)
    h.advance(30)
    await h.sweep()
    await settle(h)
    actions = [e["event_action"] for e in pagerduty.events]
    assert actions == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in pagerduty.events} == {dedup_key(incident.id)}
    assert pagerduty.alert_state(dedup_key(incident.id)) == "resolved"
    for event in pagerduty.events[1:]:
        assert set(event) == {"routing_key", "event_action", "dedup_key"}

    types = [e["type"] for e in webhook_events(receiver)]
    assert types == [
        "incident.opened",
        "incident.action",  # the auto-restart
        "incident.acknowledged",
        "incident.resolved",
    ]
    acked = webhook_events(receiver)[2]
    assert acked["actor"] == "U0ONCALL" and acked["incident"]["id"] == incident.id
    assert webhook_events(receiver)[3]["slack"]["permalink"].endswith(root.ts.replace(".", ""))


async def test_a_muted_incident_pages_no_one(
    paged: Callable[..., Harness], pagerduty: PagerDutySimulator, receiver: WebhookReceiver
) -> None:
    h = paged()
    ids = h.sim.seed_instances(2)
    await h.sweep()
    await h.service.mute(ids[0], h.utc() + timedelta(hours=1), False, "U0ANA")
    h.sim.stop_heartbeat(ids[0], sticky=True)
    h.advance(100)
    await h.sweep()
    await settle(h)
    assert pagerduty.received == [] and receiver.deliveries == []


async def test_pagerduty_429_pauses_paging_only_and_5xx_is_retried_until_it_passes(
    paged: Callable[..., Harness], pagerduty: PagerDutySimulator
) -> None:
    h = paged()
    pagerduty.fail_next(429, retry_after=20)
    pagerduty.fail_next(503, count=2)
    await open_incident(h)
    await h.deliver()
    h.advance(2)  # past the wait for the Slack root
    report = await h.deliver()
    assert report.rate_limited == 1
    assert h.delivery.paused(PAGERDUTY) is not None
    assert h.delivery.paused_until is None, "Slack is not paused by PagerDuty's 429"
    [root] = h.channel()
    assert h.replies(root), "the Slack thread went on meanwhile"

    h.advance(10)
    await h.deliver()
    assert len(pagerduty.received) == 1, "nothing is sent to PagerDuty before Retry-After"
    await settle(h)
    statuses = [r.status for r in pagerduty.received]
    assert statuses == [429, 503, 503, 202]
    assert [e["event_action"] for e in pagerduty.events] == ["trigger"]
    [row] = [r for r in await h.outbox() if r.destination == PAGERDUTY]
    assert row.state == "sent" and row.attempts >= 4


async def test_pagerduty_400_is_permanent_logged_with_its_message_never_the_key(
    paged: Callable[..., Harness],
    pagerduty: PagerDutySimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "WRONGKEYWRONGKEYWRONGKEYWRONGKE1"
    h = paged(routing_key=wrong)
    caplog.set_level(logging.DEBUG)
    await open_incident(h)
    await settle(h)
    [row] = [r for r in await h.outbox() if r.destination == PAGERDUTY]
    assert row.state == "failed"
    assert "HTTP 400" in (row.last_error or "") and "routing_key" in (row.last_error or "")
    assert [r.status for r in pagerduty.received] == [400], "a 400 is never retried"
    assert h.delivery.failed_total == 1
    logged = [r.getMessage() for r in caplog.records]
    assert any("Event object is invalid" in line for line in logged)
    assert not any(wrong in line for line in logged), "the routing key is never logged"
    assert wrong not in (row.last_error or "")
    # The Slack side is untouched by PagerDuty's refusal.
    assert len(h.channel()) == 1


async def test_webhook_429_and_5xx_are_retried_and_every_event_is_signed(
    paged: Callable[..., Harness], receiver: WebhookReceiver, fake_clock: FakeClock
) -> None:
    h = paged()
    receiver.fail_next(500)
    receiver.fail_next(429, retry_after=15)
    await open_incident(h)
    await settle(h)
    statuses = [d.status for d in receiver.deliveries]
    assert statuses[:3] == [500, 429, 204]
    first = json.loads(receiver.deliveries[0].body)
    again = json.loads(receiver.deliveries[2].body)
    assert first["id"] == again["id"], "a retry is the same delivery: receivers dedupe on id"
    verify = readme_verifier()
    for delivery in receiver.deliveries:
        assert verify(SECRET, delivery.headers, delivery.body, now=fake_clock())
    forged = receiver.deliveries[-1]
    assert not verify("another-secret", forged.headers, forged.body, now=fake_clock())
    tampered = forged.body.replace(b'"incident.', b'"incidentX')
    assert not verify(SECRET, forged.headers, tampered, now=fake_clock())
    assert not verify(SECRET, forged.headers, forged.body, now=fake_clock() + 3600), "replay"


async def test_budget_reset_is_an_action_event_for_the_webhook(
    paged: Callable[..., Harness], receiver: WebhookReceiver
) -> None:
    h = paged(budget=1)
    victim = await open_incident(h)
    await settle(h)
    await h.service.reset_restart_budget(victim, "U0OPS", source="slack")
    await settle(h)
    [reset] = [e for e in webhook_events(receiver) if e["action"] == "auto-restart budget reset"]
    assert reset["type"] == "incident.action" and reset["actor"] == "U0OPS"


def readme_verifier() -> Callable[..., bool]:
    """The README's verification snippet, run as the reader would paste it."""
    text = README.read_text()
    section = text.split("### Verifying the webhook's signature", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert code is not None, "the README shows a Python snippet"
    scope: dict[str, Any] = {}
    exec(compile(code.group(1), "README.md", "exec"), scope)
    verify: Callable[..., bool] = scope["verify"]
    return verify


def test_the_pagerduty_body_of_each_kind_and_action() -> None:
    from bot.alerts.pagerduty import SUMMARY_LIMIT, event_body

    incident = {"id": 9, "kind": "stale", "label": "pod-7 (a1b2c3d4)", "what": "heartbeat stale"}
    for kind, severity in [
        ("restart_budget_exhausted", "critical"),
        ("backend_unreachable", "critical"),
        ("stale", "error"),
        ("error", "error"),
        ("health_unknown", "warning"),
    ]:
        payload = {"event": "trigger", "at": "2026-11-30T14:00:00+00:00"}
        payload["incident"] = {**incident, "kind": kind, "detail": "x" * 2000}
        body = event_body(payload, routing_key="K", thread_url=None)
        assert body["payload"]["severity"] == severity
        assert len(body["payload"]["summary"]) == SUMMARY_LIMIT
        assert "links" not in body, "no thread yet: no link"
    for action in ("acknowledge", "resolve"):
        body = event_body({"event": action, "incident": incident}, routing_key="K", thread_url="u")
        assert body == {
            "routing_key": "K",
            "event_action": action,
            "dedup_key": "starpod-incident-9",
        }
