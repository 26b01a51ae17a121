"""Health bodies and instance lists of the contract's common shape, validated by pydantic-core.

``HealthInfo`` and ``Instance`` accept every variant a backend sends through Python
``BeforeValidator``s: four Python calls per health body and four per listed instance, and a
sweep validates 10,000 of each. The shape the contract describes (whole numbers as JSON
integers, times as integer unix seconds, the id and status as strings) is checked here
without them, into the same model classes. Anything else (RFC 3339 times, ``512.0`` MB, a
numeric id, a null status, a time past year 9999) fails that strict check and takes the
tolerant path, whose result or error is the answer: the same result either way
(``tests/backend/test_fast_path.py``, over the simulator's variants). One difference that
compares equal: times read here carry pydantic-core's UTC (``TzInfo(0)``), not
``datetime.UTC``.

Measured (BENCHMARKS.md): a health body 4.0 → 1.4 µs, a list of 10,000 46 → 24 ms.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import CoreSchema, SchemaValidator
from pydantic_core import core_schema as cs

from bot.backend.models import ID_MAX, NAME_MAX, REGION_MAX, STATUS_MAX, HealthInfo, Instance

# The largest unix second a datetime holds (9999-12-31T23:59:59Z).
MAX_UNIX_SECS = 253_402_300_799

# An integer only: floats and strings go the tolerant way (its rounding, its parser).
_UNIX_SECS = cs.chain_schema(
    [
        cs.int_schema(strict=True, ge=0, le=MAX_UNIX_SECS),
        cs.datetime_schema(microseconds_precision="truncate"),
    ]
)


def _optional(schema: CoreSchema) -> CoreSchema:
    return cs.with_default_schema(cs.nullable_schema(schema), default=None)


def _field_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = cast(dict[str, Any], model.__pydantic_core_schema__)
    return cast(dict[str, Any], schema["schema"]["fields"][name]["schema"])


def strict_inner(model: type[BaseModel], name: str) -> CoreSchema:
    """The schema of ``model``'s field ``name`` without its ``BeforeValidator``, strict.

    The rules the field keeps (a whole number's bounds) have one home, the model: only
    the leniency its validator adds (``512.0``, ``"2048"``) is left to the tolerant path.
    """
    inner = _field_schema(model, name)
    if inner["type"] != "function-before":
        raise TypeError(f"{model.__name__}.{name}: no BeforeValidator to take off")
    return cast(CoreSchema, {**inner["schema"], "strict": True})


def strict_twin(model: type[BaseModel], fields: dict[str, CoreSchema]) -> CoreSchema:
    """``model``'s own core schema with ``fields``' validation replaced (aliases kept).

    Validating with it builds instances of ``model`` itself. Integers become datetimes as
    unix seconds, never milliseconds (``val_temporal_unit``), as ``parse_timestamp`` reads
    them.
    """
    schema = cast(dict[str, Any], model.__pydantic_core_schema__)
    inner = schema["schema"]
    if schema["type"] != "model" or inner["type"] != "model-fields":
        raise TypeError(f"{model.__name__}: not a plain model schema")
    twin_fields = dict(inner["fields"])
    for name, field_schema in fields.items():
        twin_fields[name] = {**twin_fields[name], "schema": field_schema}
    twin = {
        **schema,
        "schema": {**inner, "fields": twin_fields},
        "config": {**schema.get("config", {}), "val_temporal_unit": "seconds"},
    }
    twin.pop("ref", None)  # a second schema of the same class: not the definition pydantic keeps
    return cast(CoreSchema, twin)


_HEALTH_SCHEMA = strict_twin(
    HealthInfo,
    {
        "memory_mb": strict_inner(HealthInfo, "memory_mb"),
        "disk_mb": strict_inner(HealthInfo, "disk_mb"),
        "last_heartbeat": _UNIX_SECS,
        "uptime_secs": strict_inner(HealthInfo, "uptime_secs"),
    },
)


def own_validator(models: list[type[BaseModel]], schema: CoreSchema) -> SchemaValidator:
    """A validator built from ``schema`` even though ``models`` have validators already.

    pydantic-core builds the schema of a complete model class by reusing that class's own
    validator, whatever the schema says (``__pydantic_complete__`` in the class dict is its
    test, at build time only): a twin would silently be the tolerant model.
    """
    for model in models:
        model.__pydantic_complete__ = False
    try:
        return SchemaValidator(schema)
    finally:
        for model in models:
            model.__pydantic_complete__ = True


def _text_within(limit: int) -> CoreSchema:
    # Longer text is the tolerant path's to cut (bot.backend.models.cut_to).
    return cs.str_schema(strict=True, max_length=limit)


_INSTANCE_SCHEMA = strict_twin(
    Instance,
    {
        "id": _text_within(ID_MAX),
        "name": _optional(_text_within(NAME_MAX)),
        "region": _optional(_text_within(REGION_MAX)),
        "status_raw": _text_within(STATUS_MAX),
        "created_at": _optional(_UNIX_SECS),
        "updated_at": _optional(_UNIX_SECS),
        "health": _optional(_HEALTH_SCHEMA),
    },
)
_FAST_HEALTH = own_validator([HealthInfo], _HEALTH_SCHEMA)
_FAST_INSTANCES = own_validator([Instance, HealthInfo], cs.list_schema(_INSTANCE_SCHEMA))
_TOLERANT_INSTANCES = TypeAdapter(list[Instance])


def common_health(body: bytes) -> HealthInfo | None:
    """The body as HealthInfo when it has the common shape, else None."""
    try:
        return cast(HealthInfo, _FAST_HEALTH.validate_json(body))
    except ValidationError:
        return None


def health_from_json(body: bytes) -> HealthInfo:
    """A health body → HealthInfo; raises the tolerant model's ``ValidationError``."""
    fast = common_health(body)
    return fast if fast is not None else HealthInfo.model_validate_json(body)


def common_instances(body: bytes) -> list[Instance] | None:
    """The body as a list of Instances when every one has the common shape, else None."""
    try:
        return cast(list[Instance], _FAST_INSTANCES.validate_json(body))
    except ValidationError:
        return None


def instances_from_json(body: bytes) -> list[Instance]:
    """A JSON array of instances; raises the tolerant ``ValidationError``.

    One unusual instance sends the whole list the tolerant way: a backend sends all its
    instances in one shape, and lists come once a sweep.
    """
    fast = common_instances(body)
    return fast if fast is not None else _TOLERANT_INSTANCES.validate_json(body)
