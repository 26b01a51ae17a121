"""Process-wide logging: human-readable or JSON lines, with every secret masked.

``configure_logging(settings.log, secrets=secret_values(settings))`` installs one handler on
the root logger. Its :class:`RedactionFilter` runs on every record that reaches the handler,
whichever logger emitted it (ours, uvicorn's, slack-sdk's, SQLAlchemy's), and masks:

- every configured secret value (bot token, signing secret, app token, backend API key,
  gateway keys, the SSH key secret), wherever it appears: message, arguments, ``extra=``
  fields, exception text;
- anything shaped like a secret even when it is not configured: PEM private key blocks,
  Slack tokens (``xoxb-…``, ``xoxp-…``, ``xapp-…``), ``Bearer`` credentials, and the
  one-time tokens of ``/ssh-key/<token>`` links.

``LOG_FORMAT=json`` writes one JSON object per line (``ts``, ``level``, ``logger``, ``msg``,
then any ``extra=`` fields and ``exc`` for a traceback); ``text`` (the default) writes
``2026-03-14 10:05:00 INFO  bot.runtime: message``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import SecretStr

if TYPE_CHECKING:
    from bot.config import LogSettings, Settings

MASK = "[redacted]"
# Shorter configured values are not masked: replacing every "abc" in every line would
# garble the logs without protecting anything a guess could not find.
MIN_SECRET_LEN = 6

_SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    # A PEM private key block, or what is left of one cut off mid-way.
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
        re.DOTALL,
    ),
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]+"),
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),
)
# Keep the scheme or path so the line still says what was masked.
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_SSH_LINK = re.compile(r"(/ssh-key/)[A-Za-z0-9._~-]+")

# Attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
# Redacted like any extra but never printed: uvicorn's ``color_message`` is the message
# again, with ANSI colors.
_UNPRINTED_EXTRAS = frozenset({"color_message"})
# Marks the handler this module installed, so configuring twice replaces it.
_HANDLER_MARK = "_starpod_bot_handler"


def secret_values(settings: Settings) -> list[str]:
    """Every secret value in ``settings``: the strings the logs must never contain."""
    candidates: list[SecretStr | None] = [
        settings.slack.bot_token,
        settings.slack.signing_secret,
        settings.slack.app_token,
        settings.backend.api_key,
        settings.ssh.key_secret,
        *(key.key for key in settings.gateway.keys),
    ]
    return [value.get_secret_value() for value in candidates if value is not None]


class Redactor:
    """Masks known secret values and secret-shaped text in strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._values: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too (e.g. a key learned after start)."""
        self._secrets |= {s for s in secrets if len(s) >= MIN_SECRET_LEN}
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._values = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``[redacted]``."""
        if self._values is not None:
            text = self._values.sub(MASK, text)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(MASK, text)
        text = _BEARER.sub(rf"\g<1>{MASK}", text)
        return _SSH_LINK.sub(rf"\g<1>{MASK}", text)

    def value(self, value: Any) -> Any:
        """Redact a value of an ``extra=`` field: strings, and strings inside lists and dicts."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self(str(value))


class RedactionFilter(logging.Filter):
    """A handler filter that rewrites each record with its secrets masked.

    The message is rendered (``msg % args``) and redacted once, here, so a secret passed as
    an argument is caught too; the traceback is rendered and redacted into ``exc_text``,
    which formatters use as is.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self._exc_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line (nor leak args)
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg, record.args = self.redactor(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exc_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        # The exception object itself still holds the raw text; formatters use exc_text.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                setattr(record, key, self.redactor.value(value))
        return True


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and key not in _UNPRINTED_EXTRAS and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single line of JSON."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


_LEVEL_COLORS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}


class TextFormatter(logging.Formatter):
    """``2026-03-14 10:05:00 INFO  logger: message key=value``; levels colored on a terminal."""

    def __init__(self, *, color: bool = False) -> None:
        super().__init__(datefmt="%Y-%m-%d %H:%M:%S")
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` on one line (plus its traceback, if any)."""
        level = f"{record.levelname:<5}"
        if self.color:
            level = f"{_LEVEL_COLORS.get(record.levelname, '')}{level}\x1b[0m"
        line = f"{self.formatTime(record, self.datefmt)} {level} {record.name}: "
        line += record.getMessage()
        extras = extra_fields(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


def configure_logging(
    settings: LogSettings,
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> RedactionFilter:
    """Install the root handler (replacing one installed earlier) and return its filter.

    Other handlers on the root logger are left alone but get the same filter, so no
    handler of this process prints a secret.
    """
    stream = sys.stderr if stream is None else stream
    redaction = RedactionFilter(Redactor(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()
    handler = logging.StreamHandler(stream)
    setattr(handler, _HANDLER_MARK, True)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(color=_is_terminal(stream)))
    handler.addFilter(redaction)
    for other in root.handlers:
        for existing in [f for f in other.filters if isinstance(f, RedactionFilter)]:
            other.removeFilter(existing)
        other.addFilter(redaction)
    root.addHandler(handler)
    root.setLevel(settings.level)
    # Libraries that are chatty at INFO say nothing an operator needs there.
    for name in ("aiosqlite", "alembic", "apscheduler.executors.default", "uvicorn.access"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    return redaction


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
