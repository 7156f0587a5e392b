"""The promtool series notation in (``0+10x100``, ``1x5``, ``_``, ``stale``), a list of values out.

``a+bxn`` is a, a+b, ... a+n*b (n+1 values); ``a-bxn`` counts down; ``axn`` is a repeated n+1 times;
``_`` is a missing sample and ``_xn`` n missing samples; ``stale`` is a staleness marker.
"""

from __future__ import annotations

import re

MISSING = None
STALE = "stale"

Value = float | str | None

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_EXPAND = re.compile(rf"^(-?{_NUM}|-?Inf|NaN)(?:([+-])({_NUM}))?x(\d+)$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?Inf$|^NaN$")


def _number(text: str) -> float:
    if not _NUMBER.match(text):
        raise ValueError(f"{text!r} is not a number")
    return float(text.replace("Inf", "inf").replace("NaN", "nan"))


def expand_values(text: str) -> list[Value]:
    """Expand a values string; raises ValueError naming the token that is wrong."""
    out: list[Value] = []
    for token in text.split():
        if token == "_":
            out.append(MISSING)
        elif token == STALE:
            out.append(STALE)
        elif token.startswith("_x"):
            count = token[2:]
            if not count.isdigit():
                raise ValueError(f"bad token {token!r}: use _xN for N missing samples")
            out.extend([MISSING] * int(count))
        elif "x" in token:
            m = _EXPAND.match(token)
            if not m:
                raise ValueError(f"bad token {token!r}: use a+bxN, a-bxN or axN")
            start = _number(m.group(1))
            step = _number(m.group(3)) if m.group(3) else 0.0
            if m.group(2) == "-":
                step = -step
            out.extend(start + i * step for i in range(int(m.group(4)) + 1))
        else:
            try:
                out.append(_number(token))
            except ValueError:
                raise ValueError(f"bad token {token!r}: a number, _, stale, or a+bxN") from None
    return out
