"""One-time links to ephemeral SSH keys, so a private key never enters Slack.

When the backend hands out a private key for a session, the bot stores it encrypted and
answers in Slack with ``<public_url>/ssh-key/<token>``:

- the token is ``secrets.token_urlsafe(32)`` (256 bits); only its SHA-256 is stored, so a
  copy of the database gives no working link, and the lookup by hash leaks nothing about
  the token through timing;
- the key is Fernet-encrypted with ``settings.ssh.key_secret`` (or a random per-process
  key: links then die with the process, which a 5-minute link survives badly only across
  restarts); it is wiped from the row the moment it is fetched;
- a link works once, even under concurrent fetches: it is claimed with one atomic
  ``UPDATE … SET used_at = now WHERE token_hash = … AND used_at IS NULL AND
  expires_at > now`` and only the request whose update touched the row gets the key;
- it expires after ``settings.ssh.link_ttl_secs`` (300 s by default);
- only an explicit reveal spends it (the web app's ``POST``): a ``GET`` or ``HEAD``, which
  link previews, prefetchers and mail scanners send on their own, only :meth:`check` it.

Nothing here logs a key, a token or a ciphertext.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import SecretStr
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.errors import UserError
from bot.store.database import Database
from bot.store.slack_models import SshKeyLink

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{40,64}$")
# Used and expired rows stay a day (so a late click gets "used"/"expired", not "unknown").
KEEP_GONE_FOR = timedelta(days=1)
LINK_PATH = "/ssh-key/"
_GONE = "This one-time link was already used or has expired. Ask again with /starpod ssh in Slack."

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    """The default clock: the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class LinkError(UserError):
    """A link that cannot give a key; the message is for the person holding it."""

    status_code = 404


class LinkNotFound(LinkError):
    """No such link (mistyped, or never issued)."""

    status_code = 404


class LinkGone(LinkError):
    """The link was used, expired, or outlived the key that encrypted it."""

    status_code = 410


@dataclass(frozen=True)
class IssuedLink:
    """A fresh link. ``url`` is the secret: show it only to the user who asked."""

    url: str = field(repr=False)
    expires_at: datetime
    ttl_secs: float


