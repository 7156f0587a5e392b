"""The plugin contract: every hook documented with its exact signature, misspelt hooks refused, a small public API."""

from __future__ import annotations

import inspect
import re
import sys
import types
from pathlib import Path

import pytest

import alertd
from alertd import hookspecs
from alertd.errors import ConfigError
from alertd.hookspecs import hookimpl
from alertd.plugins import BUILTIN_PLUGINS, installed, make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
HOOKS = sorted(name for name, f in vars(hookspecs).items() if hasattr(f, "alertd_spec"))


def signature(name: str) -> str:
    func = getattr(hookspecs, name)
    return f"def {name}{inspect.signature(func)}".replace("'", "")


def test_there_are_hooks() -> None:
    assert {"register_collectors", "register_notifiers", "register_template_filters"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_with_its_exact_signature(hook: str) -> None:
    assert re.search(rf"^## `?{hook}`?\s*$", DOC, re.M), f"docs/plugins.md has no section for {hook}"
    assert signature(hook) in DOC, f"docs/plugins.md does not show `{signature(hook)}`"


def test_a_hook_implementation_that_matches_no_spec_is_refused() -> None:
    module = types.ModuleType("alertd_test_misspelt")

    @hookimpl
    def register_notifier() -> list[type]:  # one letter short of register_notifiers
        return []

    module.register_notifier = register_notifier  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(ConfigError, match="implements a hook that alertd does not have"):
            make_plugin_manager(builtins=(*BUILTIN_PLUGINS, module.__name__), load_entry_points=False)
    finally:
        del sys.modules[module.__name__]


def test_builtin_notifiers_register_like_plugins() -> None:
    pm = make_plugin_manager(load_entry_points=False)
    types_ = {cls.type_name for group in pm.hook.register_notifiers() for cls in group}
    assert "console" in types_


def test_installed_lists_distribution_and_version() -> None:
    entries = {(e.kind, e.type_name): e for e in installed(make_plugin_manager())}
    assert entries[("notifier", "console")].distribution == "alertd"
    assert entries[("notifier", "console")].version == alertd.__version__
    assert entries[("collector", "workers")].distribution == "alertd"


def test_public_api_is_sorted_and_complete() -> None:
    assert alertd.__all__ == sorted(alertd.__all__)
    assert {"hookimpl", "Alert", "Notification", "Notifier", "RetryableError", "PermanentError"} <= set(alertd.__all__)
    for name in alertd.__all__:
        assert hasattr(alertd, name)
