"""Tables of the Slack surface: the audit log and one-time SSH key links.

``audit_log`` keeps every command and click, allowed or refused (who, where, what, on
which instance, the result, how long it took). ``ssh_key_links`` holds ephemeral SSH
keys between the moment the backend issues them and the one fetch of their link: only
the SHA-256 of the link's token is stored, the key is Fernet-encrypted, and it is wiped
on use or expiry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.base import Base, UtcDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")

AUDIT_SOURCES = ("slash", "button", "gateway", "web")
AUDIT_RESULTS = ("ok", "refused", "error", "usage")
MAX_ARGS = 500


class AuditEntry(Base):
    """One command, click or gateway call and what came of it."""

    __tablename__ = "audit_log"
    __table_args__ = (
        # /starpod audit: the latest entries of everything …
        Index(None, "at"),
        # … or of one instance.
        Index(None, "instance_id", "at"),
        CheckConstraint(f"source IN {AUDIT_SOURCES!r}", name="source"),
        CheckConstraint(f"result IN {AUDIT_RESULTS!r}", name="result"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    user_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str | None] = mapped_column(String(128))
    args: Mapped[str | None] = mapped_column(String(MAX_ARGS))
    result: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)

    def __repr__(self) -> str:
        return (
            f"AuditEntry(at={self.at.isoformat()}, user_id={self.user_id!r}, "
            f"action={self.action!r}, result={self.result!r})"
        )


class SshKeyLink(Base):
    """A one-time link to an ephemeral SSH key. The key is never stored in plaintext."""

    __tablename__ = "ssh_key_links"
    __table_args__ = (Index(None, "expires_at"),)

    # sha256 hex of the link's token: a database dump does not give working links.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(64))
    # Fernet token of the PEM key; None once fetched or expired.
    ciphertext: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        # Neither the hash nor the ciphertext: a repr ends up in logs.
        return f"SshKeyLink(instance_id={self.instance_id!r}, used={self.used_at is not None})"


class SlackDelivery(Base):
    """A signed Slack request already taken in, remembered while it could be replayed.

    ``key`` is the SHA-256 of the request's payload; a second delivery of the same payload
    (a captured request replayed within Slack's signature window, or a Slack retry) finds
    the row and does nothing. Rows expire after the window and are pruned.
    """

    __tablename__ = "slack_deliveries"
    __table_args__ = (Index(None, "expires_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return f"SlackDelivery(key={self.key[:12]!r}…, expires_at={self.expires_at.isoformat()})"


class KillConfirmation(Base):
    """A kill prompt the bot showed: one click by ``user_id`` may kill ``instance_id``, once."""

    __tablename__ = "kill_confirmations"
    __table_args__ = (Index(None, "expires_at"),)

    # sha256 hex of the token carried by the prompt's block id.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return (
            f"KillConfirmation(instance_id={self.instance_id!r}, user_id={self.user_id!r}, "
            f"used={self.used_at is not None})"
        )
