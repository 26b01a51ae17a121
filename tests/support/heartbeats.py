"""Counting stored heartbeat samples in whichever layout part they are (head or chunks)."""

from __future__ import annotations

from bot.store.database import Database
from bot.store.heartbeats.reads import count_samples


async def stored_samples(db: Database) -> int:
    """Every heartbeat sample the database holds raw (head plus chunks)."""
    async with db.session() as session:
        head, chunked = await count_samples(session)
    return head + chunked
