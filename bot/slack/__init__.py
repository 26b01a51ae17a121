"""The Slack app: `/starpod` commands, buttons, Block Kit answers, roles and the audit log.

Public API::

    from bot.slack import SlackDeps, create_app, build_web_client
    app = create_app(settings, SlackDeps(backend=..., db=..., web=..., ssh_links=...))

See ``bot/slack/app.py`` for the request flow; nothing here runs on import.
"""

from bot.slack.app import create_app
from bot.slack.deps import Alerts, SlackDeps, build_web_client, utc_now
from bot.slack.ssh_links import SshLinkService

__all__ = ["Alerts", "SlackDeps", "SshLinkService", "build_web_client", "create_app", "utc_now"]
