"""A Starpod instance backend simulator: a real HTTP server on loopback (aiohttp.web).

It speaks the wire contract of ``design/backend-api.md`` so tests, benchmarks and the demo
can point the real client at it. Everything derives lazily from an injectable clock (no
timers per instance), every random choice from a seed, so a fake clock makes it exact.

Controls come in two forms: Python methods (``seed_instances``, ``stop_heartbeat``,
``set_faults``, ``set_variant`` ...) for in-process tests, and the same controls over an
unauthenticated admin API under ``/_sim/`` (see :mod:`bot.sim.backend_admin`) for a
simulator running in another process.

Run one: ``python -m bot.sim.backend --port 8700 --instances 20 [--api-key K]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from bot.sim.backend_admin import add_admin_routes
from bot.sim.backend_faults import GARBAGE_BODIES, Faults
from bot.sim.backend_logs import (
    DEFAULT_TAIL,
    MAX_TAIL,
    endless_log_chunks,
    iter_log_chunks,
    tail_lines,
)
from bot.sim.backend_state import HealthShape, SimInstance, TransitionError
from bot.sim.backend_wire import (
    Variant,
    encode_json,
    health_wire,
    instance_json,
    instance_wire,
    list_json,
    ssh_wire,
)
from bot.sim.listening import listen

REGIONS: tuple[str, ...] = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1")

Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def _text(status: int, body: str) -> web.Response:
    """A non-2xx answer: a short text body, as the contract says."""
    return web.Response(status=status, text=body)


def _json(obj: Any, status: int = 200) -> web.Response:
    return _json_text(encode_json(obj), status)


def _json_text(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, body=text.encode(), content_type="application/json")


_NOT_FOUND_TEXT = "Not Found"


async def _not_found(_request: web.Request) -> web.Response:
    return _text(404, _NOT_FOUND_TEXT)


def _noise_seed(instance_id: str) -> int:
    # blake2b, not hash(): str hashes change per process and the seed must not.
    return int.from_bytes(hashlib.blake2b(instance_id.encode(), digest_size=8).digest(), "big")


def new_private_key_pem() -> str:
    """A fresh ed25519 private key in OpenSSH PEM form."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()


