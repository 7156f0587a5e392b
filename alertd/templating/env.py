"""Jinja source text in, compiled conditions and templates out: sandboxed, strict about undefined names."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pluggy
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment


def make_environment(pm: pluggy.PluginManager | None = None) -> SandboxedEnvironment:
    """A sandboxed environment where an undefined name is an error, with every plugin's filters."""
    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    if pm is None:
        from alertd.plugins import make_plugin_manager

        pm = make_plugin_manager(load_entry_points=False)
    # pluggy returns results last-registered first; apply them in reverse so later plugins win.
    for filters in reversed(pm.hook.register_template_filters()):
        env.filters.update(filters)
    return env


def compile_expression(env: SandboxedEnvironment, source: str) -> Callable[..., Any]:
    """Compile a condition such as ``value > 100`` once; raises TemplateError on bad syntax."""
    if not source.strip():
        raise TemplateError("empty expression")
    return env.compile_expression(source, undefined_to_none=False)


def expression_names(env: SandboxedEnvironment, source: str) -> set[str]:
    """The free variable names an expression reads, for checking them before anything runs."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(env.parse("{{ (" + source + ") }}")))


class PermissiveLabels(dict[str, str]):
    """Labels for rendering templates at check time when the label names cannot be known in advance."""

    def __missing__(self, key: str) -> str:
        return f"<{key}>"

    def get(self, key: str, default: Any = None) -> Any:
        return self[key]


def render_all(
    env: SandboxedEnvironment, templates: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, str]:
    """Render every compiled template; raises TemplateError from the first one that fails."""
    return {name: tpl.render(context) for name, tpl in templates.items()}


def compile_templates(env: SandboxedEnvironment, sources: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {name: env.from_string(src) for name, src in sources}
