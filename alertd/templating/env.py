"""Jinja source text in, compiled conditions and templates out: sandboxed, bounded, strict about undefined names.

Every template renders under a ``Budget`` (see ``alertd.templating.budget``): operators, calls, filters, loops
and output are checked before they allocate, a rendering past its deadline stops at the next step, and the
output stops at its size cap. A rendering cut short yields the text so far and a marker such as
``… [template budget exceeded: output size]``. The context is read-only: the environment refuses the methods
that change a list, a dict or a set, so a template cannot change the labels or annotations it is given.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, cast

import pluggy
from jinja2 import Environment, StrictUndefined, Template, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from alertd.templating.budget import (
    DEFAULT_BUDGET,
    MARKER,
    Breach,
    Budget,
    BudgetExceeded,
    Meter,
    check_length,
    check_size,
    check_time,
    current_meter,
    printed_size,
)
from alertd.templating.guards import bounded_filters, check_binop, check_method, check_str_format

log = logging.getLogger("alertd.templating")


class _LoopsAndConcats(NodeTransformer):
    """Routes every ``{% for %}`` iterable and every ``~`` through the environment, which counts and measures."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)  # type: ignore[assignment]
        node.iter = nodes.Call(nodes.EnvironmentAttribute("budget_iter"), [node.iter], [], None, None,
                               lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)  # type: ignore[assignment]
        return nodes.Call(nodes.EnvironmentAttribute("budget_concat"), list(node.nodes), [], None, None,
                          lineno=node.lineno)


