"""The rule file format as pydantic models: what a rule file may say, checked field by field."""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from alertd.durations import Duration, Interval

FunctionName = Literal[
    "last",
    "increase",
    "rate",
    "delta",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "age",
    "absent",
    "histogram_quantile",
]
# Functions over a window of samples; the others read the newest sample ("last", "age", "absent") or
# take a window only optionally ("histogram_quantile").
RANGE_FUNCTIONS = tuple(f for f in get_args(FunctionName) if f not in ("last", "age", "absent", "histogram_quantile"))
AggregateOp = Literal["sum", "min", "max", "avg", "count"]
Severity = Literal["critical", "error", "warning", "info"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_VARIABLES = frozenset({"value", "labels", "now", "rule", "severity"})


def first_message(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    field = ".".join(str(p) for p in err["loc"])
    return f"{field}: {msg}" if field else msg


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class QuerySpec(_Strict):
    """Which series, through which function over which window, aggregated how."""

    select: str = Field(description="a PromQL-style selector: name{label=\"v\", other=~\"re\"}")
    function: FunctionName = "last"
    window: Duration | None = None
    quantile: float | None = None
    aggregate: AggregateOp | None = None
    by: list[str] | None = None
    default: float | None = None

    @field_validator("by")
    @classmethod
    def _labels(cls, by: list[str] | None) -> list[str] | None:
        for label in by or ():
            if not _LABEL.match(label):
                raise ValueError(f"{label!r} is not a valid label name")
        return by

    @model_validator(mode="after")
    def _consistent(self) -> QuerySpec:
        if self.function in RANGE_FUNCTIONS and not self.window:
            raise ValueError(f"function {self.function!r} needs a window, like window = \"5m\"")
        if self.function in ("last", "age", "absent") and self.window:
            raise ValueError(f"function {self.function!r} takes no window")
        if self.function == "histogram_quantile":
            if self.quantile is None:
                raise ValueError("histogram_quantile needs a quantile between 0 and 1, like quantile = 0.95")
            if not 0 <= self.quantile <= 1:
                raise ValueError(f"quantile must be between 0 and 1, got {self.quantile}")
        elif self.quantile is not None:
            raise ValueError("quantile is only for function = \"histogram_quantile\"")
        if self.by is not None and self.aggregate is None:
            raise ValueError("by needs an aggregate, like aggregate = \"sum\"")
        if self.function == "histogram_quantile" and self.aggregate not in (None, "sum"):
            raise ValueError("histogram_quantile sums its buckets: use aggregate = \"sum\" (or none)")
        if self.function == "absent" and self.aggregate is not None:
            raise ValueError("absent takes no aggregate")
        return self


class RuleSpec(_Strict):
    """One alerting rule as written in a rule file."""

    name: str
    # A rule reads one query, written inline ...
    select: str | None = None
    function: FunctionName | None = None
    window: Duration | None = None
    quantile: float | None = None
    aggregate: AggregateOp | None = None
    by: list[str] | None = None
    # ... or several named ones, joined on their label sets.
    queries: dict[str, QuerySpec] | None = None
    value: str | None = None
    condition: str
    for_: Duration = Field(0.0, alias="for")
    keep_firing_for: Duration = 0.0
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str | None = None
    description: str | None = None
    runbook_url: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)

    _inline: QuerySpec = PrivateAttr()

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a valid rule name: use letters, digits and _, like QueueBacklog")
        return name

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for label in labels:
            if not _LABEL.match(label):
                raise ValueError(f"{label!r} is not a valid label name")
        if "alertname" in labels or "severity" in labels:
            raise ValueError("alertname and severity are set by the rule itself, not in labels")
        return labels

    @model_validator(mode="after")
    def _one_way(self) -> RuleSpec:
        inline = self.select is not None
        if inline and self.queries:
            raise ValueError("a rule has either select (one query) or queries (several), not both")
        if not inline and not self.queries:
            raise ValueError("a rule needs select = '<series selector>' or a [queries] table")
        if inline:
            try:
                self._inline = QuerySpec(
                    select=self.select or "",
                    function=self.function or "last",
                    window=self.window,
                    quantile=self.quantile,
                    aggregate=self.aggregate,
                    by=self.by,
                )
            except ValidationError as exc:
                raise ValueError(first_message(exc)) from None
        if not inline and any(
            v is not None for v in (self.function, self.window, self.quantile, self.aggregate, self.by)
        ):
            raise ValueError("function, window, quantile, aggregate and by go inside each query when queries is used")
        for qname in self.queries or {}:
            if not _NAME.match(qname) or qname in RESERVED_VARIABLES:
                raise ValueError(
                    f"{qname!r} cannot name a query: use an identifier other than {sorted(RESERVED_VARIABLES)}"
                )
        return self

    def query_specs(self) -> dict[str, QuerySpec]:
        """Every query by the variable name the condition reads it as (``value`` for an inline query)."""
        if self.queries:
            return dict(self.queries)
        return {"value": self._inline}

    def annotation_sources(self) -> dict[str, str]:
        out = dict(self.annotations)
        for key in ("summary", "description", "runbook_url"):
            text = getattr(self, key)
            if text is not None:
                out[key] = text
        return out


class GroupSpec(_Strict):
    """Rules that share an evaluation interval and labels."""

    name: str
    interval: Interval | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)


class RuleFileSpec(_Strict):
    """A rule file: named groups, or bare rules that form one group named after the file."""

    groups: list[GroupSpec] = Field(default_factory=list)
    rules: list[RuleSpec] = Field(default_factory=list)
