"""Constrained types for HTTP request bodies: bad input is a 422, never a 500 or a record that
breaks a statement later. Every request model derives from RequestModel, so no string field
is unbounded even where a narrower type is not given."""

import datetime as dt
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

MAX_CENTS = 1_000_000_000  # $10M: far above any therapy bill, far below int64
TEXT_MAX = 2000
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)


class RequestModel(BaseModel):
    """Base of request bodies: every string at most TEXT_MAX characters."""

    model_config = ConfigDict(str_max_length=TEXT_MAX)


def _day_in_range(value: dt.date) -> dt.date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value


def _moment_in_range(value: dt.datetime) -> dt.datetime:
    _day_in_range(value.date())
    return value


Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(max_length=200)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]
Cents = Annotated[int, Field(strict=True, ge=0, le=MAX_CENTS)]
PositiveCents = Annotated[int, Field(strict=True, gt=0, le=MAX_CENTS)]
Percent = Annotated[
    Decimal,
    Field(ge=0, le=100, decimal_places=2),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 100},
                {"type": "string", "pattern": r"^\d{1,3}(\.\d{1,2})?$"},
            ]
        }
    ),
]
# JSON Schema's "time" format needs an offset; a time of day here is local, "HH:MM[:SS]".
TimeOfDay = Annotated[dt.time, WithJsonSchema({"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"})]
# formatMinimum/formatMaximum (ajv-formats' keywords) state the range in the OpenAPI document.
_RANGE = Field(json_schema_extra={"formatMinimum": FIRST_DAY.isoformat(), "formatMaximum": LAST_DAY.isoformat()})
Day = Annotated[dt.date, AfterValidator(_day_in_range), _RANGE]
Moment = Annotated[AwareDatetime, AfterValidator(_moment_in_range), _RANGE]
