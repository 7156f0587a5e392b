"""A query spec in, a compiled query out: series selected from the store, a function applied, aggregated."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alertd.models import LabelsKey, labels_key
from alertd.rules.model import QuerySpec
from alertd.series import functions as fn
from alertd.series.functions import Result
from alertd.series.selector import Selector, parse_selector
from alertd.series.store import Series, SeriesStore

QueryResults = dict[LabelsKey, Result]


@dataclass(frozen=True)
class CompiledQuery:
    """A query ready to run: its selector parsed and its function looked up once."""

    spec: QuerySpec
    selector: Selector

    @classmethod
    def compile(cls, spec: QuerySpec) -> CompiledQuery:
        """Raises ValueError when the selector does not parse (bad syntax, bad regex)."""
        return cls(spec, parse_selector(spec.select))

    @property
    def metric(self) -> str:
        return self.selector.name

    @property
    def window(self) -> float:
        return self.spec.window or 0.0

    def evaluate(self, store: SeriesStore, now: float) -> QueryResults:
        series = store.select(self.selector)
        results = self._apply(series, store, now)
        if self.spec.aggregate is not None and self.spec.function != "histogram_quantile":
            results = fn.aggregate(self.spec.aggregate, self.spec.by, results)
        return {labels_key(r.labels): r for r in results}

    def _apply(self, series: Sequence[Series], store: SeriesStore, now: float) -> list[Result]:
        spec = self.spec
        name = spec.function
        if name == "last":
            return fn.instant(series, now, store.lookback)
        if name == "age":
            return fn.age(series, now)
        if name == "absent":
            return fn.absent(self.selector, fn.instant(series, now, store.lookback))
        if name == "histogram_quantile":
            buckets = fn.rate(series, now, spec.window) if spec.window else fn.instant(series, now, store.lookback)
            if spec.aggregate is not None:
                buckets = fn.aggregate("sum", [*(spec.by or ()), "le"], buckets)
            return fn.histogram_quantile(spec.quantile or 0.0, buckets)
        range_fn: Callable[[Sequence[Series], float, float], list[Result]] = fn.FUNCTIONS[name]
        return range_fn(series, now, spec.window or 0.0)
