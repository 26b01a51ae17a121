"""Making text safe and readable in Slack's mrkdwn.

Every string that comes from the backend or a user (instance names, regions, log lines,
error bodies, typed arguments) goes through :func:`escape` before it reaches a message:
``&``, ``<`` and ``>`` are Slack's control characters, so an instance named ``<!channel>``
would otherwise ping the whole channel.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_ZWSP = "\u200b"
DASH = "\u2013"  # an en dash, for ranges such as "5 to 87 %"


def escape(text: object) -> str:
    """Escape ``&``, ``<`` and ``>`` (in that order) so Slack shows them as typed."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo :func:`escape` (``&amp;`` last, so ``&amp;lt;`` comes back as ``&lt;``)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# <@U…>, <#C…|name>, <!date^…|fallback>, <!here>, <url|label>: what Slack turns into
# mentions, links and dates inside mrkdwn.
_SLACK_TOKEN = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_CODE = re.compile(r"`([^`\n]*)`")


def _plain_token(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if label:
        return label
    if target.startswith("@"):
        return target  # <@U123> → @U123: the id, as no name is looked up
    if target.startswith("#"):
        return target
    if target.startswith("!"):
        return "@" + target[1:].split("^", 1)[0]  # <!here> → @here (no longer a ping)
    return target


def plain(text: str) -> str:
    """Escaped mrkdwn as the plain text a notification shows: mentions as ``@U…``, links
    and dates as their labels, ``*bold*`` and backticks dropped, escapes undone.

    For fallback ``text`` built from a section's mrkdwn; :func:`bot.blockkit.limits.fallback`
    escapes the result once.
    """
    text = _SLACK_TOKEN.sub(_plain_token, text)
    text = _CODE.sub(r"\1", _BOLD.sub(r"\1", text))
    return unescape(text)


_ESCAPED_CHANNEL = re.compile(r"&lt;#([CG][A-Z0-9]{2,})&gt;")


def escape_keep_channel_links(text: object) -> str:
    """Escape everything, then turn escaped ``<#C…>`` links back on (they ping no one)."""
    return _ESCAPED_CHANNEL.sub(r"<#\1>", escape(text))


def code(text: object) -> str:
    """Inline code: escaped, on one line, with backticks that cannot end the span."""
    flat = " ".join(str(text).split()) or " "
    return "`" + escape(flat.replace("`", "'")) + "`"


def code_block_line(text: object) -> str:
    """One line for inside a ``` block: escaped, and a ``` in it cannot close the block."""
    line = escape(str(text).replace("\r", ""))
    return line.replace("```", f"`{_ZWSP}`{_ZWSP}`")


def bold(text: object) -> str:
    """``*text*`` with the text escaped (asterisks inside only change emphasis)."""
    return f"*{escape(text)}*"


def user(user_id: str | None) -> str:
    """A user mention ``<@U…>`` for a real user id; anything else is shown escaped."""
    if user_id and _USER_ID.match(user_id):
        return f"<@{user_id}>"
    return escape(user_id or "someone")


def channel(channel_id: str | None) -> str:
    """A channel link ``<#C…>`` for a real channel id; anything else is shown escaped."""
    if channel_id and _CHANNEL_ID.match(channel_id):
        return f"<#{channel_id}>"
    return escape(channel_id or "a direct message")


def date(moment: datetime, *, with_date: bool = True) -> str:
    """A time Slack shows in each reader's own time zone; the fallback is UTC."""
    moment = moment.astimezone(UTC)
    stamp = int(moment.timestamp())
    token = "{date_short_pretty} {time}" if with_date else "{time}"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC" if with_date else "%H:%M UTC")
    return f"<!date^{stamp}^{token}|{fallback}>"


def duration(seconds: float) -> str:
    """``14 s``, ``3 m 12 s``, ``2 h 5 m``, ``3 d 4 h``: two units at most, for phones."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} m {secs} s" if secs else f"{minutes} m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} m" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def megabytes(value: float) -> str:
    """``512 MB`` or ``2.1 GB``."""
    if value >= 1024:
        return f"{value / 1024:.1f} GB"
    return f"{value:.0f} MB"
