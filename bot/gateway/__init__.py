"""The gateway: instance management over HTTP for scripts and dashboards (FastAPI).

Endpoints (under ``/api``, JSON in and out, ``X-API-Key`` header)::

    GET    /api/instances                 viewer    list (?status=S&region=R)
    POST   /api/instances                 operator  create {"name": …, "region": …}
    GET    /api/instances/{id}            viewer    one instance
    DELETE /api/instances/{id}            admin     kill
    POST   /api/instances/{id}/pause      operator
    POST   /api/instances/{id}/restart    operator
    GET    /api/instances/{id}/health     viewer
    GET    /api/instances/{id}/history    viewer    the bot's records (?limit=N)
    GET    /api/openapi.json              anyone    this API's OpenAPI 3.1 document

With no key configured the gateway is off and every ``/api`` path answers 404.
Errors are ``{"error": "...", "status": n}``. Every call is audited (source ``gateway``);
calls without a valid key are counted in one row per client per minute.

Modules: ``auth`` (KeyRing, Caller), ``auth_failures`` (429 past 10 wrong keys a minute
per client, one audit row per client per minute), ``dependencies`` (key auth and role guards),
``params`` (reference, query parameters, the create body), ``models`` (the JSON shapes),
``envelope`` (audit row and command count of every call), ``errors`` (one translation to
the error shape), ``actions`` and ``history`` (the work), ``routes`` (the endpoints),
``app`` (the FastAPI application and its mount), ``off`` (the error shape, and the 404s
with no key). The runtime adds :func:`gateway_routes_for` to the web app.

FastAPI is imported only when the gateway is on: this package's namespace loads
``GatewayDeps`` and ``create_gateway_app`` on first use, and a bot without keys imports
neither (4.4 MB of modules; BENCHMARKS.md, "What the running bot imports").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from bot.gateway.auth import HEADER, Caller, KeyRing
from bot.gateway.off import gateway_off_routes

if TYPE_CHECKING:
    from bot.gateway.app import create_gateway_app
    from bot.gateway.dependencies import GatewayDeps

__all__ = [
    "HEADER",
    "Caller",
    "GatewayDeps",
    "KeyRing",
    "create_gateway_app",
    "gateway_routes_for",
]


def gateway_routes_for(
    deps: GatewayDeps | None, *, public_url: str | None = None
) -> list[BaseRoute]:
    """``/api/…``: the gateway when ``deps`` has keys, else a 404 answer for every path."""
    if deps is None or not deps.keys:
        return gateway_off_routes()
    from bot.gateway.app import gateway_mount

    return [gateway_mount(deps, public_url=public_url)]


def __getattr__(name: str) -> Any:
    # The FastAPI side, imported when first asked for (PEP 562).
    if name == "GatewayDeps":
        from bot.gateway.dependencies import GatewayDeps

        return GatewayDeps
    if name == "create_gateway_app":
        from bot.gateway.app import create_gateway_app

        return create_gateway_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
