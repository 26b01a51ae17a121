"""`/starpod ssh` and one-time key links: the key never enters Slack, logs or the database."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.store.database import Database
from bot.store.slack_models import SshKeyLink
from bot.store.ssh_links import SshLinkService
from bot.web.app import create_web_app
from bot.web.ratelimit import RateLimiter
from bot.web.server import serve_web
from tests.slack.conftest import OPERATOR, Bot, message_text

LINK = re.compile(r"https?://[^\s'|>`]+/ssh-key/[A-Za-z0-9_-]+")


async def get(url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    """What a browser, a link preview or a scanner does on its own: never spends the link."""
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


async def reveal(url: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    """The explicit reveal (the page's button, or ``curl -X POST``): spends the link."""
    async with aiohttp.ClientSession() as session, session.post(url, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


async def ask_link(bot: Bot) -> tuple[str, str]:
    """Ask for SSH access; returns the one-time link and the key the backend issued."""
    answer = await bot.ask("ssh pod-001")
    text = message_text(answer)
    match = LINK.search(text)
    assert match, text
    key = bot.sim.issued_private_keys[-1]
    assert "PRIVATE KEY" in key
    assert key not in text and "PRIVATE KEY" not in text  # never in Slack
    return match.group(0), key


async def test_the_link_gives_the_key_once(bot: Bot) -> None:
    answer = await bot.ask("ssh pod-001")
    text = message_text(answer)
    info = bot.sim.instance(bot.ids[0])
    assert "ssh -i ~/.ssh/starpod-" in text and "expires in 5 m" in text
    assert info["id"][:8] in text
    url = LINK.search(text).group(0)  # type: ignore[union-attr]
    key = bot.sim.issued_private_keys[-1]
    status, body, headers = await reveal(url)
    assert status == 200
    assert body == key if key.endswith("\n") else body == key + "\n"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"].startswith("text/plain")
    status, body, _ = await reveal(url)
    assert status == 410
    assert "already used or has expired" in body
    assert bot.emulator.violations() == []


async def test_the_link_expires(bot: Bot) -> None:
    url, _key = await ask_link(bot)
    bot.clock.advance(301)
    status, body, _ = await reveal(url)
    assert status == 410 and "expired" in body


async def test_unknown_and_malformed_tokens(bot: Bot) -> None:
    for fetch in (get, reveal):
        assert (await fetch(f"{bot.url}/ssh-key/{'A' * 43}"))[0] == 404
        assert (await fetch(f"{bot.url}/ssh-key/short"))[0] == 404


async def test_opening_previewing_or_heading_the_link_never_spends_it(bot: Bot) -> None:
    url, key = await ask_link(bot)
    for _ in range(3):
        status, page, headers = await get(url)
        assert status == 200 and "PRIVATE" not in page and 'method="post"' in page
        assert headers["Cache-Control"] == "no-store"
        assert "form-action 'self'" in headers["Content-Security-Policy"]
    async with aiohttp.ClientSession() as session, session.head(url) as response:
        assert response.status == 200
    status, body, _ = await get(url, **{"User-Agent": "Slackbot-LinkExpanding 1.0"})
    assert status == 403
    status, body, _ = await reveal(url)  # the key is still there, once
    assert status == 200 and key.strip() in body
    assert (await get(url))[0] == 410  # and the page now says it is spent
    assert (await reveal(url))[0] == 410


async def test_link_previews_do_not_use_up_the_link(bot: Bot) -> None:
    url, key = await ask_link(bot)
    status, body, _ = await get(url, **{"User-Agent": "Slackbot-LinkExpanding 1.0"})
    assert status == 403 and "PRIVATE" not in body
    status, body, _ = await reveal(url)
    assert status == 200 and key.strip() in body


async def test_two_concurrent_fetches_get_exactly_one_key(bot: Bot) -> None:
    url, key = await ask_link(bot)
    results = await asyncio.gather(reveal(url), reveal(url))
    assert sorted(status for status, _, _ in results) == [200, 410]
    assert sum(key.strip() in body for _, body, _ in results) == 1


async def test_fifty_concurrent_fetches_get_exactly_one_key(bot: Bot) -> None:
    url, key = await ask_link(bot)
    # A second server on the same link service, without the per-client limit, so all 50
    # requests race for the claim instead of 40 of them being turned away with 429.
    web = create_web_app(
        slack_app=bot.app,
        signing_secret=bot.settings.slack.signing_secret,
        ssh_links=bot.deps.ssh_links,
        key_rate_limit=RateLimiter(limit=1000),
    )
    async with serve_web(web) as server:
        racing = url.replace(bot.url, server.url)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as session:

            async def fetch() -> tuple[int, str]:
                async with session.post(racing) as response:
                    return response.status, await response.text()

            results = await asyncio.gather(*(fetch() for _ in range(50)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 1 and statuses.count(410) == 49
    assert sum(key.strip() in body for _, body in results) == 1


async def test_fetches_are_rate_limited_per_client(bot: Bot) -> None:
    statuses = [(await get(f"{bot.url}/ssh-key/{'B' * 43}"))[0] for _ in range(11)]
    assert statuses[:10] == [404] * 10
    assert statuses[10] == 429


async def test_the_key_is_never_logged_nor_stored_in_plaintext(
    bot: Bot, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with caplog.at_level(logging.DEBUG):
        url, key = await ask_link(bot)
        body = key.strip().splitlines()[1]  # a line of the key's base64 body
        async with bot.db.session() as session:
            [row] = (await session.scalars(select(SshKeyLink))).all()
        assert row.ciphertext is not None and body not in row.ciphertext
        assert url.rsplit("/", 1)[1] not in row.token_hash  # only the hash is stored
        assert body.encode() not in _database_bytes(bot.db)
        status, fetched, _ = await reveal(url)
        assert status == 200 and body in fetched
        async with bot.db.session() as session:
            [row] = (await session.scalars(select(SshKeyLink))).all()
        assert row.ciphertext is None and row.used_at is not None  # wiped on use
        await get(url)  # and once more, for the 410 path
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert body not in logged and "PRIVATE KEY" not in logged
    assert url.rsplit("/", 1)[1] not in logged
    assert repr(bot.deps.ssh_links).count("PRIVATE") == 0


def _database_bytes(db: Database) -> bytes:
    assert db.sqlite_path is not None
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(db.sqlite_path) + suffix)
        if path.exists():
            data += path.read_bytes()
    return data


async def test_without_a_public_url_the_cli_is_suggested(private_bot: Bot) -> None:
    text = message_text(await private_bot.ask("ssh pod-001"))
    assert "starpod-bot instance ssh" in text
    assert "/ssh-key/" not in text and "PRIVATE KEY" not in text
    async with private_bot.db.session() as session:
        assert (await session.scalars(select(SshKeyLink))).all() == []


async def test_without_an_ephemeral_key_the_usual_key_is_used(bot: Bot) -> None:
    bot.sim.ssh_keys = False
    text = message_text(await bot.ask("ssh pod-001"))
    assert "Connect with your usual key" in text and "/ssh-key/" not in text


async def test_ssh_to_a_paused_instance_shows_the_backend_answer(bot: Bot) -> None:
    bot.sim.set_status(bot.ids[0], "paused")
    text = message_text(await bot.ask("ssh pod-001", user=OPERATOR))
    assert "409" in text and "Cannot connect: instance is paused" in text


# -- the service alone, on both databases ------------------------------------------------


async def _race(links: SshLinkService, token: str, count: int) -> list[str | None]:
    async def claim() -> str | None:
        try:
            return await links.claim(token)
        except Exception:
            return None

    return await asyncio.gather(*(claim() for _ in range(count)))


async def test_service_claims_once_under_concurrency_sqlite(db: Database) -> None:
    links = SshLinkService(db, public_url="https://bot.example", key_secret="s3cret")
    issued = await links.issue(instance_id="i-1", user_id="U1", private_key="KEY-MATERIAL")
    token = issued.url.rsplit("/", 1)[1]
    results = await _race(links, token, 50)
    assert results.count("KEY-MATERIAL") == 1 and results.count(None) == 49
    assert "url" not in repr(issued)


async def test_service_claims_once_under_concurrency_postgres(pg_store: Database) -> None:
    links = SshLinkService(pg_store, public_url="https://bot.example")
    issued = await links.issue(instance_id="i-1", user_id="U1", private_key="KEY-MATERIAL")
    token = issued.url.rsplit("/", 1)[1]
    results = await _race(links, token, 50)
    assert results.count("KEY-MATERIAL") == 1 and results.count(None) == 49


async def test_a_key_secret_shared_by_replicas_opens_links_from_either(db: Database) -> None:
    first = SshLinkService(db, public_url="https://a.example", key_secret="shared secret")
    second = SshLinkService(db, public_url="https://b.example", key_secret="shared secret")
    issued = await first.issue(instance_id="i", user_id="U", private_key="K")
    assert await second.claim(issued.url.rsplit("/", 1)[1]) == "K"


async def test_a_link_from_a_restarted_process_with_a_random_key_is_gone(db: Database) -> None:
    before = SshLinkService(db, public_url="https://a.example")
    issued = await before.issue(instance_id="i", user_id="U", private_key="K")
    after = SshLinkService(db, public_url="https://a.example")
    with pytest.raises(Exception, match="restarted"):
        await after.claim(issued.url.rsplit("/", 1)[1])
