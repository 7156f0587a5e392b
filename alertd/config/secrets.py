"""Raw configuration data in, data with ``${ENV}`` and ``*_file`` secrets substituted out (and where they were)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from alertd.errors import ConfigError
from alertd.sources import Document, format_loc

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}|\$\$")
SECRET_KEYS = re.compile(r"(password|passwd|secret|token|api_key|routing_key|signing_key|webhook_url)$", re.I)
REDACTED = "<redacted>"


def substitute(doc: Document, env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], set[tuple[Any, ...]]]:
    """Replace ``${VAR}`` (``${VAR:-default}``, ``$$`` for a dollar) and ``key_file = path`` entries.

    Returns the new data and the key paths that received a substituted value, so that they are never
    printed back. A variable that is not set, or a file that cannot be read, is a ConfigError naming
    the file, the line and the key path.
    """
    environ = os.environ if env is None else env
    secret_paths: set[tuple[Any, ...]] = set()
    base = Path(doc.path).parent

    def fail(loc: tuple[Any, ...], message: str) -> ConfigError:
        return ConfigError(message, file=doc.path, line=doc.line_of(loc), field=format_loc(loc))

    def text(value: str, loc: tuple[Any, ...]) -> str:
        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in environ:
                secret_paths.add(loc)
                return environ[name]
            if default is not None:
                return default
            raise fail(loc, f"environment variable {name} is not set")

        return _VAR.sub(repl, value)

    def walk(value: Any, loc: tuple[Any, ...]) -> Any:
        if isinstance(value, str):
            return text(value, loc)
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, v in value.items():
                if isinstance(key, str) and key.endswith("_file") and isinstance(v, str):
                    target = key[: -len("_file")]
                    if target in value:
                        raise fail((*loc, key), f"give either {target} or {key}, not both")
                    path = Path(text(v, (*loc, key)))
                    path = path if path.is_absolute() else base / path
                    try:
                        out[target] = path.read_text(encoding="utf-8").strip()
                    except OSError as exc:
                        raise fail((*loc, key), f"cannot read secret file {path}: {exc.strerror}") from None
                    secret_paths.add((*loc, target))
                    continue
                out[key] = walk(v, (*loc, key))
            return out
        return value

    return walk(doc.data, ()), secret_paths


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``<redacted>``.

    Longest first, so that a secret containing another is replaced whole. Under four characters a "secret"
    (a path of "/", a header value of "1") would only blank out ordinary words.
    """
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact_url(url: str) -> str:
    """redis://:pw@host/0 -> redis://:<redacted>@host/0."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{netloc[-1]}"))


def hidden_part(key: object, value: str, substituted: bool) -> str | None:
    """What of a string setting must never be shown: the one rule for ``alertd config`` and the logs.

    A URL's password; a whole value that came from the environment or a file, except a URL under a key that
    is not secret-named (a broker URL's host is worth seeing; a webhook URL is the secret itself); a whole
    value under a secret-named key.
    """
    password = url_password(value) if "://" in value else None
    if password:
        return password
    secret_key = isinstance(key, str) and bool(SECRET_KEYS.search(key))
    if secret_key or (substituted and "://" not in value):
        return value or None
    return None


def redact(data: Any, secret_paths: set[tuple[Any, ...]], loc: tuple[Any, ...] = ()) -> Any:
    """The data with every secret replaced (see ``hidden_part``)."""
    if isinstance(data, str):
        hidden = hidden_part(loc[-1] if loc else None, data, loc in secret_paths)
        if hidden is None:
            return data
        return redact_url(data) if hidden != data else REDACTED
    if isinstance(data, dict):
        return {k: redact(v, secret_paths, (*loc, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v, secret_paths, (*loc, i)) for i, v in enumerate(data)]
    return data
