"""Single-use kill confirmations: a kill runs only from a prompt the bot showed.

Showing a kill button (the ``/starpod kill`` prompt, a health card) issues a token bound
to the instance and to the user the button was shown to; the token rides in the button's
block id and only its SHA-256 is stored. The click spends it with one atomic
``UPDATE … SET used_at = now WHERE token_hash = … AND instance_id = … AND user_id = … AND
used_at IS NULL AND expires_at > now``: of two clicks (a double tap, a replay, two
replicas) only one update touches the row. Anything else (a token never issued, spent or
expired, another user's click, a click naming another instance) is refused with the
reason, and nothing is killed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import AccessDenied
from bot.store.database import Database
from bot.store.slack_models import KillConfirmation

TOKEN_BYTES = 18
CONFIRM_TTL = timedelta(minutes=15)
# Spent and expired tokens stay a day, so a late click is told "used"/"expired", not "unknown".
KEEP_GONE_FOR = timedelta(days=1)


class KillRefused(AccessDenied):
    """A kill click that no live confirmation of this user's for this instance allows."""

    def __init__(self, message: str) -> None:
        # Not a matter of role: only the user the prompt was shown to may confirm it.
        super().__init__(message, needed_role="the user the confirmation was shown to")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KillConfirmations:
    """Issues and spends kill confirmation tokens (see the module doc)."""

    def __init__(
        self, db: Database, clock: Callable[[], datetime], *, ttl: timedelta = CONFIRM_TTL
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl

    async def issue(self, *, instance_id: str, user_id: str) -> str:
        """A fresh token letting ``user_id`` kill ``instance_id`` once, within the TTL."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self._clock()

        async def _store(session: AsyncSession) -> None:
            await session.execute(
                delete(KillConfirmation).where(KillConfirmation.expires_at < now - KEEP_GONE_FOR)
            )
            session.add(
                KillConfirmation(
                    token_hash=_hash(token),
                    instance_id=instance_id,
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + self._ttl,
                    used_at=None,
                )
            )

        await self._db.run(_store)
        return token

    async def spend(self, token: str | None, *, instance_id: str, user_id: str) -> None:
        """Spend ``token`` for this kill, or raise :class:`KillRefused` saying why not."""
        if not token:
            raise KillRefused(
                "This kill button is not one I showed you. Run /starpod kill <instance> "
                "and confirm there."
            )
        token_hash = _hash(token)
        now = self._clock()

        async def _spend(session: AsyncSession) -> KillConfirmation | None:
            spent = await session.execute(
                update(KillConfirmation)
                .where(
                    KillConfirmation.token_hash == token_hash,
                    KillConfirmation.instance_id == instance_id,
                    KillConfirmation.user_id == user_id,
                    KillConfirmation.used_at.is_(None),
                    KillConfirmation.expires_at > now,
                )
                .values(used_at=now)
                .returning(KillConfirmation.token_hash)
            )
            if spent.first() is not None:
                return None
            row = await session.scalar(
                select(KillConfirmation).where(KillConfirmation.token_hash == token_hash)
            )
            if row is None:
                raise KillRefused(
                    "This kill confirmation is not one I issued. Run /starpod kill <instance> "
                    "and confirm there."
                )
            session.expunge(row)
            return row

        row = await self._db.run(_spend)
        if row is None:
            return
        if row.user_id != user_id:
            raise KillRefused(
                f"This confirmation was shown to <@{row.user_id}>; only they can confirm it. "
                "Run /starpod kill <instance> yourself to get your own."
            )
        if row.instance_id != instance_id:
            raise KillRefused(
                "This confirmation was for another instance; nothing was killed. "
                "Run /starpod kill <instance> again."
            )
        if row.used_at is not None:
            raise KillRefused("This kill confirmation was already used; nothing more was done.")
        raise KillRefused("This kill confirmation expired. Run /starpod kill <instance> again.")
