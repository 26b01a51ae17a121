"""The bot's one web server (Starlette on uvicorn).

Routes:

- ``POST /slack/events``: Slack's requests (slash commands, clicks). The
  :class:`~bot.web.slack_guard.SlackRequestGuard` reads at most 1 MB of what is really
  sent (413), verifies the signature before anything is parsed (401, nothing else
  happens) and checks the body's shape (400); only then does Bolt see it.
- ``GET /healthz``: liveness; 200 while the process serves requests.
- ``GET /ssh-key/{token}``: a one-time SSH key link's page (``HEAD`` alike): it spends
  nothing, so link previews and scanners cannot use it up; its button ``POST``s to the
  same URL, which hands out the key once (``text/plain``, ``no-store``). Both: 404
  unknown, 410 used or expired, 403 for link unfurlers, 429 past 10 requests a minute
  from one client.

``extra_routes`` lets the runtime add ``/readyz``, ``/metrics`` and the gateway without
touching this module.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from pydantic import SecretStr
from slack_bolt.adapter.starlette.async_handler import (
    to_async_bolt_request,
    to_starlette_response,
)
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.store.ssh_links import LinkError, SshLinkService
from bot.web.ratelimit import RateLimiter
from bot.web.slack_guard import Refused, SlackRequestGuard

log = logging.getLogger(__name__)

# Link unfurlers fetch URLs posted in Slack; they must not burn the one-time link.
UNFURLER_AGENTS = ("slackbot", "slack-imgproxy", "slack-linkexpanding")
KEY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# A GET only shows this page: previews, prefetchers and scanners GET or HEAD a link on their
# own, and must not spend it. The button POSTs to the same URL, which hands out the key.
REVEAL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>One-time SSH key</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto">
<h1>One-time SSH key</h1>
<p>This link gives its key once. Download it now, save it with mode 600, then connect.</p>
<form method="post"><button type="submit">Reveal and download the key</button></form>
</body></html>
"""
REVEAL_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
}

Readiness = Callable[[], Awaitable[bool]]
# The client learns only the status; why is for our log.
_REFUSAL_TEXT = {400: "Bad request", 401: "Invalid request", 413: "Payload too large"}


async def _healthz(_request: Request) -> Response:
    return PlainTextResponse("ok")


def create_probe_app(extra_routes: Sequence[BaseRoute]) -> Starlette:
    """``GET /healthz`` and ``extra_routes`` (``/readyz``, ``/metrics``), nothing of Slack:
    what a worker process (role worker) serves."""
    return Starlette(routes=[Route("/healthz", _healthz, methods=["GET"]), *extra_routes])


def create_web_app(
    *,
    slack_app: AsyncApp,
    signing_secret: SecretStr | str | None,
    ssh_links: SshLinkService,
    readiness: Readiness | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    key_rate_limit: RateLimiter | None = None,
) -> Starlette:
    """The ASGI app. ``readiness`` adds ``GET /readyz`` (200 when it returns True).

    ``signing_secret`` is Slack's; without one (Socket Mode only) every request to
    ``/slack/events`` is refused.
    """
    if isinstance(signing_secret, SecretStr):
        signing_secret = signing_secret.get_secret_value()
    guard = SlackRequestGuard(signing_secret)
    limiter = key_rate_limit or RateLimiter(limit=10, window=60.0)

    async def slack_events(request: Request) -> Response:
        try:
            body = await guard.admit(request)
        except Refused as refused:
            return PlainTextResponse(_REFUSAL_TEXT[refused.status], status_code=refused.status)
        return to_starlette_response(
            await slack_app.async_dispatch(to_async_bolt_request(request, body))
        )

    async def readyz(_request: Request) -> Response:
        assert readiness is not None
        try:
            ready = await readiness()
        except Exception:
            log.exception("readiness check failed")
            ready = False
        return PlainTextResponse(
            "ready" if ready else "not ready", status_code=200 if ready else 503
        )

    def refused(request: Request) -> Response | None:
        """429 past the per-client limit, 403 for link previews; None to go on."""
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(client):
            return PlainTextResponse(
                "Too many requests. Wait a minute and try again.\n",
                status_code=429,
                headers={**KEY_HEADERS, "Retry-After": str(limiter.retry_after(client))},
            )
        agent = request.headers.get("user-agent", "").lower()
        if any(name in agent for name in UNFURLER_AGENTS):
            return PlainTextResponse(
                "One-time SSH key link. Open it yourself to download the key.\n",
                status_code=403,
                headers=KEY_HEADERS,
            )
        return None

    async def ssh_key_page(request: Request) -> Response:
        """GET (and HEAD): says whether the link still works; never spends it."""
        if (answer := refused(request)) is not None:
            return answer
        try:
            await ssh_links.check(request.path_params["token"])
        except LinkError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=exc.status_code, headers=KEY_HEADERS)
        return HTMLResponse(REVEAL_PAGE, headers={**KEY_HEADERS, **REVEAL_PAGE_HEADERS})

    async def ssh_key_reveal(request: Request) -> Response:
        """POST: the explicit reveal, the only request that spends the link."""
        if (answer := refused(request)) is not None:
            return answer
        try:
            key = await ssh_links.claim(request.path_params["token"])
        except LinkError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=exc.status_code, headers=KEY_HEADERS)
        body = key if key.endswith("\n") else key + "\n"
        return PlainTextResponse(
            body,
            headers={**KEY_HEADERS, "Content-Disposition": 'attachment; filename="starpod-key"'},
        )

    routes: list[BaseRoute] = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/ssh-key/{token}", ssh_key_page, methods=["GET"]),
        Route("/ssh-key/{token}", ssh_key_reveal, methods=["POST"]),
    ]
    if readiness is not None:
        routes.append(Route("/readyz", readyz, methods=["GET"]))
    routes.extend(extra_routes)
    return Starlette(routes=routes)
