"""config.example.toml lists every option of every section, so the file stays the manual of the settings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from alertd.config.load import collector_types
from alertd.config.model import Config
from alertd.plugins import make_plugin_manager

TEXT = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text()
EXAMPLE = tomllib.loads(TEXT)


def _sections() -> list[tuple[str, type[BaseModel], dict[str, object]]]:
    out: list[tuple[str, type[BaseModel], dict[str, object]]] = [("<top>", Config, EXAMPLE)]
    for name, field in Config.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.append((name, annotation, EXAMPLE.get(name, {})))  # type: ignore[arg-type]
    for name, cls in sorted(collector_types(make_plugin_manager()).items()):
        out.append((f"collectors.{name}", cls.Settings, EXAMPLE.get("collectors", {}).get(name, {})))
    return out


@pytest.mark.parametrize(("section", "model", "data"), _sections(), ids=[s[0] for s in _sections()])
def test_every_option_is_in_the_example(section: str, model: type[BaseModel], data: dict[str, object]) -> None:
    names = {field.alias or name for name, field in model.model_fields.items()}
    if section == "<top>":
        names = {n for n in names if n not in EXAMPLE or not isinstance(EXAMPLE[n], dict)}
        names -= {"collectors"}
        names = {n for n in names if not isinstance(getattr(Config.model_fields[n], "annotation", None), type)
                 or not issubclass(Config.model_fields[n].annotation, BaseModel)}  # type: ignore[arg-type]
    # An option without a default (None) cannot be written in TOML: it is shown commented out.
    missing = sorted(
        n for n in names - set(data)
        if not (model.model_fields[n].default is None and re.search(rf"^#\s*{n}\s*=", TEXT, re.M))
    )
    assert not missing, f"config.example.toml [{section}] does not document: {', '.join(missing)}"
