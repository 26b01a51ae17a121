"""The `/starpod` slash command: parse, authorize, dispatch to the subcommand's handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack import blocks
from bot.slack.ack import RECEIVED_AT, ack_first
from bot.slack.catalog import COMMAND, Subcommand
from bot.slack.handlers import info, lifecycle, mute, ssh
from bot.slack.invocation import Invocation
from bot.slack.parser import Command, UsageProblem, parse
from bot.slack.services import Services

INVOCATION = "starpod_invocation"

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
    Subcommand.AUDIT: info.show_audit,
    Subcommand.STATUS: info.show_status,
}


def register(app: AsyncApp, svc: Services) -> None:
    """Listen for `/starpod`; every request is acknowledged before any work starts."""

    async def starpod_command(body: dict[str, Any], context: AsyncBoltContext) -> None:
        inv = Invocation.from_body(
            svc.deps.web, body, action="help", started=context.get(RECEIVED_AT)
        )
        context[INVOCATION] = inv  # the error handler answers and audits through it
        async with svc.work.hold():
            await run_command(svc, inv, str(body.get("text") or ""))

    app.command(COMMAND, middleware=[ack_first])(starpod_command)


async def run_command(svc: Services, inv: Invocation, text: str) -> None:
    """Parse ``text``, check the role, run the handler, write the audit row.

    Raises what the handler raises (``UserError``, ``BackendError``, bugs): the app's
    error handler turns it into an answer and writes the audit row.
    """
    parsed = parse(text)
    if isinstance(parsed, UsageProblem):
        words = parsed.text.split()
        inv.draft.action = words[0].lower()[:64] if words else "help"
        inv.draft.fail("usage", parsed.message)
        await inv.respond(blocks.usage_answer(parsed))
        await svc.audit.write(inv.draft)
        return
    inv.draft.action = parsed.subcommand.value
    if parsed.subcommand is not Subcommand.HELP:  # help is for everyone, even without a role
        await svc.access.check(inv.user_id, inv.channel_id, parsed.subcommand.value)
    await HANDLERS[parsed.subcommand](svc, inv, parsed)
    await svc.audit.write(inv.draft)
