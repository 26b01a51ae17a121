"""`/starpod ssh <id>`: how to connect, privately; an ephemeral key goes behind a one-time link."""

from __future__ import annotations

from bot.slack import blocks
from bot.slack.handlers.common import resolve
from bot.slack.invocation import Invocation
from bot.slack.parser import Command
from bot.slack.services import Services


async def show_ssh(svc: Services, inv: Invocation, cmd: Command) -> None:
    """Host, port, user, a ready command, and (for an ephemeral key) the one-time link."""
    assert cmd.ref is not None
    instance = await resolve(svc, inv, cmd.ref, cmd.subcommand)
    info = await svc.deps.backend.get_ssh_info(instance.id)
    links = svc.deps.ssh_links
    link_url: str | None = None
    if info.private_key is not None and links.enabled:
        link = await links.issue(
            instance_id=instance.id, user_id=inv.user_id, private_key=info.private_key
        )
        link_url = link.url
        inv.draft.detail = "one-time key link issued"
    elif info.private_key is not None:
        inv.draft.detail = "ephemeral key withheld: no public URL, CLI suggested"
    reply = blocks.ssh_answer(instance, info, key_link=link_url, link_ttl_secs=links.ttl_secs)
    await inv.respond(reply)
