"""Errors of the Starpod backend client.

::

    BackendError                    (bot.errors.StarpodBotError)
    ├── BackendUnavailable          connection refused, DNS failure, timeout
    ├── BackendStatusError          a non-2xx answer; carries status_code and body
    ├── BackendProtocolError        a 2xx answer whose body we cannot read
    └── InstanceLookupError         a user's id, prefix or name did not resolve
        ├── InstanceNotFound        no instance matches; carries the nearest names
        ├── AmbiguousInstance       several match; carries the candidates
        └── PrefixTooShort          an action named an id prefix under 4 characters

Every message is one line a user can act on, e.g.
``Backend returned 409 for POST /instances/x/pause: Cannot stop``.
Context is passed as keyword-only arguments, as httpx does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.errors import StarpodBotError

if TYPE_CHECKING:
    from bot.backend.models import Instance

MAX_BODY_IN_MESSAGE = 300


def _short(text: str, limit: int = MAX_BODY_IN_MESSAGE) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class BackendError(StarpodBotError):
    """The Starpod backend failed us."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class BackendUnavailable(BackendError):
    """The backend could not be reached: connection refused, DNS, timeout."""

    def __init__(self, *, method: str, path: str, reason: str) -> None:
        super().__init__(
            f"Backend unreachable for {method} {path}: {_short(reason) or 'no answer'}",
            method=method,
            path=path,
        )
        self.reason = reason


class BackendStatusError(BackendError):
    """A non-2xx answer. ``body`` is the text the backend sent."""

    def __init__(self, *, method: str, path: str, status_code: int, body: str) -> None:
        detail = _short(body) or "(empty body)"
        super().__init__(
            f"Backend returned {status_code} for {method} {path}: {detail}",
            method=method,
            path=path,
        )
        self.status_code = status_code
        self.body = body


class BackendProtocolError(BackendError):
    """A 2xx answer whose body we cannot read."""

    def __init__(self, *, method: str, path: str, problem: str) -> None:
        super().__init__(
            f"Backend sent an unreadable answer for {method} {path}: {_short(problem)}",
            method=method,
            path=path,
        )
        self.problem = problem


class InstanceLookupError(BackendError):
    """A reference typed by a user (id, prefix or name) did not resolve to one instance."""

    def __init__(self, message: str, *, ref: str) -> None:
        super().__init__(message)
        self.ref = ref


def _or_list(words: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def _listed(candidates: Sequence[Instance], limit: int) -> str:
    listed = ", ".join(
        f"{c.short_id} ({c.name})" if c.name else c.short_id for c in candidates[:limit]
    )
    more = len(candidates) - limit
    return listed + (f" and {more} more" if more > 0 else "")


class InstanceNotFound(InstanceLookupError):
    """No instance has that id, id prefix or name; ``suggestions`` are the nearest names."""

    def __init__(self, *, ref: str, suggestions: Sequence[str] = ()) -> None:
        hint = f"; did you mean {_or_list(list(suggestions))}?" if suggestions else "."
        super().__init__(f"No instance matches '{ref}' (by id, id prefix or name){hint}", ref=ref)
        self.suggestions = list(suggestions)


class AmbiguousInstance(InstanceLookupError):
    """Several instances match the reference."""

    MAX_LISTED = 10

    def __init__(self, *, ref: str, candidates: Sequence[Instance]) -> None:
        listed = _listed(candidates, self.MAX_LISTED)
        super().__init__(
            f"'{ref}' matches {len(candidates)} instances: {listed}. Type more of the id.",
            ref=ref,
        )
        self.candidates = list(candidates)


class PrefixTooShort(InstanceLookupError):
    """An action named an id prefix shorter than ``minimum``: too easy to hit the wrong one.

    ``candidates`` are the instances the prefix matches, so the answer can name them.
    """

    MAX_LISTED = 5

    def __init__(self, *, ref: str, candidates: Sequence[Instance], minimum: int) -> None:
        matched = (
            f"it matches {_listed(candidates, self.MAX_LISTED)}"
            if len(candidates) == 1
            else f"it matches {len(candidates)} instances: {_listed(candidates, self.MAX_LISTED)}"
        )
        super().__init__(
            f"'{ref}' is too short to act on: type at least {minimum} characters of the id, "
            f"or the exact name ({matched}).",
            ref=ref,
        )
        self.candidates = list(candidates)
        self.minimum = minimum
