"""A TOML or YAML file in, its data and the line of every key out, so errors can name ``file:line``."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from alertd.errors import ConfigError

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """A parsed file: its data and where each key path sits in the text."""

    path: str
    data: dict[str, Any]
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the longest known prefix of ``loc`` (the key itself where known)."""
        loc = tuple(loc)
        for end in range(len(loc), 0, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None


YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 16 * 2**20
MAX_DEPTH = 64
MAX_NODES = 1_000_000
TOML_SUFFIXES = (".toml",)


def load_document(path: str | Path) -> Document:
    """Read a TOML or YAML file; a syntax error is a ConfigError naming the file and line."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"larger than {MAX_FILE_BYTES // 2**20} MiB: is it the right file?", file=str(p))
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", file=str(p)) from None
    if p.suffix in YAML_SUFFIXES:
        return parse_yaml(text, str(p))
    if p.suffix in TOML_SUFFIXES:
        return parse_toml(text, str(p))
    raise ConfigError("unknown file type: use .toml, .yaml or .yml", file=str(p))


_TOML_ERR_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_toml(text: str, path: str) -> Document:
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError("nested too deeply", file=path) from None
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_ERR_LINE.search(msg)
        line = int(m.group(1)) if m else None
        msg = _TOML_ERR_LINE.sub("", msg).strip()
        raise ConfigError(f"TOML syntax error: {msg}", file=path, line=line) from None
    if _depth(data) > MAX_DEPTH:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=path)
    return Document(path, data, _toml_lines(text))


def _depth(data: object) -> int:
    deepest, todo = 0, [(data, 0)]
    while todo:
        value, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            todo += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            todo += [(v, depth + 1) for v in value]
    return deepest


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_DOTTED = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")


def _split_key(key: str) -> list[str]:
    return [part.strip("\"'") for part in _DOTTED.findall(key)]


def _toml_lines(text: str) -> dict[Path_, int]:
    """Best-effort key-path -> line map for TOML (tomllib keeps no positions).

    Tracks table headers and arrays of tables; keys inside multi-line strings are skipped.
    """
    lines: dict[Path_, int] = {}
    counts: dict[Path_, int] = {}
    current_aot: dict[tuple[str, ...], Path_] = {}
    table: Path_ = ()
    in_multiline: str | None = None

    def concrete(parts: Sequence[str]) -> Path_:
        out: Path_ = ()
        for i in range(len(parts)):
            abstract = tuple(parts[: i + 1])
            out = current_aot[abstract] if abstract in current_aot else (*out, parts[i])
        return out

    for number, raw in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(raw)
        if header:
            parts = _split_key(header.group(2))
            if header.group(1) == "[[":
                parent = concrete(parts[:-1])
                key = (*parent, parts[-1])
                index = counts.get(key, 0)
                counts[key] = index + 1
                table = (*key, index)
                current_aot[tuple(parts)] = table
                # forget deeper arrays of tables: they restart under the new element
                for abstract in [a for a in current_aot if len(a) > len(parts) and a[: len(parts)] == tuple(parts)]:
                    del current_aot[abstract]
            else:
                table = concrete(parts)
            lines.setdefault(table, number)
            continue
        key_match = _KEY.match(raw)
        if key_match:
            path = (*table, *_split_key(key_match.group(1)))
            lines.setdefault(path, number)
            rest = raw[key_match.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
    return lines


def parse_yaml(text: str, path: str) -> Document:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _check_yaml_shape(node, path)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"YAML syntax error: {problem}", file=path, line=line) from None
    except RecursionError:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the file must hold a mapping at the top level", file=path, line=1)
    lines: dict[Path_, int] = {}
    if node is not None:
        _yaml_lines(node, (), lines)
    return Document(path, data, lines)


def _check_yaml_shape(root: yaml.Node, path: str) -> None:
    """Refuse what the YAML parser lets through but a configuration never needs: a key given twice (the last
    one would win without a word), nesting deeper than MAX_DEPTH, and aliases that expand to more than
    MAX_NODES nodes (a "billion laughs" file is a few lines of anchors)."""
    sizes: dict[int, int] = {}

    def walk(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=path, line=node.start_mark.line + 1)
        if id(node) in sizes:  # an alias: counted again, not walked again
            return sizes[id(node)]
        size = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise ConfigError(f"key {key.value!r} is given twice (first at line {seen[key.value]})",
                                          file=path, line=line)
                    seen[key.value] = line
                size += walk(key, depth + 1) + walk(value, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            size += sum(walk(item, depth + 1) for item in node.value)
        if size > MAX_NODES:
            raise ConfigError(f"the file expands to more than {MAX_NODES:,} values (anchors and aliases?)",
                              file=path, line=node.start_mark.line + 1)
        sizes[id(node)] = size
        return size

    walk(root, 0)


def _yaml_lines(node: yaml.Node, prefix: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            path = (*prefix, key)
            lines.setdefault(path, key_node.start_mark.line + 1)
            _yaml_lines(value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            lines.setdefault(path, item.start_mark.line + 1)
            _yaml_lines(item, path, lines)


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "missing required field",
}


def validation_errors(
    exc: ValidationError,
    doc: Document,
    *,
    base: Path_ = (),
    rule_of: Any = None,
) -> list[ConfigError]:
    """Turn a pydantic ValidationError into one ConfigError per problem, each with its file, line and field.

    ``rule_of(loc)`` may return ``(rule name, loc of the field within the rule)`` to name the rule.
    """
    out: list[ConfigError] = []
    for err in exc.errors(include_url=False):
        loc = (*base, *err["loc"])
        msg = _MESSAGES.get(err["type"], err["msg"])
        if err["type"].startswith("value_error") and msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "literal_error":
            msg = f"got {err.get('input')!r}; {msg[0].lower()}{msg[1:]}"
        rule = None
        field_loc: Sequence[str | int] = loc
        if rule_of is not None:
            found = rule_of(loc)
            if found is not None:
                rule, field_loc = found
        out.append(
            ConfigError(msg, file=doc.path, line=doc.line_of(loc), rule=rule, field=format_loc(field_loc) or None)
        )
    return out


def format_loc(loc: Sequence[str | int]) -> str:
    """('groups', 0, 'rules', 2, 'for') -> 'groups[0].rules[2].for'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def get_path(data: Mapping[str, Any], loc: Sequence[str | int]) -> Any:
    cur: Any = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return None
    return cur
