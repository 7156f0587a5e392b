"""Size checks made before an operator, a method or a filter allocates its result.

Each check works out how large the result would be from its operands (lengths, counts, widths) and raises
``BudgetExceeded`` when it would pass the budget, so that the memory is never asked for.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from string import Formatter
from typing import Any

from jinja2.filters import make_attrgetter
from jinja2.utils import _PassArg

from alertd.templating.budget import (
    Budget,
    BudgetExceeded,
    check_length,
    check_size,
    check_time,
    printed_size,
)

_Sequence = (str, bytes, list, tuple)
_DIGITS = re.compile(r"\d+")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?([#0 +\-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?)[hlL]?[a-zA-Z%]")


def _count(value: Any) -> int:
    return len(value) if isinstance(value, _Sequence) else 0


def _sequence_limit(value: Any, budget: Budget) -> int:
    """Strings are bounded by the output size, lists and tuples by the loop iterations."""
    return budget.output if isinstance(value, (str, bytes)) else budget.iterations


def check_binop(op: str, left: Any, right: Any, budget: Budget) -> None:
    if op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _Sequence) and isinstance(times, int):
                if len(seq) * times > _sequence_limit(seq, budget):
                    raise BudgetExceeded("output size", f"{type(seq).__name__} of {len(seq)} repeated {times} times")
                return
        if isinstance(left, int) and isinstance(right, int):
            _check_bits(left.bit_length() + right.bit_length(), budget)
    elif op == "+":
        if isinstance(left, (str, bytes)) and isinstance(right, (str, bytes)):
            check_length(len(left) + len(right), budget, "a + concatenation")
        elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            if len(left) + len(right) > budget.iterations:
                raise BudgetExceeded("loop iterations", f"a + concatenation of {len(left) + len(right)} items")
            check_length(printed_size(left, budget.output) + printed_size(right, budget.output), budget,
                         "a + concatenation")
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _check_bits(left.bit_length() * min(right, budget.output * 8), budget)
    elif op == "%" and isinstance(left, (str, bytes)):
        check_percent_format(left, right, budget)


def _check_bits(bits: int, budget: Budget) -> None:
    if bits > budget.output * 8:
        raise BudgetExceeded("output size", f"a number of {bits} bits")


def spec_width(spec: str) -> int:
    """The widths and precisions a format spec asks for, added up (digit runs too long to parse count as huge)."""
    total = 0
    for digits in _DIGITS.findall(spec):
        total += int(digits) if len(digits) < 10 else 10**10
    return total


def check_percent_format(fmt: str | bytes, args: Any, budget: Budget) -> None:
    """``fmt % args``: the format's widths and precisions and the printed size of the arguments."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    specs = _PERCENT_SPEC.findall(text)
    size = len(text) + sum(spec_width(s) for s in specs)
    if any("*" in s for s in specs):
        values = args if isinstance(args, tuple) else (args,)
        size += sum(abs(v) for v in values if isinstance(v, int))
    size += printed_size(args, budget.output)
    check_length(size, budget, "a %-format result")


def check_str_format(fmt: str, values: list[Any], budget: Budget) -> None:
    """``fmt.format(...)``: each field may print the largest argument, at the widths its spec asks for."""
    largest = max((printed_size(v, budget.output) for v in values), default=0)
    numbers = sum(abs(v) for v in values if isinstance(v, int) and not isinstance(v, bool))
    size = len(fmt)
    for _literal, field, spec, _conversion in Formatter().parse(fmt):
        if field is None:
            continue
        size += largest + spec_width(spec or "") + (numbers if spec and "{" in spec else 0)
        if size > budget.output:
            break
    check_length(size, budget, "a str.format result")


def check_method(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], budget: Budget) -> None:
    """Methods of strings, bytes and integers whose result can be much larger than their object."""
    if obj is dict:
        check_size((args, kwargs), budget, "dict()")
        return
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, (str, bytes)):
        if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
            check_length(max(args[0], len(owner)), budget, f"{name}()")
        elif name == "expandtabs":
            tab = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(tab, int):
                tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
                check_length(len(owner) + tabs * tab, budget, "expandtabs()")
        elif name == "replace" and len(args) >= 2:
            check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1), budget)
        elif name == "join" and args:
            check_join(owner, args[0], budget)
        elif name == "translate" and args and isinstance(args[0], Mapping):
            longest = max((_count(v) for v in args[0].values()), default=1)
            check_length(len(owner) * max(longest, 1), budget, "translate()")
    elif isinstance(owner, int) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        if isinstance(length, int):
            check_length(length, budget, "to_bytes()")


def check_replace(text: Any, old: Any, new: Any, count: Any, budget: Budget) -> None:
    if not isinstance(text, (str, bytes)) or not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return
    found = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    check_length(len(text) + found * (len(new) - len(old)), budget, "replace()")


def check_join(separator: Any, items: Any, budget: Budget) -> None:
    """Only sized collections can be measured in place; a lazy iterable is measured by ``materialize``."""
    if isinstance(items, (str, bytes, list, tuple, set, frozenset)):
        size = printed_size(items, budget.output) + len(separator) * max(len(items) - 1, 0)
        check_length(size, budget, "join()")