class BackendSimulator:
    """The simulated backend: state, fault and variant controls, and its HTTP server.

    ``clock`` gives the current time in unix seconds; pass a fake for exact tests.
    ``transition_secs`` is how long creating/pause/restart/kill take to settle.
    ``path_prefix`` (e.g. ``"/api/v1"``) mounts every route under a prefix, to test base
    URLs that carry one; :attr:`url` then includes it.

    Settable attributes: ``inline_health`` (list/get answers carry ``health``),
    ``log_garbage`` (malformed lines among the good ones, which stay exactly ``tail``),
    ``ssh_keys`` (False: ssh answers ``private_key: null``). Read-only records:
    ``calls[(kind, instance_id or "")]`` and ``requests_total`` count every request to the
    instance API that reached a route, faulted or not (admin requests are not counted);
    ``issued_private_keys`` lists every key handed out.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        transition_secs: float = 1.0,
        inline_health: bool = False,
        path_prefix: str = "",
    ) -> None:
        self.api_key = api_key
        self.clock = clock
        self.seed = seed
        self.transition_secs = transition_secs
        self._default_inline_health = inline_health
        self._prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
        self.inline_health = inline_health
        self.log_garbage = False
        self.ssh_keys = True
        # Append-only, even across reset(): tests scan logs for every key ever handed out.
        self.issued_private_keys: list[str] = []
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.requests_total = 0
        self._instances: dict[str, SimInstance] = {}
        self._faults = Faults()
        self._variant = Variant()
        self._rng = random.Random(seed)
        # A separate stream for fault draws, so faults never shift the ids a seed gives.
        self._fault_rng = random.Random(f"faults-{seed}")
        self._name_counter = 0
        self._runner: web.AppRunner | None = None
        self._host: str | None = None
        self._port: int | None = None
        self._closing: asyncio.Event | None = None

    # -- server lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:8700``."""
        if self._port is None or self._host is None:
            raise RuntimeError("the simulator has not been started")
        return f"http://{self._host}:{self._port}{self._prefix}"

    @property
    def port(self) -> int | None:
        """The bound port (kept after ``stop()`` so ``start()`` can come back on it)."""
        return self._port

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` and return the base URL.

        ``port=0`` picks a free port the first time and the same port again after ``stop()``,
        so stop/start simulates a backend that refuses connections for a while.
        """
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        if port == 0 and self._port is not None:
            port = self._port
        self._closing = asyncio.Event()
        runner = web.AppRunner(
            self._build_app(),
            handler_cancellation=True,  # a client that gives up cancels a hanging request
            shutdown_timeout=1.0,
            access_log=None,
        )
        self._port = await listen(runner, host, port)
        self._runner = runner
        self._host = host
        return self.url

    async def stop(self) -> None:
        """Close the server and every connection; hanging requests end at once."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._closing is not None:
            self._closing.set()
        await runner.cleanup()

    async def __aenter__(self) -> BackendSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _build_app(self) -> web.Application:
        app = web.Application()
        p = self._prefix
        r = app.router
        r.add_post(f"{p}/instances", self._guard("create", self._create))
        r.add_get(f"{p}/instances", self._guard("list", self._list), allow_head=False)
        r.add_get(f"{p}/instances/{{id}}", self._guard("get", self._get), allow_head=False)
        r.add_delete(f"{p}/instances/{{id}}", self._guard("kill", self._kill))
        r.add_post(f"{p}/instances/{{id}}/pause", self._guard("pause", self._pause))
        r.add_post(f"{p}/instances/{{id}}/restart", self._guard("restart", self._restart))
        r.add_get(f"{p}/instances/{{id}}/logs", self._guard("logs", self._logs), allow_head=False)
        r.add_get(f"{p}/instances/{{id}}/ssh", self._guard("ssh", self._ssh), allow_head=False)
        r.add_get(
            f"{p}/instances/{{id}}/health", self._guard("health", self._health), allow_head=False
        )
        add_admin_routes(app, self, prefix=p)
        # Anything else: the contract's short "Not Found", not aiohttp's "404: Not Found".
        r.add_route("*", "/{tail:.*}", _not_found)
        return app

    # -- the request pipeline ----------------------------------------------------------------

    def _guard(self, kind: str, handler: Handler) -> Callable[[web.Request], Awaitable[Any]]:
        """Wrap a handler: count it, then latency → outage → auth → injected faults."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            instance_id = request.match_info.get("id", "")
            self.requests_total += 1
            self.calls[(kind, instance_id)] += 1
            faults = self._faults
            faulty = faults.active and faults.applies_to(kind)
            if faulty:
                if faults.latency_secs:
                    await self._wait(faults.latency_secs)
                if faults.down:
                    return _text(503, "Service Unavailable")
            if self.api_key is not None and not self._authorized(request):
                return _text(401, "Unauthorized")
            if faulty:
                rng = self._fault_rng
                if faults.error_rate and rng.random() < faults.error_rate:
                    return _text(500, "Internal Server Error")
                if faults.timeout_rate and rng.random() < faults.timeout_rate:
                    await self._wait(faults.hang_secs)
                if faults.garbage_rate and rng.random() < faults.garbage_rate:
                    body = GARBAGE_BODIES[rng.randrange(len(GARBAGE_BODIES))]
                    return web.Response(status=200, body=body, content_type="application/json")
            return await handler(request, instance_id)

        return guarded

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        expected = f"Bearer {self.api_key}".encode()
        return hmac.compare_digest(given, expected)

    async def _wait(self, secs: float) -> None:
        """Sleep, but end early when the server stops (so stop() never waits on a hang)."""
        closing = self._closing
        if closing is None:
            await asyncio.sleep(secs)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), secs)

    def _settled(self, instance_id: str, now: float) -> SimInstance | None:
        inst = self._instances.get(instance_id)
        if inst is not None:
            inst.settle(now)
        return inst

    def _wire(self, inst: SimInstance, now: float) -> dict[str, Any]:
        return instance_wire(inst, now, self._variant, inline_health=self.inline_health)

    def _wire_response(self, inst: SimInstance, now: float, status: int = 200) -> web.Response:
        text = instance_json(inst, now, self._variant, inline_health=self.inline_health)
        return _json_text(text, status)

    # -- endpoints ---------------------------------------------------------------------------

    async def _create(self, request: web.Request, _id: str) -> web.StreamResponse:
        raw = await request.read()
        fields: dict[str, Any] = {}
        if raw.strip():
            try:
                fields = json.loads(raw)
            except ValueError:
                return _text(400, "Bad Request: body is not JSON")
            if not isinstance(fields, dict):
                return _text(400, "Bad Request: body must be a JSON object")
        name, region = fields.get("name"), fields.get("region")
        if not isinstance(name, str | None) or not isinstance(region, str | None):
            return _text(400, "Bad Request: name and region must be strings")
        now = self.clock()
        inst = self._new_instance(name=name, region=region, created_at=now, status="creating")
        inst.begin_create(now, self.transition_secs)
        return self._wire_response(inst, now, status=201)

    async def _list(self, _request: web.Request, _id: str) -> web.StreamResponse:
        now = self.clock()
        instances = self._instances.values()
        for inst in instances:
            inst.settle(now)
        body = list_json(instances, now, self._variant, inline_health=self.inline_health)
        return web.Response(body=body, content_type="application/json")

    async def _get(self, _request: web.Request, instance_id: str) -> web.StreamResponse:
        now = self.clock()
        inst = self._settled(instance_id, now)
        if inst is None:
            return _text(404, _NOT_FOUND_TEXT)
        return self._wire_response(inst, now)

    async def _kill(self, _request: web.Request, instance_id: str) -> web.StreamResponse:
        return self._act(instance_id, SimInstance.kill, no_content=True)

    async def _pause(self, _request: web.Request, instance_id: str) -> web.StreamResponse:
        return self._act(instance_id, SimInstance.pause)

    async def _restart(self, _request: web.Request, instance_id: str) -> web.StreamResponse:
        return self._act(instance_id, SimInstance.restart)

    def _act(
        self,
        instance_id: str,
        action: Callable[[SimInstance, float, float], None],
        *,
        no_content: bool = False,
    ) -> web.Response:
        now = self.clock()
        inst = self._instances.get(instance_id)
        if inst is None:
            return _text(404, _NOT_FOUND_TEXT)
        try:
            action(inst, now, self.transition_secs)
        except TransitionError as exc:
            return _text(409, str(exc))
        if no_content:
            return web.Response(status=204)
        return self._wire_response(inst, now)

    async def _logs(self, request: web.Request, instance_id: str) -> web.StreamResponse:
        now = self.clock()
        inst = self._settled(instance_id, now)
        if inst is None:
            return _text(404, _NOT_FOUND_TEXT)
        raw_tail = request.query.get("tail")
        tail = DEFAULT_TAIL
        if raw_tail is not None:
            if (
                not raw_tail.isascii()
                or not raw_tail.isdigit()
                or not 1 <= int(raw_tail) <= MAX_TAIL
            ):
                return _text(400, f"Bad Request: tail must be an integer from 1 to {MAX_TAIL}")
            tail = int(raw_tail)
        variant = self._variant
        response = web.StreamResponse(status=200)
        response.content_type = "text/plain" if variant.plaintext_logs else "application/x-ndjson"
        response.enable_chunked_encoding()
        await response.prepare(request)
        if self._faults.logs_endless and self._faults.applies_to("logs"):
            # Until the client hangs up: each write waits while the client's window is full.
            async for chunk in endless_log_chunks(inst, now, plaintext=variant.plaintext_logs):
                await response.write(chunk)
        for chunk in iter_log_chunks(
            inst,
            now,
            tail,
            plaintext=variant.plaintext_logs,
            garbage=self.log_garbage,
            extra_fields=variant.extra_fields,
        ):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _ssh(self, _request: web.Request, instance_id: str) -> web.StreamResponse:
        now = self.clock()
        inst = self._settled(instance_id, now)
        if inst is None:
            return _text(404, _NOT_FOUND_TEXT)
        if inst.status != "running":
            return _text(409, f"Cannot connect: instance is {inst.status}")
        key: str | None = None
        if self.ssh_keys:
            key = new_private_key_pem()
            self.issued_private_keys.append(key)
        return _json(ssh_wire(inst, key, self._variant, now))

    async def _health(self, request: web.Request, instance_id: str) -> web.StreamResponse:
        now = self.clock()
        inst = self._settled(instance_id, now)
        if inst is None:
            return _text(404, _NOT_FOUND_TEXT)
        faults = self._faults
        if instance_id in faults.drip_ids and faults.applies_to("health"):
            return await self._drip(request, json.dumps(health_wire(inst, now, self._variant)))
        return _json(health_wire(inst, now, self._variant))

    async def _drip(self, request: web.Request, body: str) -> web.StreamResponse:
        """Send ``body`` one byte every ``drip_secs`` (headers at once); ends when we stop."""
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        response.enable_chunked_encoding()
        await response.prepare(request)
        for byte in body.encode():
            await response.write(bytes([byte]))
            await self._wait(self._faults.drip_secs)
            if self._closing is not None and self._closing.is_set():
                break
        await response.write_eof()
        return response

    # -- state controls ----------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _new_instance(
        self,
        *,
        name: str | None,
        region: str | None,
        created_at: float,
        status: str,
        instance_id: str | None = None,
    ) -> SimInstance:
        instance_id = instance_id if instance_id is not None else self._new_id()
        if instance_id in self._instances:
            raise ValueError(f"instance {instance_id} already exists")
        inst = SimInstance(
            id=instance_id,
            name=name,
            region=region,
            created_at=created_at,
            status=status,
            updated_at=created_at,
            shape=HealthShape.draw(self._rng),
            noise_seed=_noise_seed(instance_id),
        )
        self._instances[instance_id] = inst
        return inst

    def _lookup(self, instance_id: str) -> SimInstance:
        try:
            return self._instances[instance_id]
        except KeyError:
            raise KeyError(f"unknown instance {instance_id}") from None

    def seed_instances(
        self,
        count: int,
        *,
        status: str = "running",
        region: str | None = None,
        name_prefix: str = "pod",
    ) -> list[str]:
        """Add ``count`` instances that already sit in ``status`` (no transition pending).

        They are hours to weeks old; running ones have varied uptimes, others left running a
        while ago (their heartbeat is frozen then). ``region=None`` spreads them over
        :data:`REGIONS`. Names are ``<name_prefix>-001`` onwards. Returns their ids.
        """
        if count < 0:
            raise ValueError("count must not be negative")
        _check_status(status)
        now = self.clock()
        rng = self._rng
        ids: list[str] = []
        for _ in range(count):
            self._name_counter += 1
            age = rng.uniform(3_600.0, 30 * 86_400.0)
            ran_for = rng.uniform(0.5, 0.95)
            inst = self._new_instance(
                name=f"{name_prefix}-{self._name_counter:03d}",
                region=region if region is not None else rng.choice(REGIONS),
                created_at=now if status == "creating" else now - age,
                status=status,
            )
            if status == "running":
                inst.started_at = now - age * ran_for
                inst.updated_at = inst.started_at
            elif status != "creating":
                inst.started_at = inst.created_at + 30.0
                inst.left_running_at = inst.started_at + (now - inst.started_at) * ran_for
                inst.heartbeat_stops_at = inst.left_running_at
                inst.updated_at = inst.left_running_at
            ids.append(inst.id)
        return ids

    def add_instance(
        self,
        *,
        name: str | None = None,
        region: str | None = None,
        status: str = "running",
        id: str | None = None,  # the wire field's name, kept for callers
    ) -> str:
        """Add one instance created now, in ``status`` (``None`` name/region stay null)."""
        _check_status(status)
        now = self.clock()
        inst = self._new_instance(
            name=name, region=region, created_at=now, status=status, instance_id=id
        )
        if status == "running":
            inst.started_at = now
        return inst.id

    def stop_heartbeat(self, instance_id: str, *, sticky: bool = False) -> None:
        """Freeze the heartbeat now; ``sticky`` keeps it frozen across restarts."""
        self._lookup(instance_id).stop_heartbeat(self.clock(), sticky=sticky)

    def resume_heartbeat(self, instance_id: str) -> None:
        """Let the heartbeat beat again (and clear stickiness)."""
        self._lookup(instance_id).resume_heartbeat(self.clock())

    def schedule_stall(
        self, instance_id: str, after_secs: float, *, survives_restarts: int = 0
    ) -> None:
        """The heartbeat stops by itself ``after_secs`` from now; a restart revives it,
        except the first ``survives_restarts`` after the stall (a wedge)."""
        self._lookup(instance_id).schedule_stall(
            self.clock(), after_secs, survives_restarts=survives_restarts
        )

    def set_status(self, instance_id: str, status: str) -> None:
        """Force a status at once (any non-empty string, e.g. ``"error"`` or ``"deleting"``)."""
        _check_status(status)
        self._lookup(instance_id).force_status(status, self.clock())

    def set_faults(
        self,
        *,
        error_rate: float = 0.0,
        timeout_rate: float = 0.0,
        garbage_rate: float = 0.0,
        latency_secs: float = 0.0,
        hang_secs: float = 60.0,
        endpoints: Iterable[str] | None = None,
        down: bool = False,
        logs_endless: bool = False,
        drip_ids: Iterable[str] = (),
        drip_secs: float = 20.0,
    ) -> None:
        """Replace the fault settings (all defaults: no faults). See :class:`Faults`."""
        self._faults = Faults.build(
            error_rate=error_rate,
            timeout_rate=timeout_rate,
            garbage_rate=garbage_rate,
            latency_secs=latency_secs,
            hang_secs=hang_secs,
            endpoints=endpoints,
            down=down,
            logs_endless=logs_endless,
            drip_ids=drip_ids,
            drip_secs=drip_secs,
        )

    @property
    def faults(self) -> Faults:
        """The current fault settings."""
        return self._faults

    def set_variant(
        self,
        *,
        capitalised_status: bool = False,
        rfc3339_times: bool = False,
        plaintext_logs: bool = False,
        extended_statuses: bool = False,
        extra_fields: bool = False,
    ) -> None:
        """Replace the variant flags (all defaults: the contract as written)."""
        self._variant = Variant(
            capitalised_status=capitalised_status,
            rfc3339_times=rfc3339_times,
            plaintext_logs=plaintext_logs,
            extended_statuses=extended_statuses,
            extra_fields=extra_fields,
        )

    @property
    def variant(self) -> Variant:
        """The current variant flags."""
        return self._variant

    def reset(self) -> None:
        """Drop instances, faults, variants and counters; re-seed (ids repeat from the start).

        ``issued_private_keys`` is kept: it records every key ever handed out.
        """
        self._instances.clear()
        self._faults = Faults()
        self._variant = Variant()
        self.inline_health = self._default_inline_health
        self.log_garbage = False
        self.ssh_keys = True
        self.calls.clear()
        self.requests_total = 0
        self._rng = random.Random(self.seed)
        self._fault_rng = random.Random(f"faults-{self.seed}")
        self._name_counter = 0

    # -- inspection --------------------------------------------------------------------------

    def instance_ids(self) -> list[str]:
        """All instance ids, in creation order."""
        return list(self._instances)

    def instance(self, instance_id: str) -> dict[str, Any]:
        """The instance as GET /instances/{id} would answer now (current variant)."""
        now = self.clock()
        inst = self._lookup(instance_id)
        inst.settle(now)
        return self._wire(inst, now)

    def health(self, instance_id: str) -> dict[str, Any]:
        """The HealthInfo that GET /instances/{id}/health would answer now."""
        now = self.clock()
        inst = self._lookup(instance_id)
        inst.settle(now)
        return health_wire(inst, now, self._variant)

    def log_entries(self, instance_id: str, tail: int = DEFAULT_TAIL) -> list[dict[str, Any]]:
        """The good log entries a tail request would stream now (to compare a client with)."""
        now = self.clock()
        inst = self._lookup(instance_id)
        inst.settle(now)
        return [
            {"timestamp": line.timestamp, "level": line.level, "message": line.message}
            for line in tail_lines(inst, now, tail)
        ]

    def state(self) -> dict[str, Any]:
        """Counts by status, counters and settings (what GET /_sim/state answers)."""
        now = self.clock()
        by_status: collections.Counter[str] = collections.Counter()
        for inst in self._instances.values():
            inst.settle(now)
            by_status[inst.status] += 1
        by_kind: collections.Counter[str] = collections.Counter()
        for (kind, _), count in self.calls.items():
            by_kind[kind] += count
        return {
            "instances": len(self._instances),
            "by_status": dict(by_status),
            "requests_total": self.requests_total,
            "calls_by_kind": dict(by_kind),
            "calls": [
                {"kind": kind, "instance_id": iid, "count": count}
                for (kind, iid), count in self.calls.items()
            ],
            "faults": self._faults.as_dict(),
            "variant": self._variant.as_dict(),
            "inline_health": self.inline_health,
            "log_garbage": self.log_garbage,
            "ssh_keys": self.ssh_keys,
            "issued_private_keys": len(self.issued_private_keys),
        }


def _check_status(status: object) -> None:
    if not isinstance(status, str) or not status:
        raise ValueError("status must be a non-empty string")


async def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8700,
    instances: int = 20,
    api_key: str | None = None,
    stall_after: float | None = None,
    seed: int = 0,
    transition_secs: float = 1.0,
    inline_health: bool = False,
    on_ready: Callable[[BackendSimulator], None] | None = None,
) -> None:
    """Run a simulator until cancelled: seed ``instances`` running ones, optionally let the
    first one's heartbeat stall ``stall_after`` seconds in, and call ``on_ready`` once listening.
    """
    sim = BackendSimulator(
        api_key=api_key, seed=seed, transition_secs=transition_secs, inline_health=inline_health
    )
    ids = sim.seed_instances(instances)
    if stall_after is not None and ids:
        sim.schedule_stall(ids[0], stall_after)
    await sim.start(host, port)
    try:
        if on_ready is not None:
            on_ready(sim)
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.sim.backend", description="Run the Starpod backend simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    parser.add_argument("--stall-after", type=float, default=None, metavar="SECS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transition-secs", type=float, default=1.0)
    parser.add_argument("--inline-health", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: run until Ctrl-C, printing the base URL once listening."""
    args = _parse_args(argv)

    def ready(sim: BackendSimulator) -> None:
        auth = "bearer key required" if args.api_key else "no auth"
        print(
            f"Starpod backend simulator on {sim.url} ({args.instances} instances, {auth})",
            flush=True,
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                host=args.host,
                port=args.port,
                instances=args.instances,
                api_key=args.api_key,
                stall_after=args.stall_after,
                seed=args.seed,
                transition_secs=args.transition_secs,
                inline_health=args.inline_health,
                on_ready=ready,
            )
        )


if __name__ == "__main__":
    main()
