"""The exception tree of starpod-bot.

Every error the bot raises on purpose descends from ``StarpodBotError``; each boundary
(backend, store, web links, gateway, demo) has one root of its own under it, kept in the
module that owns the boundary::

    StarpodBotError                 root of everything the bot raises on purpose
    ├── ConfigError                 a missing or malformed setting (CLI: one line, exit 2)
    │   ├── SlackTokenRejected      (bot.runtime) auth.test refused the bot token
    │   └── SlackAppTokenRejected   (bot.slack.token_check) apps.connections.open refused
    │                               the app token (Socket Mode)
    ├── UserError                   the user asked for something we refuse or cannot do;
    │   │                           its message is shown to the user as is
    │   ├── UsageError              malformed command text (carries the usage line)
    │   ├── AccessDenied            the user's role does not allow the action
    │   │   └── KillRefused         (bot.store.kill_confirmations) no live kill confirmation
    │   │                           of this user's for this instance
    │   └── LinkError               (bot.store.ssh_links) a one-time SSH key link gives no key
    │       ├── LinkNotFound        no such link (404)
    │       └── LinkGone            used, expired, or its encryption key is gone (410)
    ├── BackendError                (bot.backend.errors) the Starpod backend failed us
    │   ├── BackendUnavailable      connection refused, DNS, timeout
    │   ├── BackendStatusError      non-2xx answer (status code and body text)
    │   ├── BackendProtocolError    2xx answer with a body we cannot read
    │   └── InstanceLookupError     resolving a user's id, prefix or name
    │       ├── InstanceNotFound    no instance matches (carries the nearest names)
    │       ├── AmbiguousInstance   several match (carries the candidates)
    │       └── PrefixTooShort      an action named an id prefix under 4 characters
    ├── StoreError                  (bot.store.errors) the database failed us
    │   ├── UnsupportedDatabaseError  DATABASE_URL names a backend we do not speak
    │   ├── DatabaseUnavailable     DATABASE_URL's database cannot be opened
    │   ├── DatabaseBusyError       a write stayed locked after every retry
    │   ├── MigrationError          Alembic could not bring the schema to head
    │   ├── LeadershipRefused       SQLite: another process already holds the file
    │   ├── StoreUnwritable         the database answers but refuses writes (full or
    │   │                           read-only): one message naming the database
    │   └── CorruptChunkError       a stored heartbeat chunk does not decode
    ├── ResponseTooLarge            (bot.backend.wire) also an httpx.ReadError: an answer
    │                               over its byte cap, raised on as BackendProtocolError
    ├── UncommonAnswer              (bot.backend.wire) an answer framed otherwise than by
    │                               Content-Length alone; aiohttp reads it instead
    ├── GatewayError                (bot.gateway) an HTTP answer other than success
    ├── Refused                     (bot.web.slack_guard) a Slack request refused before parsing
    ├── SlackUnreachable            (bot.runtime) the Slack Web API did not answer auth.test
    └── DemoError                   (bot.demo) the demo could not start

Outside the tree on purpose: ``bot.sim`` (the backend simulator and the Slack emulator)
imports nothing from the product but the wire models it serves, so its own errors
(``TransitionError``, ``ApiError``, ``SlackAckTimeout``) have their own roots; and private
control-flow exceptions that never leave their module (``bot.slack.parser._Problem``).

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
