"""The Slack app: `/starpod` commands, buttons, Block Kit answers, roles and the audit log.

Wiring (nothing here runs on import)::

    web = build_web_client(settings, session=aiohttp_session)
    links = SshLinkService.from_settings(settings, db)
    deps = SlackDeps(backend=client, db=db, web=web, ssh_links=links,
                     monitor=monitor, alerts=alerts)          # both optional
    app = create_app(settings, deps)                          # a Bolt AsyncApp
    asgi = bot.web.app.create_web_app(slack_app=app, signing_secret=..., ssh_links=links)

Where things live:

``app``          ``create_app``: Bolt app, token authorization without ``auth.test``, every
                 route mounted on the listener pipeline, its error handler
``middleware``   the steps every listener shares, mounted once: ack, dedupe, invocation,
                 work slot, role check, one audit row in ``finally`` (``ListenerPipeline``)
``ack``          ``acknowledge``: every listener acknowledges before its work starts
``commands``     `/starpod` text → the subcommand's step (``HANDLERS``)
``actions``      row menu, pager, health-card buttons, kill confirmation → their steps
``incident_buttons`` the incident message's buttons (Acknowledge, Restart now, Logs, Mute)
``handlers/``    what each subcommand does: ``info`` (read-only), ``lifecycle``
                 (create/pause/restart/kill through ``bot.instances``, announced), ``ssh``,
                 ``mute``
``parser``       pure text → ``Command`` | ``UsageProblem``; the subcommands are in
                 ``bot.catalog``
``blocks/``      pure Block Kit answers, built on ``bot.blockkit`` (``Reply``, ``fit_blocks``,
                 ``escape``, every action/block id)
``access``       roles from user and group ids; the audit log is ``bot.store.audit``;
                 ``dedupe`` (repeated click deliveries); ``slots`` (bounded work)
``socket_mode``  ``start_socket_mode(app, app_token)`` for bots without a public URL

One-time SSH key links (``bot.store.ssh_links``) are made here and served by ``bot.web``.
"""

from bot.slack.app import create_app
from bot.slack.deps import Alerts, SlackDeps, build_web_client, utc_now
from bot.store.ssh_links import SshLinkService

__all__ = ["Alerts", "SlackDeps", "SshLinkService", "build_web_client", "create_app", "utc_now"]
