"""``create_app(settings, deps)``: the Bolt app, with every listener and the error handler.

How a request flows (HTTP mode, ``process_before_response=False``):

1. Bolt verifies the signature and timestamp (401 otherwise) and authorizes with the bot
   token it is given (no ``auth.test`` round trip on the request path);
2. the listener pipeline's middleware (``middleware.py``, mounted once below for every
   command and button, the incident buttons included) acknowledges: Slack gets its 200
   now; a repeated click stops there; the request's ``Invocation`` is built;
3. the listener runs as a task: a work slot, parse, check the role, call the backend,
   answer through ``response_url`` (ephemeral) or announce in the channel;
4. anything raised is answered once (``UserError``/``BackendError`` in plain words,
   anything else as an error id), and one audit row is written in a ``finally``.
"""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext

from bot.config import Settings
from bot.errors import ConfigError
from bot.slack import (
    actions,
    commands,
    home_routes,
    incident_buttons,
    modals,
    shortcuts,
    suggestions,
)
from bot.slack.deps import SlackDeps
from bot.slack.middleware import ListenerPipeline, StartWork, run_in_place
from bot.slack.services import Services

log = logging.getLogger(__name__)

BOLT_LOGGER = "bot.slack.bolt"


class BotTokenAuthorize(AsyncAuthorize):
    """Authorize every request with the configured bot token, without calling Slack.

    Bolt's default single-workspace authorization calls ``auth.test`` on the first
    request, which would put a Web API round trip (and its rate-limit retries) in front of
    an acknowledgement. The runtime checks the token once at start instead.
    """

    def __init__(self, token: str | None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Bolt's __init__ is unannotated
        self._token = token

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            bot_token=self._token,
        )


class _DropTokenSkippedWarning(logging.Filter):
    # Bolt warns that `token` (read from SLACK_BOT_TOKEN when not given) is ignored or unused
    # when `authorize` and `client` are given; here that is the point.
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("`token`" in message and ("will be ignored" in message or "unused" in message))


def create_app(
    settings: Settings,
    deps: SlackDeps,
    *,
    services: Services | None = None,
    start_work: StartWork = run_in_place,
) -> AsyncApp:
    """Build the Bolt ``AsyncApp`` for ``settings`` on ``deps``; nothing runs until requests come.

    Needs ``slack.signing_secret`` (HTTP mode) or ``slack.app_token`` (Socket Mode), and a
    bot token on ``deps.web``. ``services`` (built from ``settings`` and ``deps`` when not
    given) are the listeners' shared helpers: pass them to watch the work slots.
    ``start_work`` starts each request's listener work (the runtime passes a
    :class:`~bot.tasks.TaskTracker`'s ``track``, so shutdown drains it).
    """
    signing_secret = settings.slack.signing_secret
    if signing_secret is None and settings.slack.app_token is None:
        raise ConfigError(
            "Slack needs SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)"
        )
    if not deps.web.token:
        raise ConfigError("Slack bot token is not set: export SLACK_BOT_TOKEN=xoxb-…")
    bolt_logger = logging.getLogger(BOLT_LOGGER)
    if not any(isinstance(f, _DropTokenSkippedWarning) for f in bolt_logger.filters):
        bolt_logger.addFilter(_DropTokenSkippedWarning())
    app = AsyncApp(
        name="starpod-bot",
        # Without a secret (Socket Mode only) every HTTP request fails verification: safe.
        signing_secret=signing_secret.get_secret_value() if signing_secret else "",
        client=deps.web,
        # Bolt takes an AsyncAuthorize as is (it checks isinstance), though its annotation
        # names only plain functions.
        authorize=BotTokenAuthorize(deps.web.token),  # type: ignore[arg-type]
        process_before_response=False,
        logger=bolt_logger,
    )
    if services is None:
        services = Services.build(settings, deps)
    pipeline = ListenerPipeline(services, start_work=start_work)
    app.error(pipeline.on_error)
    # Every listener, the alerts feature's incident buttons too (they answer plainly when
    # alerts are not wired), behind the same middleware: mounted here, once.
    pipeline.mount(
        app,
        [
            *commands.ROUTES,
            *actions.ROUTES,
            *incident_buttons.ROUTES,
            *home_routes.ROUTES,
            *modals.ROUTES,
            *shortcuts.ROUTES,
            *suggestions.ROUTES,
        ],
    )
    # Open Homes follow the statuses the monitor records (where it runs).
    on_status_change = getattr(deps.monitor, "on_status_change", None)
    if callable(on_status_change):
        on_status_change(services.home.on_status_change)
    return app
