"""The gateway as a FastAPI application, and how the bot's web app mounts it under ``/api``.

FastAPI generates the OpenAPI document (``GET /api/openapi.json``) from the routes, their
guards and the pydantic models; no other document exists. With no key configured the
gateway is off: :func:`bot.gateway.off.gateway_off_routes` answer 404 for every ``/api``
path instead, without this module (nor FastAPI) being imported.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.routing import Mount

from bot import __version__
from bot.gateway.auth import HEADER
from bot.gateway.dependencies import GatewayDeps
from bot.gateway.errors import install_error_handlers
from bot.gateway.off import PREFIX
from bot.gateway.routes import gateway_router

DESCRIPTION = (
    "Manage Starpod instances over HTTP, with the same roles and audit log as "
    f"the Slack commands. Authenticate with the {HEADER} header."
)


def create_gateway_app(
    deps: GatewayDeps, *, public_url: str | None = None, prefix: str = PREFIX
) -> FastAPI:
    """The gateway, to mount at ``prefix``; ``public_url`` is the bot's, when it has one."""
    server = (public_url.rstrip("/") + prefix) if public_url else prefix
    app = FastAPI(
        title="starpod-bot gateway",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        servers=[{"url": server}],
        root_path_in_servers=False,  # the server above already carries the mount's prefix
        redirect_slashes=False,  # /api/instances/ is no path of ours: a JSON 404, not a 307
    )
    app.state.gateway = deps.with_actions()
    router = gateway_router()
    app.include_router(router)
    install_error_handlers(app, router.routes)
    return app


class GatewayMount(Mount):
    """A ``Mount`` whose path takes any character, newlines included.

    Starlette's mount pattern stops at a newline; an id with one (``/api/instances/a%0Ab``)
    must still reach the gateway and get its JSON 404, not fall through to a plain one.
    """

    def __init__(self, path: str, app: FastAPI) -> None:
        super().__init__(path, app=app)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)


def gateway_mount(
    deps: GatewayDeps, *, public_url: str | None = None, prefix: str = PREFIX
) -> GatewayMount:
    """The gateway mounted at ``prefix``, to add to the bot's web app."""
    return GatewayMount(prefix, create_gateway_app(deps, public_url=public_url, prefix=prefix))
