"""Who is calling: the ``X-API-Key`` header, checked in constant time against the keys.

Keys come from settings (``STARPOD_GATEWAY_KEYS=name:role:key,…``); each carries a role
with the same meaning as in Slack (:class:`bot.catalog.Role`): viewer reads, operator
also creates, pauses and restarts, admin also kills. The FastAPI dependencies that use
the ring are in :mod:`bot.gateway.dependencies`.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from bot.catalog import Role
from bot.config import GatewayKey

HEADER = "X-API-Key"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: the key's name (never the key) and its role."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How audit rows and history name this caller: ``gateway:<key name>``."""
        return f"gateway:{self.name}"


class KeyRing:
    """The configured keys; :meth:`identify` finds the caller of a presented key."""

    def __init__(self, keys: Sequence[GatewayKey]) -> None:
        self._keys = [
            (key.key.get_secret_value().encode(), Caller(key.name, Role[key.role.upper()]))
            for key in keys
        ]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._keys)} keys)"

    def identify(self, presented: str | None) -> Caller | None:
        """The caller owning ``presented``, or None.

        Every key is compared, with ``hmac.compare_digest``, whatever matched earlier: the
        time taken says nothing about how close a guess came or which key it hit.
        """
        if not presented:
            return None
        # Headers arrive as latin-1 text; compare the bytes that were sent.
        try:
            raw = presented.encode("latin-1")
        except UnicodeEncodeError:
            return None
        found: Caller | None = None
        for key, caller in self._keys:
            if hmac.compare_digest(raw, key) and found is None:
                found = caller
        return found
