"""Errors translated once, at the edge: what the user sees and what the audit records.

``UserError`` (usage, refusals, requests we cannot do), ``BackendError`` (with the
backend's HTTP status and body) and ``StoreUnwritable`` (a full or read-only database,
named) become clear ephemeral answers. Anything else is a bug:
it is logged with its traceback under a short error id, and the user sees only that id.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass

from bot.backend.errors import BackendError, InstanceLookupError
from bot.blockkit.limits import Reply
from bot.errors import AccessDenied, UsageError, UserError
from bot.slack import blocks
from bot.store.errors import StoreUnwritable

log = logging.getLogger(__name__)

_ERROR_ID_ATTRIBUTE = "starpod_error_id"


@dataclass(frozen=True)
class Translated:
    """The answer for the user and the audit outcome."""

    reply: Reply
    result: str  # audit result: usage, refused, error
    detail: str


def new_error_id() -> str:
    """A short id a user can read out: 8 hex characters."""
    return secrets.token_hex(4)


def error_id_of(error: BaseException) -> str:
    """The error's id, created (and logged with the traceback) on first use."""
    existing = getattr(error, _ERROR_ID_ATTRIBUTE, None)
    if isinstance(existing, str):
        return existing
    error_id = new_error_id()
    # Exceptions with __slots__ refuse the attribute: they are logged again next time.
    with contextlib.suppress(AttributeError):
        setattr(error, _ERROR_ID_ATTRIBUTE, error_id)
    log.error("unexpected error %s: %s", error_id, type(error).__name__, exc_info=error)
    return error_id


def translate(error: BaseException, *, doing: str | None = None) -> Translated:
    """The user-facing answer for ``error``."""
    if isinstance(error, UsageError):
        usage = f" Usage: {error.usage}" if error.usage else ""
        reply = blocks.user_error_answer(f"{error}{usage}")
        return Translated(reply, "usage", str(error))
    if isinstance(error, AccessDenied):
        return Translated(blocks.refusal_answer(str(error)), "refused", str(error))
    if isinstance(error, UserError):
        return Translated(blocks.user_error_answer(str(error)), "error", str(error))
    if isinstance(error, StoreUnwritable):
        # Nothing was done: the action's first write (its lease, its record) was refused.
        answer = f"{error}. Nothing was done; read-only commands still answer."
        return Translated(blocks.user_error_answer(answer), "error", str(error))
    if isinstance(error, InstanceLookupError):
        return Translated(blocks.backend_error_answer(error), "error", str(error))
    if isinstance(error, BackendError):
        return Translated(blocks.backend_error_answer(error, doing=doing), "error", str(error))
    error_id = error_id_of(error)
    detail = f"unexpected {type(error).__name__} (error id {error_id})"
    return Translated(blocks.unexpected_error_answer(error_id), "error", detail)
