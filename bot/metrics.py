"""Prometheus metrics on a private registry, and the ``GET /metrics`` endpoint.

``create_metrics()`` builds a :class:`Metrics` with its own ``CollectorRegistry`` (nothing at
module level: two runtimes in one test process never share a counter). The modules that do
the work report through small methods::

    metrics.observe_backend("list", "200", 0.012)       # InstanceClient(observer=...)
    metrics.observe_sweep(report.secs, ok=True)         # HealthMonitor.on_sweep
    metrics.observe_command("restart", "ok")            # Slack commands (and gateway calls)
    metrics.observe_ack(0.041)                          # time to acknowledge Slack
    metrics.observe_notification("sent")                # alert delivery

Gauges that are a state rather than an event (open incidents, pending notifications,
leader) are read at scrape time from sources, sync or async callables; counters kept as
running totals elsewhere are read the same way::

    metrics.set_source("leader", lambda: monitor.is_leader)
    metrics.set_source("open_incidents", count_open_incidents)  # async is fine
    metrics.set_counter_source("notifications_sent", lambda: delivery.sent_total)

Every name starts with ``starpod_``; see :data:`METRIC_NAMES`.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

GaugeName = Literal[
    "open_incidents",
    "notifications_pending",
    "leader",
    "last_sweep_timestamp",
    "monitor_stalled",
    "ready",
    "database_writable",
]
CounterName = Literal[
    "notifications_sent",
    "notifications_failed",
    "sweep_yield_seconds",
    "gc_full_collection_seconds",
]
GaugeSource = Callable[[], "float | int | bool | Awaitable[float | int | bool | None] | None"]

SWEEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Slack gives up after 3 s: the buckets around it say how close we come.
ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
BACKEND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

METRIC_NAMES = (
    "starpod_sweeps_total",
    "starpod_sweep_duration_seconds",
    "starpod_backend_requests_total",
    "starpod_backend_errors_total",
    "starpod_backend_request_duration_seconds",
    "starpod_open_incidents",
    "starpod_notifications_sent_total",
    "starpod_notifications_failed_total",
    "starpod_notifications_pending",
    "starpod_commands_total",
    "starpod_ack_latency_seconds",
    "starpod_leader",
    "starpod_last_sweep_timestamp_seconds",
    "starpod_monitor_stalled",
    "starpod_ready",
    "starpod_database_writable",
    "starpod_sweep_yield_seconds_total",
    "starpod_gc_full_collection_seconds_total",
)


def _is_success(outcome: str) -> bool:
    return outcome.isdigit() and 200 <= int(outcome) < 300


class Metrics:
    """Every metric of the bot, on one private registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.sweeps = Counter(
            "starpod_sweeps",
            "Health sweeps, by result (ok, error: the backend could not be listed).",
            ["result"],
            registry=r,
        )
        self.sweep_duration = Histogram(
            "starpod_sweep_duration_seconds",
            "Duration of the health sweeps this replica ran.",
            buckets=SWEEP_BUCKETS,
            registry=r,
        )
        self.backend_requests = Counter(
            "starpod_backend_requests",
            "Requests to the Starpod backend, by endpoint and HTTP status or error class.",
            ["endpoint", "status"],
            registry=r,
        )
        self.backend_errors = Counter(
            "starpod_backend_errors",
            "Backend requests that failed: a non-2xx status or a transport error.",
            ["endpoint", "status"],
            registry=r,
        )
        self.backend_duration = Histogram(
            "starpod_backend_request_duration_seconds",
            "Duration of requests to the Starpod backend, by endpoint.",
            ["endpoint"],
            buckets=BACKEND_BUCKETS,
            registry=r,
        )
        self.open_incidents = Gauge(
            "starpod_open_incidents", "Incidents open (not resolved).", registry=r
        )
        self.notifications_sent = Counter(
            "starpod_notifications_sent", "Alert notifications delivered to Slack.", registry=r
        )
        self.notifications_failed = Counter(
            "starpod_notifications_failed",
            "Alert notification deliveries that failed (each failed attempt).",
            registry=r,
        )
        self.sweep_yield_seconds = Counter(
            "starpod_sweep_yield_seconds",
            "Seconds the sweep's loop waited for the Slack loop's work to pass (bot.priority).",
            registry=r,
        )
        self.gc_full_collection_seconds = Counter(
            "starpod_gc_full_collection_seconds",
            "Seconds spent in full garbage collections, run when the Slack loop is idle "
            "(bot.collector); every thread waits for the interpreter lock meanwhile.",
            registry=r,
        )
        self.notifications_pending = Gauge(
            "starpod_notifications_pending",
            "Alert notifications waiting in the outbox.",
            registry=r,
        )
        self.commands = Counter(
            "starpod_commands",
            "Commands, by source (slack, gateway), subcommand and result.",
            ["source", "subcommand", "result"],
            registry=r,
        )
        self.ack_latency = Histogram(
            "starpod_ack_latency_seconds",
            "Time from receiving a Slack request to acknowledging it.",
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.leader = Gauge(
            "starpod_leader", "1 when this replica leads the health sweeps, else 0.", registry=r
        )
        self.last_sweep_timestamp = Gauge(
            "starpod_last_sweep_timestamp_seconds",
            "Unix time of the last health sweep this replica completed (0: none yet).",
            registry=r,
        )
        self.monitor_stalled = Gauge(
            "starpod_monitor_stalled",
            "1 when the monitor is not doing its job (no sweep or election for 3 intervals, "
            "or leadership cannot be decided), else 0; /readyz says why.",
            registry=r,
        )
        self.ready = Gauge(
            "starpod_ready",
            "1 when /readyz answers 200 (every readiness check passes), else 0.",
            registry=r,
        )
        self.database_writable = Gauge(
            "starpod_database_writable",
            "0 while the database refuses writes (full or read-only), from the first refused "
            "write until a write probe commits again; else 1.",
            registry=r,
        )
        self._gauges: dict[GaugeName, Gauge] = {
            "open_incidents": self.open_incidents,
            "notifications_pending": self.notifications_pending,
            "leader": self.leader,
            "last_sweep_timestamp": self.last_sweep_timestamp,
            "monitor_stalled": self.monitor_stalled,
            "ready": self.ready,
            "database_writable": self.database_writable,
        }
        self._sources: dict[GaugeName, GaugeSource] = {}
        self._counters: dict[CounterName, Counter] = {
            "notifications_sent": self.notifications_sent,
            "notifications_failed": self.notifications_failed,
            "sweep_yield_seconds": self.sweep_yield_seconds,
            "gc_full_collection_seconds": self.gc_full_collection_seconds,
        }
        # Counter sources: a running total elsewhere (e.g. the outbox sender's), and the
        # part of it already added here.
        self._counter_sources: dict[CounterName, tuple[Callable[[], float], float]] = {}

    # -- events ------------------------------------------------------------------------------

    def observe_backend(self, endpoint: str, outcome: str, secs: float) -> None:
        """One backend request: ``outcome`` is the HTTP status or the transport error's class.

        The signature of ``InstanceClient(observer=...)``.
        """
        self.backend_requests.labels(endpoint, outcome).inc()
        self.backend_duration.labels(endpoint).observe(secs)
        if not _is_success(outcome):
            self.backend_errors.labels(endpoint, outcome).inc()

    def observe_sweep(self, secs: float, *, ok: bool) -> None:
        """One health sweep this replica ran (standby rounds are not sweeps)."""
        self.sweeps.labels("ok" if ok else "error").inc()
        self.sweep_duration.observe(secs)

    def observe_sweep_report(self, report: Any) -> None:
        """Count a :class:`bot.monitor.SweepReport` (the monitor's ``on_sweep`` hook)."""
        if report.swept:
            self.observe_sweep(report.secs, ok=report.backend_error is None)

    def observe_command(self, subcommand: str, result: str, *, source: str = "slack") -> None:
        """One command, e.g. ``("restart", "ok")``, ``("kill", "refused", source="gateway")``."""
        self.commands.labels(source, subcommand, result).inc()

    def observe_ack(self, secs: float) -> None:
        """Time taken to acknowledge one Slack request."""
        self.ack_latency.observe(secs)

    def observe_notification(self, outcome: Literal["sent", "failed"]) -> None:
        """One alert delivery attempt."""
        (self.notifications_sent if outcome == "sent" else self.notifications_failed).inc()

    # -- scrape-time gauges -------------------------------------------------------------------

    def set_source(self, gauge: GaugeName, source: GaugeSource | None) -> None:
        """Read ``gauge`` from ``source()`` at every scrape (None: stop reading it)."""
        if gauge not in self._gauges:
            raise ValueError(f"unknown gauge {gauge!r}; one of {sorted(self._gauges)}")
        if source is None:
            self._sources.pop(gauge, None)
        else:
            self._sources[gauge] = source

    def set_counter_source(self, counter: CounterName, total: Callable[[], float]) -> None:
        """Add to ``counter`` what ``total()`` (a running total kept elsewhere) grew by.

        Read at each scrape; the counter keeps counting ``observe_notification`` calls too.
        """
        if counter not in self._counters:
            raise ValueError(f"unknown counter {counter!r}; one of {sorted(self._counters)}")
        self._counter_sources[counter] = (total, 0.0)

    async def refresh(self) -> None:
        """Read every source into its metric; a failing gauge source leaves its gauge NaN."""
        for name, (total, seen) in list(self._counter_sources.items()):
            try:
                now = float(total())
            except Exception as exc:
                log.warning("metrics: reading %s failed: %s", name, exc)
                continue
            if now > seen:
                self._counters[name].inc(now - seen)
            # A total that went down was restarted: count from its new value on.
            self._counter_sources[name] = (total, now)
        for gauge, source in self._sources.items():
            try:
                value = source()
                if inspect.isawaitable(value):
                    value = await value
                number = math.nan if value is None else float(value)
            except Exception as exc:  # a scrape reports what it can, it does not fail
                log.warning("metrics: reading %s failed: %s", gauge, exc)
                number = math.nan
            self._gauges[gauge].set(number)

    async def render(self) -> bytes:
        """The Prometheus text exposition, gauges refreshed first."""
        await self.refresh()
        return generate_latest(self.registry)


def create_metrics() -> Metrics:
    """A fresh :class:`Metrics` on its own registry."""
    return Metrics(CollectorRegistry())


def metrics_route(metrics: Metrics, path: str = "/metrics") -> Route:
    """``GET /metrics``: the Prometheus text format."""

    async def endpoint(_request: Request) -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Route(path, endpoint, methods=["GET"], name="metrics")


class AckLatencyMiddleware:
    """ASGI middleware timing how long the bot takes to answer Slack's HTTP requests.

    In HTTP mode Bolt answers the POST when the listener calls ``ack()``, so the time to the
    response's first byte is the acknowledgement latency Slack sees.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, *, path: str = "/slack/events") -> None:
        self.app = app
        self.metrics = metrics
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through; time it when it is a Slack request."""
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        timed = False

        async def timed_send(message: Message) -> None:
            nonlocal timed
            if message["type"] == "http.response.start" and not timed:
                timed = True
                self.metrics.observe_ack(perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed_send)
