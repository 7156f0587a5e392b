"""Which settings are secrets; raw configuration data in, data with ``${ENV}`` and ``<key>_file`` substituted out;
and what of it must never be shown.

The settings models declare the secrets: a ``SecretStr`` field (or a table or list of them), or a field marked
``json_schema_extra=SECRET`` (a URL whose path is a token). In a free-form table that no model describes
(``celery.broker_transport_options``), a key named like a secret (``password``, ``token``...) is one. Only a
secret takes the ``<key>_file`` form, so an option that names a file (``ca_file``, ``tls_cert``) is never read.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from alertd.errors import ConfigError
from alertd.sources import Document, format_loc

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}|\$\$")
# Secret-named keys of free-form tables, where no model says what a key holds.
SECRET_NAMES = re.compile(r"(password|passwd|secret|token|api_key|routing_key|signing_key|webhook_url)$", re.I)
# ``Field(json_schema_extra=SECRET)``: a plain ``str`` setting that is a secret all the same.
SECRET: dict[str, Any] = {"secret": True}
REDACTED = "<redacted>"
FILE_SUFFIX = "_file"

Loc = tuple[Any, ...]
# For a key path: True when the setting there is a secret, False when it is a setting that is not, None when
# there is no such setting.
Secrecy = Callable[[Loc], bool | None]


def model_secrecy(model: type[BaseModel], path: Sequence[Any]) -> bool | None:
    """Whether the setting at ``path`` under ``model`` is a secret (see ``Secrecy``)."""
    annotation: Any = model
    marked = False
    for key in path:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found = _field(annotation, key)
            if found is None:
                return None
            marked = isinstance(found.json_schema_extra, dict) and found.json_schema_extra.get("secret") is True
            annotation = found.annotation
        elif isinstance(origin, type) and issubclass(origin, Mapping):
            args = get_args(annotation)
            annotation = args[1] if len(args) == 2 else Any
            marked = False
        elif isinstance(origin, type) and issubclass(origin, Sequence) and isinstance(key, int):
            args = get_args(annotation)
            annotation = args[0] if args else Any
            marked = False
        elif annotation is Any or annotation is dict:
            break
        else:
            return None
    if _unwrap(annotation) in (Any, dict):  # a free-form table: its keys' names tell
        names = [k for k in path if isinstance(k, str)]
        return bool(names) and bool(SECRET_NAMES.search(names[-1]))
    return marked or _holds_secret(annotation)


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> X; ``Annotated[X, ...]`` -> X."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if any(_holds_secret(a) for a in args):
            return SecretStr
        return args[0] if len(args) == 1 else annotation
    return annotation


def _holds_secret(annotation: Any) -> bool:
    return _unwrap(annotation) is SecretStr


def _field(model: type[BaseModel], key: Any) -> FieldInfo | None:
    for name, found in model.model_fields.items():
        if key in (name, found.alias):
            return found
    return None


def substitute(doc: Document, secrecy: Secrecy, env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], set[str]]:
    """Replace ``${VAR}`` (``${VAR:-default}``, ``$$`` for a dollar) and, for a secret, ``<key>_file = path``.

    Returns the new data and the values that came from a secret reference (a ``${VAR}`` in a secret, a
    ``<key>_file``), so that they are never shown wherever they appear. An unset variable, a file that
    cannot be read, or a ``<key>_file`` whose key is not a secret is a ConfigError naming the file, the line
    and the key path.
    """
    environ = os.environ if env is None else env
    references: set[str] = set()
    base = Path(doc.path).parent

    def fail(loc: Loc, message: str) -> ConfigError:
        return ConfigError(message, file=doc.path, line=doc.line_of(loc), field=format_loc(loc))

    def text(value: str, loc: Loc, secret: bool) -> str:
        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in environ:
                if secret:
                    references.add(environ[name])
                return environ[name]
            if default is not None:
                return default
            raise fail(loc, f"environment variable {name} is not set")

        return _VAR.sub(repl, value)

    def read(value: Any, loc: Loc, target: str) -> str:
        if not isinstance(value, str):
            raise fail(loc, f"must be the path of a file that holds {target}")
        path = Path(text(value, loc, secret=False))
        path = path if path.is_absolute() else base / path
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise fail(loc, f"cannot read secret file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise fail(loc, f"the secret file {path} is not UTF-8 text") from None
        return content.removesuffix("\n").removesuffix("\r")

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, str):
            return text(value, loc, secret=secrecy(loc) is True)
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, v in value.items():
                target = key.removesuffix(FILE_SUFFIX) if isinstance(key, str) else ""
                if not target or target == key:
                    out[key] = walk(v, (*loc, key))
                elif secrecy((*loc, target)):
                    if target in value:
                        raise fail((*loc, key), f"give either {target} or {key}, not both")
                    out[target] = read(v, (*loc, key), target)
                    references.add(out[target])
                elif secrecy((*loc, key)) is None:
                    raise fail((*loc, key), f"{target} is not a secret, so it cannot be read from a file "
                                            f"(only secrets take <key>{FILE_SUFFIX})")
                else:  # an option that names a file: ca_file, tls_cert_file
                    out[key] = walk(v, (*loc, key))
            return out
        return value

    return walk(doc.data, ()), references


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


def hidden_parts(value: str, *, secret: bool) -> list[str]:
    """What of a string setting must never reach a log line: a secret whole (and a secret URL's path, query
    and password, which a library may print apart); elsewhere, a URL's password."""
    parts: list[str] = [value] if secret else []
    if "://" in value:
        try:
            url = urlsplit(value)
        except ValueError:
            return parts
        parts += [url.password or ""] + ([url.path, url.query] if secret else [])
    return [p for p in parts if p]


def shown(value: str, *, secret: bool, references: Iterable[str]) -> str:
    """How ``alertd config`` shows a string setting.

    A secret is ``<redacted>``, except a secret URL, which keeps its scheme and host (https://hooks.slack.com/
    <redacted>). Elsewhere every value that came from a secret reference is replaced wherever it appears, a
    URL path included, and so is a URL's password.
    """
    if secret:
        return _public_url(value) if "://" in value else REDACTED
    return redact_url(scrub(value, references))


def _public_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return REDACTED
    if not parts.scheme or not parts.hostname:
        return REDACTED
    return f"{parts.scheme}://{parts.hostname}{port}/{REDACTED}"


def redact(data: Any, secrecy: Secrecy, references: Iterable[str], loc: Loc = ()) -> Any:
    """The data with every secret replaced (see ``shown``)."""
    if isinstance(data, str):
        return shown(data, secret=secrecy(loc) is True, references=references)
    if isinstance(data, dict):
        return {k: redact(v, secrecy, references, (*loc, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v, secrecy, references, (*loc, i)) for i, v in enumerate(data)]
    return data