def hash_token(token: str) -> str:
    """The SHA-256 hex digest stored instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def fernet_for(secret: SecretStr | str | None) -> Fernet:
    """A Fernet from a Fernet key, from any other secret string (hashed), or random."""
    # Imported for the first link, not at start: cryptography's bindings are ~7 MB of RSS
    # that a bot nobody asks for a key would keep for nothing (BENCHMARKS.md, "What the
    # running bot imports").
    from cryptography.fernet import Fernet

    if secret is None:
        return Fernet(Fernet.generate_key())
    raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    try:
        return Fernet(raw)
    except (ValueError, TypeError):
        # Not a Fernet key: derive one, so any long random string works as the setting.
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest()))


class SshLinkService:
    """Issues and claims one-time SSH key links."""

    def __init__(
        self,
        db: Database,
        *,
        public_url: str | None,
        key_secret: SecretStr | str | None = None,
        ttl_secs: float = 300.0,
        clock: Clock = _utc_now,
    ) -> None:
        self._db = db
        self._public_url = public_url.rstrip("/") if public_url else None
        self._key_secret = key_secret
        self.ttl_secs = ttl_secs
        self._clock = clock

    def __repr__(self) -> str:
        return f"SshLinkService(public_url={self._public_url!r}, ttl_secs={self.ttl_secs})"

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database, *, clock: Clock = _utc_now
    ) -> SshLinkService:
        """Built from ``settings.http.public_url`` and ``settings.ssh``."""
        return cls(
            db,
            public_url=settings.http.public_url,
            key_secret=settings.ssh.key_secret,
            ttl_secs=settings.ssh.link_ttl_secs,
            clock=clock,
        )

    @functools.cached_property
    def _fernet(self) -> Fernet:
        # Made on first use: a random key (no secret set) is then this process's, as before.
        return fernet_for(self._key_secret)

    @property
    def enabled(self) -> bool:
        """True when the bot has a public URL to serve links from."""
        return self._public_url is not None

    async def issue(self, *, instance_id: str, user_id: str, private_key: str) -> IssuedLink:
        """Store ``private_key`` encrypted and return its one-time link."""
        if self._public_url is None:
            raise RuntimeError("no public URL: one-time links are disabled")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self._clock()
        expires_at = now + timedelta(seconds=self.ttl_secs)
        ciphertext = self._fernet.encrypt(private_key.encode()).decode()

        async def _store(session: AsyncSession) -> None:
            await _purge(session, now)
            session.add(
                SshKeyLink(
                    token_hash=hash_token(token),
                    instance_id=instance_id,
                    user_id=user_id,
                    ciphertext=ciphertext,
                    created_at=now,
                    expires_at=expires_at,
                    used_at=None,
                )
            )

        await self._db.run(_store)
        return IssuedLink(f"{self._public_url}{LINK_PATH}{token}", expires_at, self.ttl_secs)

    async def check(self, token: str) -> None:
        """Raise LinkNotFound or LinkGone unless ``token`` could be claimed now (spends nothing)."""
        if not _TOKEN_SHAPE.match(token):
            raise LinkNotFound("No such link.")
        token_hash = hash_token(token)
        now = self._clock()

        async def _look(session: AsyncSession) -> tuple[datetime | None, datetime] | None:
            row = (
                await session.execute(
                    select(SshKeyLink.used_at, SshKeyLink.expires_at).where(
                        SshKeyLink.token_hash == token_hash
                    )
                )
            ).first()
            return None if row is None else (row[0], row[1])

        found = await self._db.run(_look)
        if found is None:
            raise LinkNotFound("No such link.")
        used_at, expires_at = found
        if used_at is not None or expires_at <= now:
            raise LinkGone(_GONE)

    async def claim(self, token: str) -> str:
        """The key behind ``token``, exactly once; LinkNotFound or LinkGone otherwise."""
        if not _TOKEN_SHAPE.match(token):
            raise LinkNotFound("No such link.")
        token_hash = hash_token(token)
        now = self._clock()

        async def _claim(session: AsyncSession) -> tuple[str | None, bool]:
            claimed = await session.execute(
                update(SshKeyLink)
                .where(
                    SshKeyLink.token_hash == token_hash,
                    SshKeyLink.used_at.is_(None),
                    SshKeyLink.expires_at > now,
                )
                .values(used_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                known = await session.scalar(
                    select(SshKeyLink.token_hash).where(SshKeyLink.token_hash == token_hash)
                )
                return None, known is not None
            ciphertext = await session.scalar(
                select(SshKeyLink.ciphertext).where(SshKeyLink.token_hash == token_hash)
            )
            # Wipe it in the same transaction: a used link keeps no key, even encrypted.
            await session.execute(
                update(SshKeyLink)
                .where(SshKeyLink.token_hash == token_hash)
                .values(ciphertext=None)
            )
            return ciphertext, True

        ciphertext, known = await self._db.run(_claim)
        if ciphertext is None:
            if known:
                raise LinkGone(_GONE)
            raise LinkNotFound("No such link.")
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise LinkGone(
                "This link was issued before the bot restarted and can no longer be opened. "
                "Ask again with /starpod ssh in Slack."
            ) from None

    async def purge(self) -> None:
        """Wipe expired keys and forget links gone for a day (also done on every issue)."""
        now = self._clock()

        async def _run(session: AsyncSession) -> None:
            await _purge(session, now)

        await self._db.run(_run)


async def _purge(session: AsyncSession, now: datetime) -> None:
    await session.execute(
        update(SshKeyLink)
        .where(SshKeyLink.expires_at <= now, SshKeyLink.ciphertext.is_not(None))
        .values(ciphertext=None)
    )
    await session.execute(delete(SshKeyLink).where(SshKeyLink.expires_at < now - KEEP_GONE_FOR))
