"""What a caller sends besides the key: the instance reference, query parameters, the body.

The create body is read by :func:`instance_spec`, a dependency, rather than declared as a
FastAPI body parameter: FastAPI reads a declared body before any dependency runs, which
would judge the JSON of a caller whose key is not yet checked, and it answers every body
problem with 422. The gateway answers 413 (too large), 400 (not JSON) and 422 (not an
object, or not a valid instance spec), after the key and the role. :data:`SPEC_BODY` puts
the model's schema in the OpenAPI document all the same.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import ValidationError

from bot.gateway.errors import GatewayError
from bot.gateway.models import MAX_HISTORY, MAX_NAME, MAX_REGION, CreateInstanceIn

MAX_BODY_BYTES = 64 * 1024
DEFAULT_HISTORY = 20
# Every parameter has a size bound (422 past it): a reference is at most a name, a
# status is a short word, a region as long as the create body allows.
MAX_REF = MAX_NAME
MAX_STATUS = 32

Ref = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_REF,
        description="A full instance id, a unique prefix of one, or an exact instance name.",
    ),
]
HistoryLimit = Annotated[
    int,
    Query(ge=1, le=MAX_HISTORY, description="At most this many of each (default 20)."),
]
StatusFilter = Annotated[
    str | None,
    Query(max_length=MAX_STATUS, description="Only instances with this status (any case)."),
]
RegionFilter = Annotated[
    str | None, Query(max_length=MAX_REGION, description="Only instances in this region.")
]

#: ``openapi_extra`` of ``POST /instances``: the body :func:`instance_spec` reads.
SPEC_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": CreateInstanceIn.model_json_schema(mode="validation")}
        },
    }
}


def _too_large() -> GatewayError:
    return GatewayError(413, f"body larger than {MAX_BODY_BYTES} bytes", result="usage")


async def instance_spec(request: Request) -> CreateInstanceIn:
    """The body of ``POST /instances``: JSON (whatever the content type), or nothing."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise _too_large()
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large()
    if not raw.strip():
        return CreateInstanceIn()
    try:
        data = json.loads(raw)
    except ValueError:
        raise GatewayError(400, "the body is not JSON", result="usage") from None
    if not isinstance(data, dict):
        raise GatewayError(422, "the body must be a JSON object", result="usage")
    try:
        return CreateInstanceIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise GatewayError(422, f"{where}: {first['msg']}", result="usage") from None
