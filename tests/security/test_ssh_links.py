"""One-time SSH key links: unguessable, stored hashed, rate limited, single use, expiring.

Through the real bot: ``/starpod ssh`` makes the simulator hand out a fresh private key, the
bot answers with a link, and the link is fetched over HTTP from many loopback addresses
(127.0.0.x: each is a different client to the rate limiter).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bot.store.slack_models import SshKeyLink

OPERATOR = "U0OPERATOR"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)/ssh-key/([A-Za-z0-9_-]+)")


async def _link(bot: Any, name: str) -> tuple[str, str, str]:
    """Ask for ssh; return (base url, token, the key the backend issued)."""
    issued = len(bot.sim.issued_private_keys)
    answer = bot.visible(await bot.command(f"ssh {name}", user=OPERATOR))
    match = LINK.search(answer)
    assert match, answer
    assert len(bot.sim.issued_private_keys) == issued + 1
    return match.group(1), match.group(2), bot.sim.issued_private_keys[-1]


async def _fetch(base: str, token: str, *, source: str = "127.0.0.1") -> tuple[int, str]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(f"{base}/ssh-key/{token}") as response,
    ):
        return response.status, await response.text()


async def test_links_are_unguessable_hashed_single_use_rate_limited_and_expire(
    bot: Any, tmp_path: Path, reliability_figures: dict[str, object]
) -> None:
    names = [bot.sim.instance(i)["name"] for i in bot.sim.instance_ids()]
    base, token, key = await _link(bot, names[0])

    # >= 128 bits of randomness, and the database holds only its SHA-256.
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) * 8 >= 128, len(raw)
    async with bot.db.session() as session:
        rows = list(await session.scalars(select(SshKeyLink)))
    assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    stored = await asyncio.to_thread(
        lambda: b"".join(p.read_bytes() for p in tmp_path.glob("security.db*"))
    )
    assert token.encode() not in stored and key.encode() not in stored

    # Single use under 50 concurrent fetches, each from its own client address.
    results = await asyncio.gather(
        *(_fetch(base, token, source=f"127.0.0.{n}") for n in range(2, 52))
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [410] * 49, statuses
    assert [body for status, body in results if status == 200] == [key]
    # Used: the ciphertext is wiped too.
    async with bot.db.session() as session:
        row = await session.scalar(select(SshKeyLink))
        assert row is not None and row.ciphertext is None and row.used_at is not None

    # Rate limited per client: 10 tries a minute, then 429; another client is unaffected.
    guesses = [(await _fetch(base, "A" * 43, source="127.0.0.60"))[0] for _ in range(12)]
    assert guesses[:10] == [404] * 10 and guesses[10:] == [429, 429], guesses
    assert (await _fetch(base, "B" * 43, source="127.0.0.61"))[0] == 404

    # Expired links are refused (the bot's clock moves past the 5-minute default).
    _, late_token, _ = await _link(bot, names[1])
    bot.clock.advance(301)
    assert (await _fetch(base, late_token, source="127.0.0.62"))[0] == 410

    # The key never entered Slack.
    everything = str(bot.slack.snapshot())
    for issued in bot.sim.issued_private_keys:
        assert issued not in everything and issued.splitlines()[1] not in everything
    reliability_figures.update(
        token_bits=len(raw) * 8,
        concurrent_fetches=50,
        keys_served=1,
        guesses_before_429=10,
    )
