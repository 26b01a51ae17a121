"""Chaos: PagerDuty and the webhook answer bursts of 429s and 5xx while incidents happen.

The alert path runs on a fake clock (monitor, AlertService, outbox delivery, the Slack
emulator), with PagerDuty (``bot/sim/pagerduty.py``) and a webhook receiver
(``bot/sim/webhook_receiver.py``) configured; instances go stale over the sweeps, some
heal after a restart, some are acknowledged in Slack. Meanwhile both destinations answer
bursts of 429 (with and without ``Retry-After``), 500, 502 and 503. When the faults stop
and the outbox drains:

- zero events lost: every PagerDuty and webhook row is ``sent``, none failed or pending;
- none out of order: per incident, PagerDuty accepted exactly the events written, in the
  order written, and folds them into the incident's state; the webhook got each
  incident's events in the order written;
- Slack was never held back by the paging destinations' faults.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.alerts.delivery import OutboxDelivery
from bot.alerts.pagerduty import PagerDutySender, dedup_key
from bot.alerts.paging import PAGERDUTY, WEBHOOK, PagingTargets
from bot.alerts.service import AlertPolicy, AlertService
from bot.alerts.webhook import WebhookSender
from bot.backend.client import InstanceClient
from bot.monitor import HealthMonitor
from bot.sim.backend import BackendSimulator
from bot.sim.pagerduty import PagerDutySimulator
from bot.sim.slack import SlackEmulator
from bot.sim.webhook_receiver import WebhookReceiver
from bot.store.alert_models import AlertIncident, AlertOutbox
from bot.store.database import Database

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytestmark = pytest.mark.slow

LONG = os.environ.get("STARPOD_LONG_TESTS") == "1"
ALERTS = "C0ALERTS"
INTERVAL_SECS = 30.0
PAGED_STATE = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}


def _bursts(pagerduty: PagerDutySimulator, receiver: WebhookReceiver, number: int) -> None:
    """The fault schedule of sweep ``number``."""
    kind = number % 4
    if kind == 0:
        pagerduty.fail_next(429, count=2, retry_after=20)
        receiver.fail_next(503, count=2)
    elif kind == 1:
        pagerduty.fail_next(500, count=3)
        receiver.fail_next(429, count=2)  # no Retry-After: the sender's default wait
    elif kind == 2:
        pagerduty.fail_next(502, count=2)
        receiver.fail_next(500, count=3)
    else:
        pagerduty.fail_next(429, count=1)
        receiver.fail_next(502, count=1)


async def test_paging_survives_429_and_5xx_bursts_losing_and_reordering_nothing(
    sim: BackendSimulator,
    slack_emulator: SlackEmulator,
    fake_clock: FakeClock,
    utc_clock: Callable[[], datetime],
    sqlite_store: Database,
    reliability_figures: dict[str, object],
) -> None:
    sweeps = 60 if LONG else 24
    ids = sim.seed_instances(20 if LONG else 8)
    stalls = [(1 + 2 * k, ids[k], k % 3 == 2) for k in range(len(ids) // 2)]
    web = AsyncWebClient(
        token=slack_emulator.bot_token,
        base_url=slack_emulator.api_url,
        timeout=5,
        retry_handlers=[],
    )
    async with (
        PagerDutySimulator() as pagerduty,
        WebhookReceiver() as receiver,
        httpx.AsyncClient(timeout=5) as http,
        InstanceClient(sim.url, timeout=5.0, retry_backoff=0) as client,
    ):
        senders = {
            PAGERDUTY: PagerDutySender(http, routing_key=pagerduty.routing_key, url=pagerduty.url),
            WEBHOOK: WebhookSender(http, url=receiver.url, secret="s3cret", now=fake_clock),
        }
        delivery = OutboxDelivery(
            sqlite_store,
            web,
            clock=utc_clock,
            holder="chaos",
            base_backoff=timedelta(seconds=1),
            max_backoff=timedelta(seconds=30),
            senders=senders,
        )
        service = AlertService(
            sqlite_store,
            policy=AlertPolicy(channel=ALERTS),
            delivery=delivery,
            clock=utc_clock,
            nudge=False,
            paging=PagingTargets(pagerduty=True, webhook=True),
        )
        monitor = (
            HealthMonitor(client, store=sqlite_store)
            .with_clock(utc_clock)
            .with_heartbeat_timeout(timedelta(seconds=90))
        )
        service.attach(monitor)
        acknowledged: set[int] = set()
        for number in range(sweeps):
            for at, instance_id, sticky in stalls:
                if at == number:
                    sim.stop_heartbeat(instance_id, sticky=sticky)
                if at + 8 == number and sticky:
                    sim.resume_heartbeat(instance_id)
            _bursts(pagerduty, receiver, number)
            await monitor.sweep_once()
            fake_clock.advance(INTERVAL_SECS)
            await delivery.run_once()
            for view in await service.open_incidents():
                if view.id % 2 == 0 and view.id not in acknowledged:
                    await service.acknowledge(view.id, "U0ONCALL")
                    acknowledged.add(view.id)

        for _ in range(240):  # faults off (the scripts ran out): drain on the fake clock
            fake_clock.advance(INTERVAL_SECS)
            await delivery.run_once()
            async with sqlite_store.session() as session:
                pending = list(
                    await session.scalars(
                        select(AlertOutbox.id).where(AlertOutbox.state == "pending")
                    )
                )
            if not pending:
                break
        async with sqlite_store.session() as session:
            rows = list(await session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)))
            incidents = list(await session.scalars(select(AlertIncident)))
        await delivery.aclose()

    paging_rows = [r for r in rows if r.destination in (PAGERDUTY, WEBHOOK)]
    states = Counter((r.destination, r.state) for r in paging_rows)
    assert not [r for r in paging_rows if r.state != "sent"], states
    injected = Counter(
        f"pagerduty {r.status}" for r in pagerduty.received if r.status != 202
    ) + Counter(f"webhook {d.status}" for d in receiver.deliveries if d.status >= 300)
    assert injected["pagerduty 429"] and injected["webhook 500"], injected

    hooks = [json.loads(d.body) for d in receiver.accepted]
    checked = 0
    for incident in incidents:
        own = [r for r in paging_rows if r.incident_id == incident.id]
        written = [r.payload["event"] for r in own if r.destination == PAGERDUTY]
        if not written:
            continue
        key = dedup_key(incident.id)
        got = [e["event_action"] for e in pagerduty.events if e["dedup_key"] == key]
        assert got == written, (incident.id, got, written)
        assert pagerduty.alert_state(key) == PAGED_STATE[written[-1]], incident.id
        assert incident.paged_state == PAGED_STATE[written[-1]]
        hook_ids = [h["id"] for h in hooks if h["incident"]["id"] == incident.id]
        own_hooks = [r.id for r in own if r.destination == WEBHOOK]
        assert hook_ids == own_hooks, (incident.id, hook_ids, own_hooks)
        checked += 1
    assert checked >= len(stalls) // 2, checked
    assert acknowledged and any(e["event_action"] == "acknowledge" for e in pagerduty.events), (
        "some incidents were acknowledged in Slack"
    )
    slack_rows = [r for r in rows if r.destination == "slack"]
    assert all(r.state in ("sent", "superseded") for r in slack_rows)

    reliability_figures.update(
        sweeps=sweeps,
        incidents=len(incidents),
        pagerduty_events=len(pagerduty.events),
        webhook_events=len(hooks),
        faults_injected=dict(sorted(injected.items())),
        events_lost=0,
        out_of_order=0,
    )