class BoundedNamespace(Namespace):
    """``namespace()``: the one object a template can change, so what it holds is measured as it is set."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # Namespace's own signature: self is args[0]
        meter = current_meter.get()
        check_size((args[1:], kwargs), meter.budget if meter else DEFAULT_BUDGET, "a namespace")
        Namespace.__init__(*args, **kwargs)

    def __setitem__(self, name: str, value: Any) -> None:
        meter = current_meter.get()
        check_size(value, meter.budget if meter else DEFAULT_BUDGET, f"namespace attribute {name!r}")
        super().__setitem__(name, value)


class BlockBuffer(list[str]):
    """Where a macro, a ``{% set %}`` or a ``{% filter %}`` block collects its output: measured as it grows."""

    __slots__ = ("budget", "room")

    def __init__(self, budget: Budget) -> None:
        super().__init__()
        self.budget = budget
        self.room = budget.output

    def append(self, text: str) -> None:
        self.room -= len(text)
        if self.room < 0:
            raise BudgetExceeded("output size", f"a block's output longer than {self.budget.output} characters")
        super().append(text)

    def extend(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.append(text)


class _BlockBuffers(CodeGenerator):
    """Compiles the buffers of blocks and macros as ``BlockBuffer``s instead of plain lists."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.block_buffer()")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with a budget: see the module's docstring."""

    intercepted_binops = frozenset({"*", "+", "%", "**"})
    code_generator_class = _BlockBuffers

    def __init__(self, budget: Budget = DEFAULT_BUDGET, on_breach: Callable[[Breach], None] | None = None) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False,
                         finalize=self._finalize)
        self.budget = budget
        self.on_breach = on_breach
        self.template_class = BoundedTemplate
        self.globals["range"] = self._range
        self.globals["lipsum"] = self._lipsum
        self.globals["namespace"] = BoundedNamespace
        self.filters.update(bounded_filters(self.filters, budget))

    # -- compiling --------------------------------------------------------------------------------------------

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        return super()._generate(_LoopsAndConcats().visit(source), name, filename, defer_init)

    def from_string(self, source: str | nodes.Template, globals: MutableMapping[str, Any] | None = None,
                    template_class: type[Template] | None = None) -> Template:
        template = super().from_string(source, globals, template_class)
        if isinstance(source, str):
            template.excerpt = source.strip().splitlines()[0][:80] if source.strip() else ""  # type: ignore[attr-defined]
        return template

    # -- hooks the compiled code calls ---------------------------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right, self.budget)
        return self.binop_table[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_time()
        check_method(__obj, args, kwargs, __self.budget)
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (__self.budget_iter(args[0]), *args[1:])
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt: str = value.__self__
        is_map = value.__name__ == "format_map"
        budget = self.budget

        def bounded(*args: Any, **kwargs: Any) -> str:
            values = list(args[0].values()) if is_map and args and isinstance(args[0], Mapping) else [
                *args, *kwargs.values()]
            check_str_format(fmt, values, budget)
            return wrapper(*args, **kwargs)

        return bounded

    def _finalize(self, value: Any) -> Any:
        if type(value) is str:
            if len(value) > self.budget.output:
                check_length(len(value), self.budget, "an output value")
        elif not isinstance(value, (int, float)):
            check_size(value, self.budget, "an output value")
        return value

    def block_buffer(self) -> BlockBuffer:
        return BlockBuffer(self.budget)

    def budget_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        meter = current_meter.get() or Meter(self.budget)
        for item in iterable:
            meter.iterate()
            yield item

    def budget_concat(self, *parts: Any) -> str:
        size = 0
        for part in parts:
            size += len(part) if type(part) is str else printed_size(part, self.budget.output)
        check_length(size, self.budget, "a ~ concatenation")
        return markup_join(parts) if any(hasattr(p, "__html__") for p in parts) else str_join(parts)

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        try:
            count = len(numbers)
        except OverflowError:
            count = self.budget.iterations + 1
        if count > self.budget.iterations:
            raise BudgetExceeded("loop iterations", f"range of {count} numbers, more than {self.budget.iterations}")
        return numbers

    def _lipsum(self, n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        check_length(12 * n * builtins.max(min, max, 1), self.budget, "lipsum()")
        return generate_lorem_ipsum(n, html, min, max)

    # -- rendering ----------------------------------------------------------------------------------------------

    def report(self, breach: Breach) -> None:
        log.warning("%s rendering %s", breach.describe(), breach.template)
        if self.on_breach is not None:
            self.on_breach(breach)


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    breach: Breach | None = None


def render_bounded(template: Template, context: Mapping[str, Any], *, report: bool = True) -> Rendered:
    """Render under the environment's budget: the whole text, or the text so far and a marker, with the breach.

    A breach is logged and passed to the environment's ``on_breach``, unless ``report`` is false (checks).
    Errors other than a breach (an undefined name, a refused attribute) propagate, as from ``render``.
    """
    env = template.environment
    budget: Budget = getattr(env, "budget", DEFAULT_BUDGET)
    meter = Meter(budget)
    token = current_meter.set(meter)
    parts: list[str] = []
    room = budget.output
    stream = cast(Generator[str, None, None], template.root_render_func(template.new_context(dict(context))))
    try:
        for chunk in stream:
            room -= len(chunk)
            if room < 0:
                parts.append(chunk[:room])
                raise BudgetExceeded("output size", f"more than {budget.output} characters")
            parts.append(chunk)
            if not len(parts) & 63:
                meter.check_time()
    except BudgetExceeded as exc:
        stream.close()
        parts.append(MARKER.format(limit=exc.limit))
        breach = Breach(exc.limit, exc.detail, template.name or getattr(template, "excerpt", "") or "<template>")
        if report and isinstance(env, BoundedEnvironment):
            env.report(breach)
        return Rendered("".join(parts), breach)
    except Exception:
        stream.close()
        env.handle_exception()  # re-raises with the template's lines in the traceback, as render() does
    finally:
        current_meter.reset(token)
    return Rendered("".join(parts))


class BoundedTemplate(Template):
    """``render`` goes through ``render_bounded``: a template past its budget renders its text with a marker."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        return render_bounded(self, dict(*args, **kwargs)).text


def make_environment(
    pm: pluggy.PluginManager | None = None,
    budget: Budget = DEFAULT_BUDGET,
    on_breach: Callable[[Breach], None] | None = None,
) -> BoundedEnvironment:
    """A bounded sandbox where an undefined name is an error, with every plugin's filters."""
    env = BoundedEnvironment(budget, on_breach)
    if pm is None:
        from alertd.plugins import make_plugin_manager

        pm = make_plugin_manager(load_entry_points=False)
    # pluggy returns results last-registered first; apply them in reverse so later plugins win.
    for filters in reversed(pm.hook.register_template_filters()):
        env.filters.update(filters)
    return env


def compile_expression(env: Environment, source: str) -> Callable[..., Any]:
    """Compile a condition such as ``value > 100`` once; raises TemplateError on bad syntax."""
    if not source.strip():
        raise TemplateError("empty expression")
    return env.compile_expression(source, undefined_to_none=False)


def expression_names(env: Environment, source: str) -> set[str]:
    """The free variable names an expression reads, for checking them before anything runs."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(env.parse("{{ (" + source + ") }}")))


class PermissiveLabels(dict[str, str]):
    """Labels for rendering templates at check time when the label names cannot be known in advance."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]
