"""A Prometheus text (0.0.4) or OpenMetrics exposition in, ``(sample name, labels, value)`` out.

Shared by the collectors that read ``/metrics`` pages (the Pushgateway's, any scrape target's). Parsing is
prometheus_client's parser, fed only the lines a caller keeps: the parser costs about 20 µs a sample, a line
dropped before it well under one. Not returned: NaN values and the ``<name>_created`` samples that accompany
counters, histograms and summaries (a creation time, not a measurement).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO, cast

from prometheus_client.openmetrics.parser import text_fd_to_metric_families as openmetrics_families
from prometheus_client.parser import text_fd_to_metric_families as text_families

from alertd.errors import CollectorError

Series = tuple[str, dict[str, str], float]

OPENMETRICS_TYPE = "application/openmetrics-text"
# What a scraper asks for: OpenMetrics first, the classic text format otherwise, never protobuf.
ACCEPT = f"{OPENMETRICS_TYPE};version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
COMPANION_TYPES = ("counter", "histogram", "summary", "gaugehistogram")


def prefix_filter(prefixes: Sequence[str]) -> Callable[[str], bool] | None:
    """A line filter that keeps comments, blank lines and the samples of metrics named with one of ``prefixes``."""
    if not prefixes:
        return None
    keep = tuple(prefixes)
    return lambda line: line.startswith(keep) or line.startswith("#") or not line.strip()


def iter_lines(text: str) -> Iterator[str]:
    """The lines of ``text``, one at a time: a list of all of them would hold a second copy of a large page."""
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        yield text[start:end]
        start = end + 1


def parse_exposition(
    text: str, keep_line: Callable[[str], bool] | None = None, *, openmetrics: bool = False, source: str = "target"
) -> list[Series]:
    """Parse ``text`` (the lines ``keep_line`` accepts); raises CollectorError naming ``source`` and the line."""
    current = [0]

    def lines() -> Iterator[str]:
        for number, line in enumerate(iter_lines(text), 1):
            if keep_line is not None and not keep_line(line):
                continue
            current[0] = number
            yield line

    parser = openmetrics_families if openmetrics else text_families
    try:
        # The parsers only iterate over their "file": a generator of the kept lines is enough.
        families = list(parser(cast(TextIO, lines())))
    except Exception as exc:  # the parsers raise bare ValueErrors, some without a message
        reason = str(exc).strip() or "a line the parser could not read"
        where = f" (line {current[0]})" if current[0] else ""
        raise CollectorError(f"{source} returned malformed metrics: {reason[:200]}{where}") from None
    companions = {f.name for f in families if f.type in COMPANION_TYPES}
    out: list[Series] = []
    for family in families:
        if family.type == "gauge" and family.name.endswith("_created") and family.name[:-8] in companions:
            continue  # the text format's separate _created gauge
        for sample in family.samples:
            if family.type in COMPANION_TYPES and sample.name.endswith("_created"):
                continue  # OpenMetrics' _created sample inside its family
            value = float(sample.value)
            if math.isnan(value):
                continue
            out.append((sample.name, sample.labels, value))
    return out
