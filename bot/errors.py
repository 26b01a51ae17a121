"""The exception tree of starpod-bot.

::

    StarpodBotError                 root of everything the bot raises on purpose
    ├── ConfigError                 a missing or malformed setting (CLI: one line, exit 2)
    ├── UserError                   the user asked for something we refuse or cannot do;
    │   │                           its message is shown to the user as is
    │   ├── UsageError              malformed command text (carries the usage line)
    │   └── AccessDenied            the user's role does not allow the action
    ├── BackendError                (bot.backend.errors) the Starpod backend failed us
    │   ├── BackendUnavailable      connection refused, DNS, timeout
    │   ├── BackendStatusError      non-2xx answer (status code and body text)
    │   ├── BackendProtocolError    2xx answer with a body we cannot read
    │   └── InstanceNotFound / AmbiguousInstance   resolving a user's id, prefix or name
    └── StoreError                  (bot.store.errors) the database failed us

Errors are translated once, at the edge: the Slack error handler, the CLI and the
gateway each turn a ``UserError``/``BackendError`` into a clear message and anything
else into a logged error with an id the user sees.
"""

from __future__ import annotations


class StarpodBotError(Exception):
    """Root of every error starpod-bot raises on purpose."""


class ConfigError(StarpodBotError):
    """A setting is missing or malformed. The message names it and how to set it."""


class UserError(StarpodBotError):
    """A request we refuse or cannot do; the message is meant for the user."""


class UsageError(UserError):
    """Malformed command text."""

    def __init__(self, message: str, *, usage: str | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class AccessDenied(UserError):
    """The user's role does not allow the action."""

    def __init__(self, message: str, *, needed_role: str) -> None:
        super().__init__(message)
        self.needed_role = needed_role