def materialize(items: Iterable[Any], budget: Budget, what: str) -> Any:
    """The items, refused as soon as their count or their printed size passes the budget.

    A collection is measured and passed on as it is; a lazy iterable is drawn into a list as it is measured.
    """
    if isinstance(items, (str, bytes, Mapping, list, tuple, set, frozenset)):
        check_size(items, budget, what)
        return items
    out: list[Any] = []
    size = 0
    for item in items:
        out.append(item)
        size += printed_size(item, budget.output)
        if len(out) > budget.iterations:
            raise BudgetExceeded("loop iterations", f"{what} of more than {budget.iterations} items")
        if size > budget.output:
            raise BudgetExceeded("output size", f"{what} longer than {budget.output} characters")
        if not len(out) & 255:
            check_time()
    return out


# -- filters ------------------------------------------------------------------------------------------------

Filter = Callable[..., Any]


def _value_index(func: Filter) -> int:
    return 0 if _PassArg.from_obj(func) is None else 1


def _guard(func: Filter, before: Callable[[list[Any], dict[str, Any]], None]) -> Filter:
    """The filter, after ``before`` has checked (and may have replaced) its value and arguments."""

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        a = list(args)
        before(a, kwargs)
        return func(*a, **kwargs)

    return guarded


def _arg(args: list[Any], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def bounded_filters(filters: Mapping[str, Filter], budget: Budget) -> dict[str, Filter]:
    """Replacements for the built-in filters that stringify, materialize or widen their value."""
    out: dict[str, Filter] = {}

    def sized(name: str, extra: Callable[[int, list[Any], dict[str, Any]], None] | None = None) -> None:
        func = filters.get(name)
        if func is None:
            return
        i = _value_index(func)

        def before(args: list[Any], kwargs: dict[str, Any]) -> None:
            if len(args) > i:
                check_size(args[i], budget, f"the value of |{name}")
            if extra is not None:
                extra(i, args, kwargs)

        out[name] = _guard(func, before)

    def materialized(name: str, extra: Callable[[int, list[Any], dict[str, Any]], None] | None = None) -> None:
        func = filters.get(name)
        if func is None:
            return
        i = _value_index(func)

        def before(args: list[Any], kwargs: dict[str, Any]) -> None:
            if len(args) > i:
                args[i] = materialize(args[i], budget, f"the value of |{name}")
            if extra is not None:
                extra(i, args, kwargs)

        out[name] = _guard(func, before)

    for name in ("string", "pprint", "e", "escape", "forceescape", "upper", "lower", "title", "capitalize", "trim",
                 "striptags", "urlize", "urlencode", "xmlattr", "wordcount", "safe", "truncate", "int", "float"):
        sized(name)

    def center(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
        width = _arg(args, kwargs, i + 1, "width", 80)
        if isinstance(width, int):
            check_length(width, budget, "|center")

    def indent(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
        width = _arg(args, kwargs, i + 1, "width", 4)
        step = width if isinstance(width, int) else _count(width)
        text = str(args[i]) if len(args) > i else ""
        check_length(len(text) + (text.count("\n") + 1) * step, budget, "|indent")

    def replace(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
        text = args[i] if len(args) > i else ""
        old, new = _arg(args, kwargs, i + 1, "old", ""), _arg(args, kwargs, i + 2, "new", "")
        check_replace(str(text), str(old), str(new), _arg(args, kwargs, i + 3, "count", None), budget)

    def wordwrap(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
        text = str(args[i]) if len(args) > i else ""
        wrap = _arg(args, kwargs, i + 4, "wrapstring", None)
        check_length(len(text) + (len(text) + 1) * (len(str(wrap)) if wrap is not None else 2), budget, "|wordwrap")

    def format_(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
        fmt = str(args[i]) if len(args) > i else ""
        check_percent_format(fmt, dict(kwargs) if kwargs else tuple(args[i + 1:]), budget)

    def tojson(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
        width = _arg(args, kwargs, i + 1, "indent", None)
        if isinstance(width, int) and len(args) > i:
            check_length(printed_size(args[i], budget.output) * (1 + width), budget, "|tojson")

    for name, extra in (("center", center), ("indent", indent), ("replace", replace), ("wordwrap", wordwrap),
                        ("format", format_), ("tojson", tojson)):
        sized(name, extra)

    def join(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
        attribute = _arg(args, kwargs, i + 2, "attribute", None)
        if attribute is not None:
            env = args[0].environment if i else None
            getter = make_attrgetter(env, attribute) if env is not None else None
            if getter is not None:
                args[i] = materialize(map(getter, args[i]), budget, "the value of |join")
            kwargs.pop("attribute", None)
            del args[i + 2:]
        check_join(str(_arg(args, kwargs, i + 1, "d", "")), args[i], budget)

    def count_arg(position: int, name: str) -> Callable[[int, list[Any], dict[str, Any]], None]:
        def check(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
            value = _arg(args, kwargs, i + position, name, 0)
            if isinstance(value, int) and value > budget.iterations:
                raise BudgetExceeded("loop iterations", f"{name} {value}, more than {budget.iterations}")

        return check

    def sum_(i: int, args: list[Any], kwargs: dict[str, Any]) -> None:
        start = _arg(args, kwargs, i + 2, "start", 0)
        if not isinstance(start, (int, float)):
            check_length(printed_size(start, budget.output) + printed_size(args[i], budget.output), budget, "|sum")

    materialized("join", join)
    materialized("batch", count_arg(1, "linecount"))
    materialized("slice", count_arg(1, "slices"))
    materialized("sum", sum_)
    for name in ("list", "sort", "unique", "reverse", "groupby", "last", "random", "min", "max"):
        materialized(name)
    return out
