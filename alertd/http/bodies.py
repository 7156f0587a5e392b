"""What the API accepts: the request bodies as pydantic models with a bound on every field, and the limits of
query strings. The OpenAPI document shows the same models. Anything that does not fit is one 400 that names
the field; nothing unchecked reaches the silences or the acknowledgements."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

# Timestamps are Unix seconds between 2000 and 2100: enough for any silence, and no float that breaks a
# comparison or a date conversion (NaN, infinities, 1e300).
EARLIEST = 946_684_800.0
LATEST = 4_102_444_800.0
MAX_BODY_BYTES = 64 * 1024
MAX_MATCHERS = 50
MAX_MATCHER_CHARS = 1_000
MAX_FILTERS = 20
MAX_PAGE = 10_000  # alerts in one answer of GET /api/v1/alerts

Timestamp = Annotated[float, Field(ge=EARLIEST, le=LATEST, allow_inf_nan=False, strict=True)]
DurationText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Who = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Comment = Annotated[str, StringConstraints(max_length=2_000)]
MatcherText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_MATCHER_CHARS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AckBody(_Body):
    """``POST /api/v1/alerts/{fingerprint}/ack``."""

    by: Who = Field(description="who acknowledges")
    comment: Comment = ""
    duration: DurationText | None = Field(None, description="how long the acknowledgement lasts (default: "
                                          "until the alert resolves), at most [http] max_silence_duration")


class SilenceBody(_Body):
    """``POST /api/v1/silences``: ``duration`` or ``ends_at``, not both."""

    matchers: Annotated[list[MatcherText], Field(min_length=1, max_length=MAX_MATCHERS)]
    starts_at: Timestamp | None = Field(None, description="Unix seconds (default: now)")
    ends_at: Timestamp | None = Field(None, description="Unix seconds")
    duration: DurationText | None = Field(None, description='like "2h", at most [http] max_silence_duration')
    created_by: Who = "unknown"
    comment: Comment = ""

    @model_validator(mode="after")
    def _one_end(self) -> SilenceBody:
        if (self.ends_at is None) == (self.duration is None):
            raise ValueError('give duration (like "2h") or ends_at, not both')
        return self


def _bounded_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone (RFC 3339, like 2026-01-02T15:04:05Z)")
    if not EARLIEST <= value.timestamp() <= LATEST:
        raise ValueError("a time between the years 2000 and 2100")
    return value


Rfc3339 = Annotated[datetime, AfterValidator(_bounded_time)]
LabelText = Annotated[str, StringConstraints(max_length=MAX_MATCHER_CHARS)]


class AmMatcher(BaseModel):
    """One matcher of Alertmanager's ``postableSilence``: ``isEqual`` false negates, ``isRegex`` makes a regex."""

    model_config = ConfigDict(strict=True)

    name: LabelText
    value: LabelText
    isRegex: bool  # Alertmanager's field names
    isEqual: bool = True


class PostableSilence(BaseModel):
    """``POST /api/v2/silences``: Alertmanager's ``postableSilence``, bounded like ``SilenceBody``. Fields
    it does not know (``annotations`` among them: alertd's silences have none) are ignored, as Alertmanager
    ignores unknown fields."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: Annotated[str, StringConstraints(max_length=64)] | None = None
    matchers: Annotated[list[AmMatcher], Field(min_length=1, max_length=MAX_MATCHERS)]
    startsAt: Rfc3339
    endsAt: Rfc3339
    createdBy: Who
    comment: Comment


Body = TypeVar("Body", bound=_Body)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def parse_body(model: type[Body], raw: bytes) -> Body:
    """The body as ``model``; a ValueError with one line per problem (``field: message``) otherwise."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = [f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)[:5]]
        raise ValueError("; ".join(problems)) from None


def schema(model: type[_Body]) -> dict[str, Any]:
    """The model's JSON schema for the OpenAPI document."""
    return model.model_json_schema()
