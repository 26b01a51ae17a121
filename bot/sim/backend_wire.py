"""Wire shapes of the simulated backend, in the contract's form or in one of its variants.

The variants are the drift that ``design/backend-api.md`` says a tolerant client must accept:
capitalised and extra statuses, RFC 3339 timestamps, plain-text log lines and unknown fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from bot.sim.backend_state import SimInstance


@dataclass(slots=True, frozen=True)
class Variant:
    """Which drift the simulator shows; all off is the contract as written."""

    capitalised_status: bool = False
    rfc3339_times: bool = False
    plaintext_logs: bool = False
    extended_statuses: bool = False
    extra_fields: bool = False

    def as_dict(self) -> dict[str, bool]:
        """The flags as a JSON-ready dict (for the admin state)."""
        return asdict(self)


@lru_cache(maxsize=65_536)
def rfc3339(t: int) -> str:
    """Unix seconds as ``2026-03-14T10:05:00Z`` (cached: lists repeat the same seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def wire_time(t: float, variant: Variant) -> int | str:
    """A timestamp as the variant sends it."""
    return rfc3339(int(t)) if variant.rfc3339_times else int(t)


def wire_status(inst: SimInstance, variant: Variant) -> str:
    """The status a client sees: the old one during a transition, or its label if extended."""
    status = inst.status
    if variant.extended_statuses and inst.pending_label is not None:
        status = inst.pending_label
    return status.capitalize() if variant.capitalised_status else status


def health_wire(inst: SimInstance, now: float, variant: Variant) -> dict[str, Any]:
    """HealthInfo for ``inst`` as of ``now`` (the instance must be settled)."""
    h = inst.health(now)
    body: dict[str, Any] = {
        "cpu_percent": h.cpu_percent,
        "memory_mb": h.memory_mb,
        "disk_mb": h.disk_mb,
        "last_heartbeat": rfc3339(h.last_heartbeat) if variant.rfc3339_times else h.last_heartbeat,
        "uptime_secs": h.uptime_secs,
    }
    if variant.extra_fields:
        body["load_avg"] = [round(h.cpu_percent / 25, 2), round(h.cpu_percent / 30, 2)]
        body["net_rx_kbps"] = (inst.noise_seed % 900) + 100
        body["gpu"] = None
    return body


def instance_wire(
    inst: SimInstance, now: float, variant: Variant, *, inline_health: bool
) -> dict[str, Any]:
    """Instance for ``inst`` as of ``now`` (the instance must be settled)."""
    rfc = variant.rfc3339_times
    body: dict[str, Any] = {
        "id": inst.id,
        "name": inst.name,
        "status": wire_status(inst, variant),
        "region": inst.region,
        "created_at": rfc3339(int(inst.created_at)) if rfc else int(inst.created_at),
        "updated_at": rfc3339(int(inst.updated_at)) if rfc else int(inst.updated_at),
    }
    if inline_health:
        body["health"] = health_wire(inst, now, variant)
    if variant.extra_fields:
        body["image"] = "starpod/runtime:2.3.1"
        body["plan"] = "s-2vcpu-4gb"
        body["tags"] = ["sim", inst.region or "default"]
        body["owner"] = {"team": "platform", "id": inst.noise_seed % 97}
    return body


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def encode_json(obj: Any) -> str:
    """Compact JSON, as the simulator sends it."""
    return _ENCODE(obj)


def instance_json(inst: SimInstance, now: float, variant: Variant, *, inline_health: bool) -> str:
    """``instance_wire`` encoded as compact JSON, fast for the common variants.

    Lists of 10,000 must take tens of milliseconds, so when neither RFC 3339 times nor extra
    fields are on, the unchanging head of each object is encoded once per status change and
    only the health figures are formatted per request. Same output as ``encode_json``.
    """
    if variant.rfc3339_times or variant.extra_fields:
        return _ENCODE(instance_wire(inst, now, variant, inline_health=inline_health))
    key = (inst.version, variant)
    if inst.wire_key != key:
        head = _ENCODE(instance_wire(inst, now, variant, inline_health=False))
        inst.wire_prefix = head[:-1]  # without the closing brace
        inst.wire_key = key
    if not inline_health:
        return inst.wire_prefix + "}"
    cpu, memory, disk, heartbeat, uptime = inst.health(now)
    return (
        f'{inst.wire_prefix},"health":{{"cpu_percent":{cpu!r},"memory_mb":{memory},'
        f'"disk_mb":{disk},"last_heartbeat":{heartbeat},"uptime_secs":{uptime}}}}}'
    )


def list_json(
    instances: Iterable[SimInstance], now: float, variant: Variant, *, inline_health: bool
) -> bytes:
    """The body of GET /instances (instances must be settled)."""
    parts = [instance_json(inst, now, variant, inline_health=inline_health) for inst in instances]
    return ("[" + ",".join(parts) + "]").encode()


def ssh_wire(
    inst: SimInstance, private_key: str | None, variant: Variant, now: float
) -> dict[str, Any]:
    """SshInfo for ``inst``; the key is the caller's (fresh per call)."""
    body: dict[str, Any] = {
        "host": f"{inst.id[:8]}.sim.starpod.test",
        "port": 22,
        "user": "starpod",
        "private_key": private_key,
    }
    if variant.extra_fields:
        body["fingerprint"] = f"SHA256:sim{inst.noise_seed:016x}"
        body["expires_at"] = wire_time(now + 300, variant)
    return body
