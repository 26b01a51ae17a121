"""Faults the simulated backend can inject: errors, hangs, garbage, latency, outage, drips."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ENDPOINT_KINDS: frozenset[str] = frozenset(
    {"create", "list", "get", "kill", "pause", "restart", "logs", "ssh", "health"}
)

# 200 answers a client cannot parse: truncated JSON, HTML, a half array, binary junk.
GARBAGE_BODIES: tuple[bytes, ...] = (
    b'{"id": "x", "sta',
    b"<html>oops</html>",
    b'[{"id": ',
    b"\x00\x01\xfe garbage",
)


@dataclass(slots=True, frozen=True)
class Faults:
    """Fault settings; the default injects nothing.

    ``endpoints`` limits every fault (including ``latency_secs`` and ``down``) to some
    endpoint kinds; ``None`` means all of them.
    """

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    garbage_rate: float = 0.0
    latency_secs: float = 0.0
    hang_secs: float = 60.0
    endpoints: frozenset[str] | None = None
    down: bool = False
    # The logs endpoint ignores ?tail= and never ends its body (a hostile or broken backend).
    logs_endless: bool = False
    # These instances' health answers drip: headers at once, then one byte every
    # ``drip_secs`` (a slow peer that never trips a read timeout).
    drip_ids: frozenset[str] = frozenset()
    drip_secs: float = 20.0

    @classmethod
    def build(
        cls,
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
    ) -> Faults:
        """Validate and build; raises ``ValueError`` on a bad rate, duration or endpoint."""
        for name, rate in (
            ("error_rate", error_rate),
            ("timeout_rate", timeout_rate),
            ("garbage_rate", garbage_rate),
        ):
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if float(latency_secs) < 0 or float(hang_secs) < 0:
            raise ValueError("latency_secs and hang_secs must not be negative")
        if isinstance(drip_ids, str):
            raise ValueError("drip_ids must be a collection of instance ids")
        if float(drip_secs) <= 0:
            raise ValueError("drip_secs must be positive")
        kinds: frozenset[str] | None = None
        if endpoints is not None:
            if isinstance(endpoints, str):
                raise ValueError("endpoints must be a collection of endpoint kinds")
            kinds = frozenset(endpoints)
            unknown = kinds - ENDPOINT_KINDS
            if unknown:
                raise ValueError(f"unknown endpoint kinds: {', '.join(sorted(unknown))}")
        return cls(
            error_rate=float(error_rate),
            timeout_rate=float(timeout_rate),
            garbage_rate=float(garbage_rate),
            latency_secs=float(latency_secs),
            hang_secs=float(hang_secs),
            endpoints=kinds,
            down=bool(down),
            logs_endless=bool(logs_endless),
            drip_ids=frozenset(str(i) for i in drip_ids),
            drip_secs=float(drip_secs),
        )

    @property
    def active(self) -> bool:
        """Whether any fault is set (the fast path skips everything when not)."""
        return bool(
            self.error_rate
            or self.timeout_rate
            or self.garbage_rate
            or self.latency_secs
            or self.down
            or self.logs_endless
            or self.drip_ids
        )

    def applies_to(self, kind: str) -> bool:
        """Whether faults apply to this endpoint kind."""
        return self.endpoints is None or kind in self.endpoints

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready settings (for the admin state)."""
        return {
            "error_rate": self.error_rate,
            "timeout_rate": self.timeout_rate,
            "garbage_rate": self.garbage_rate,
            "latency_secs": self.latency_secs,
            "hang_secs": self.hang_secs,
            "endpoints": sorted(self.endpoints) if self.endpoints is not None else None,
            "down": self.down,
            "logs_endless": self.logs_endless,
            "drip_ids": sorted(self.drip_ids),
            "drip_secs": self.drip_secs,
        }
