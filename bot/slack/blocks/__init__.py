"""Pure Block Kit builders, one module per answer; none does I/O.

Every builder returns a :class:`bot.blockkit.limits.Reply` (text fallback + blocks) that
already passed :func:`bot.blockkit.limits.fit_blocks`, and escapes every string that came
from the backend or a user.
"""

from bot.slack.blocks.answers import (
    ambiguous_answer,
    backend_error_answer,
    help_message,
    not_available_answer,
    not_found_answer,
    refusal_answer,
    unexpected_error_answer,
    usage_answer,
    user_error_answer,
)
from bot.slack.blocks.audit_view import audit_message
from bot.slack.blocks.fleet import ListQuery, filter_instances, list_page
from bot.slack.blocks.health import HealthView, health_card
from bot.slack.blocks.history import history_message
from bot.slack.blocks.lifecycle import (
    Verb,
    announce_cut_short,
    announce_failed,
    announce_started,
    announce_succeeded,
    announce_unconfirmed,
    kill_cancelled,
    kill_confirmation,
    kill_requested,
    not_announced_note,
)
from bot.slack.blocks.logs import LogAnswer, LogFile, filter_entries, log_answer
from bot.slack.blocks.ssh import ssh_answer
from bot.slack.blocks.status import BotStatusView, WorkerView, status_message

__all__ = [
    "BotStatusView",
    "HealthView",
    "ListQuery",
    "LogAnswer",
    "LogFile",
    "Verb",
    "WorkerView",
    "ambiguous_answer",
    "announce_cut_short",
    "announce_failed",
    "announce_started",
    "announce_succeeded",
    "announce_unconfirmed",
    "audit_message",
    "backend_error_answer",
    "filter_entries",
    "filter_instances",
    "health_card",
    "help_message",
    "history_message",
    "kill_cancelled",
    "kill_confirmation",
    "kill_requested",
    "list_page",
    "log_answer",
    "not_announced_note",
    "not_available_answer",
    "not_found_answer",
    "refusal_answer",
    "ssh_answer",
    "status_message",
    "unexpected_error_answer",
    "usage_answer",
    "user_error_answer",
]
