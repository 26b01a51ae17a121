"""The `/starpod ssh` answer (ephemeral): how to connect, and where the one-time key is.

The private key itself never appears here: it is behind a one-time link served by the
bot, or, without a public URL, the user fetches it with the CLI from a terminal.
"""

from __future__ import annotations

from bot.backend.models import Instance, SshInfo
from bot.blockkit.blocks import Block, context, fields_section, section
from bot.blockkit.limits import Reply, reply
from bot.blockkit.mrkdwn import code, code_block_line, duration, escape
from bot.slack.blocks.common import instance_label


def key_path(instance: Instance) -> str:
    """Where we suggest saving the key: ``~/.ssh/starpod-a1b2c3d4``."""
    return f"~/.ssh/starpod-{instance.short_id}"


def ssh_answer(
    instance: Instance,
    info: SshInfo,
    *,
    key_link: str | None,
    link_ttl_secs: float,
) -> Reply:
    """Host, port, user and a ready command; for an ephemeral key, the link or the CLI hint."""
    has_key = info.private_key is not None
    command = info.command(identity_file=key_path(instance) if has_key else None)
    blocks: list[Block] = [
        section(f"🔐 SSH to {instance_label(instance)}"),
        fields_section(
            [
                f"*Host*\n{code(info.host)}",
                f"*Port*\n{info.port}",
                f"*User*\n{code(info.user)}",
            ]
        ),
    ]
    if has_key and key_link is not None:
        path = key_path(instance)
        fetch = f"curl -fsS -X POST '{key_link}' -o {path} && chmod 600 {path}"
        blocks.append(
            section(
                "The backend issued a one-time key for this session. It never goes through "
                f"Slack: fetch it once (the link works once and expires in "
                f"{duration(link_ttl_secs)}), then connect:\n"
                f"```{code_block_line(fetch)}\n{code_block_line(command)}```"
            )
        )
        blocks.append(
            context(
                f"Or <{escape(key_link)}|open the key link in a browser> and press "
                "*Reveal*: opening it alone (or a link preview) does not use it up."
            )
        )
    elif has_key:
        blocks.append(
            section(
                "This instance uses a one-time key, which I never post in Slack. From a "
                "terminal with the bot's CLI, run:\n"
                f"```starpod-bot instance ssh {code_block_line(instance.short_id)}```"
            )
        )
    else:
        blocks.append(section(f"Connect with your usual key:\n```{code_block_line(command)}```"))
    return reply(f"SSH to {instance.label}: {info.user}@{info.host}:{info.port}", blocks)
