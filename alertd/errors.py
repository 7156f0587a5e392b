"""alertd's exception tree: every error alertd raises on purpose is one of these.

    AlertdError
    ├── ConfigError            a configuration or rule file is wrong (carries file, line, rule, field)
    │   └── ConfigErrors       several ConfigError found in one pass (``alertd check`` prints them all)
    ├── CollectorError         a collector could not read what it was asked to read
    ├── StateStoreError        the state store could not be read or written
    └── NotifyError            a notifier could not deliver
        ├── RetryableError     worth another attempt (429, 5xx, timeouts); may carry ``retry_after``
        └── PermanentError     not worth another attempt (400, 403, 404, 410, a bad setting)

Errors of redis, kombu, sqlite and httpx are translated to these at the one place where they enter.
"""

from __future__ import annotations

from collections.abc import Iterable


class AlertdError(Exception):
    """Base class of every error alertd raises on purpose."""


class ConfigError(AlertdError):
    """A configuration or rule file is wrong.

    ``str()`` gives the one line that ``alertd check`` prints: ``file:line: rule: message``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        rule: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.rule = rule
        self.field = field

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        parts = [where]
        if self.rule:
            parts.append(self.rule)
        message = f"{self.field}: {self.message}" if self.field else self.message
        parts.append(message)
        return ": ".join(parts)


class ConfigErrors(ConfigError):
    """Several configuration errors found in one pass."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else ConfigError("no errors")
        super().__init__(first.message, file=first.file, line=first.line, rule=first.rule, field=first.field)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class CollectorError(AlertdError):
    """A collector could not read what it was asked to read."""


class StateStoreError(AlertdError):
    """The state store could not be read or written."""


class NotifyError(AlertdError):
    """A notifier could not deliver a notification."""


class RetryableError(NotifyError):
    """Delivery failed but may succeed later; ``retry_after`` (seconds) is honoured when set."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(NotifyError):
    """Delivery failed and will fail again: do not retry."""
