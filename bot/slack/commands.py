"""The `/starpod` slash command: the text parsed into the subcommand's step.

Acking, the work slot, the role check and the audit row are the listener pipeline's
(``middleware.py``); this module only says what the text asks for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from bot.catalog import COMMAND, Subcommand
from bot.slack import blocks
from bot.slack.handlers import budget, info, lifecycle, maintenance, mute, ssh
from bot.slack.invocation import Invocation
from bot.slack.middleware import Route, Step
from bot.slack.parser import Command, UsageProblem, parse
from bot.slack.services import Services

Handler = Callable[[Services, Invocation, Command], Awaitable[None]]

HANDLERS: dict[Subcommand, Handler] = {
    Subcommand.HELP: info.show_help,
    Subcommand.LIST: info.show_list,
    Subcommand.CREATE: lifecycle.create,
    Subcommand.HEALTH: info.show_health,
    Subcommand.LOGS: info.show_logs,
    Subcommand.SSH: ssh.show_ssh,
    Subcommand.PAUSE: lifecycle.pause,
    Subcommand.RESTART: lifecycle.restart,
    Subcommand.KILL: lifecycle.kill_prompt,
    Subcommand.HISTORY: info.show_history,
    Subcommand.MUTE: mute.mute,
    Subcommand.UNMUTE: mute.unmute,
    Subcommand.BUDGET: budget.reset,
    Subcommand.AUDIT: info.show_audit,
    Subcommand.STATUS: info.show_status,
    Subcommand.MAINTENANCE: maintenance.maintenance,
}


async def plan_command(svc: Services, inv: Invocation, body: dict[str, Any]) -> Step:
    """The subcommand the text asks for, or the usage answer when it cannot be parsed."""
    parsed = parse(str(body.get("text") or ""))
    if isinstance(parsed, UsageProblem):
        words = parsed.text.split()
        action = words[0].lower()[:64] if words else Subcommand.HELP.value
        return Step(action, partial(answer_usage, inv, parsed), check_role=False)
    sub = parsed.subcommand
    return Step(
        sub.value,
        partial(HANDLERS[sub], svc, inv, parsed),
        # Help is for everyone, even without a role.
        check_role=sub is not Subcommand.HELP,
    )


async def answer_usage(inv: Invocation, problem: UsageProblem) -> None:
    """Say what was wrong with the text, with the subcommand's usage line."""
    inv.draft.fail("usage", problem.message)
    await inv.respond(blocks.usage_answer(problem))


ROUTES = (Route("command", COMMAND, Subcommand.HELP.value, plan_command),)
