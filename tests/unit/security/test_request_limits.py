"""Every field of every HTTP request body is bounded, read from each service's OpenAPI document:
strings have a maximum length (or a pattern: decimals), integers and numbers a maximum, dates and
timestamps the 1900–2100 range.
A field added without a bound fails here with its path."""

from collections.abc import Iterator
from typing import Any

import pytest

from shared.settings import Settings
from shared.validation import MAX_CENTS
from tests.unit.security.apps import SERVICES, openapi

DATED_FORMATS = {"date", "date-time"}
SHAPED = {"time"}  # a time of day cannot be out of range


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def unbounded(
    spec: dict[str, Any], schema: dict[str, Any], path: str, seen: frozenset[str] = frozenset()
) -> Iterator[str]:
    """Paths under `schema` whose values have no upper bound."""
    ref = schema.get("$ref")
    if ref in seen:
        return
    schema = _resolve(spec, schema)
    seen = seen | {ref} if ref else seen
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            yield from unbounded(spec, option, path, seen)
    kind = schema.get("type")
    if "enum" in schema or "const" in schema:
        return
    if kind == "string":
        if schema.get("format") in DATED_FORMATS:
            if "formatMaximum" not in schema:
                yield f"{path} ({schema['format']} without the 1900–2100 range)"
        elif "maxLength" not in schema and "pattern" not in schema and schema.get("format") not in SHAPED:
            yield f"{path} (string without maxLength)"
    elif kind == "integer":
        if schema.get("maximum", MAX_CENTS + 1) > MAX_CENTS:
            yield f"{path} (integer without a maximum ≤ {MAX_CENTS})"
    elif kind == "number":
        if "maximum" not in schema:
            yield f"{path} (number without a maximum)"
    elif kind == "array":
        yield from unbounded(spec, schema.get("items", {}), f"{path}[]", seen)
    elif kind == "object" or "properties" in schema:
        for name, prop in schema.get("properties", {}).items():
            yield from unbounded(spec, prop, f"{path}.{name}", seen)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            yield from unbounded(spec, extra, f"{path}.*", seen)


@pytest.mark.parametrize("service", SERVICES)
def test_every_request_body_field_is_bounded(service: str) -> None:
    spec = openapi(service, Settings())
    problems = []
    for route, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {})
            for media in body.values():
                problems += unbounded(spec, media.get("schema", {}), f"{method.upper()} {route}")
    assert not problems, "unbounded request fields:\n" + "\n".join(problems)
