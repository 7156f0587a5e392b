"""kombu's Redis transport options in, the keys of a Celery queue (priority lists, unacked hash and index) out; a raw message in, its identity and publish time out (bounded: a huge or forged message is counted, never trusted)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alertd.errors import CollectorError

# kombu.transport.redis.Channel.sep and kombu.transport.redis.PRIORITY_STEPS
DEFAULT_SEP = "\x06\x16"
DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)

OPTION_NAMES = ("priority_steps", "sep", "global_keyprefix", "unacked_key", "unacked_index_key")


@dataclass(frozen=True)
class RedisLayout:
    """Where kombu's Redis transport keeps a queue, given the transport options the Celery app runs with."""

    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS
    sep: str = DEFAULT_SEP
    global_keyprefix: str = ""
    unacked_key: str = "unacked"
    unacked_index_key: str = "unacked_index"

    def queue_keys(self, queue: str) -> list[str]:
        """The lists of one queue, highest priority first (the order in which a worker's BRPOP reads them).

        As kombu's ``Channel._q_for_pri``: step 0 is the bare queue name, any other step is
        ``queue + sep + str(step)``; and as its ``PrefixedStrictRedis``, ``global_keyprefix`` goes in front of
        every key. In kombu's Redis transport a lower number is a higher priority.
        """
        prefix, sep = self.global_keyprefix, self.sep
        return [prefix + (f"{queue}{sep}{step}" if step else queue) for step in self.priority_steps]

    @property
    def unacked(self) -> str:
        """The hash of messages delivered to a worker and not acknowledged yet (delivery tag -> message)."""
        return self.global_keyprefix + self.unacked_key

    @property
    def unacked_index(self) -> str:
        """The sorted set of the same delivery tags, scored by the time they were delivered."""
        return self.global_keyprefix + self.unacked_index_key


def resolve_layout(*sources: Mapping[str, Any] | None) -> RedisLayout:
    """The layout from transport options: for each option, the first source that sets it (not None) wins."""
    found: dict[str, Any] = {}
    for source in sources:
        for name in OPTION_NAMES:
            if source and name not in found and source.get(name) is not None:
                found[name] = source[name]
    kwargs: dict[str, Any] = {}
    if "priority_steps" in found:
        try:
            steps = tuple(sorted({int(step) for step in found["priority_steps"]}))
        except (TypeError, ValueError):
            raise CollectorError(f"priority_steps must be a list of integers, not {found['priority_steps']!r}") from None
        if not steps:
            raise CollectorError("priority_steps is empty: a Celery queue on Redis needs at least one step")
        kwargs["priority_steps"] = steps
    for name in OPTION_NAMES[1:]:
        if name in found:
            kwargs[name] = str(found[name])
    return RedisLayout(**kwargs)


# A message longer than this is not decoded: its publish time goes unread and it is counted as oversized.
MAX_DECODED_BYTES = 1 << 20
# A publish time given as text longer than this is not parsed (an ISO 8601 time is ~32 characters).
_MAX_STAMP_TEXT = 64


@dataclass(frozen=True)
class Peek:
    """What alertd reads of a waiting message: who it is and, when the publisher stamped it, when it was sent.

    ``stamp`` says how the publish time was found: ``ok``, ``missing`` (no header), ``invalid`` (a header that
    is not a time) or ``oversized`` (the message was too long to decode).
    """

    ident: str
    published: float | None
    stamp: str = "ok"


def peek_message(raw: bytes | str, publish_time_header: str | None = None, *, limit: int = MAX_DECODED_BYTES) -> Peek:
    """Identify a message as kombu stores it in a Redis list, and read its publish time if it carries one.

    kombu stores a message as a JSON envelope with the message headers at its top level (``headers``; for
    Celery's protocol 2 these are the task headers). Stock Celery adds no publish time: it is read from the
    header ``publish_time_header`` that ``alertd.instrument.stamp_publish_time`` sets (seconds since the epoch,
    or an ISO 8601 string), else from the AMQP-style ``timestamp`` property. A message longer than ``limit``
    bytes is not decoded at all.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > limit:
        # Identified by its length and ends: hashing megabytes every collection is not worth it.
        digest = hashlib.sha1(data[:4096] + data[-4096:]).hexdigest()
        return Peek(f"size:{len(data)}:{digest}", None, "oversized")
    try:
        message = json.loads(data)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        return Peek("sha1:" + hashlib.sha1(data).hexdigest(), None, "missing")
    headers = _mapping(message.get("headers"))
    properties = _mapping(message.get("properties"))
    ident = str(properties.get("delivery_tag") or headers.get("id") or hashlib.sha1(data).hexdigest())
    for value in (headers.get(publish_time_header) if publish_time_header else None, properties.get("timestamp")):
        if value is not None:
            published = as_timestamp(value)
            return Peek(ident, published, "ok" if published is not None else "invalid")
    return Peek(ident, None, "missing")


@dataclass
class Tails:
    """The tails of one queue's lists, read: the next message out, the publish times found, and what was not."""

    head: Peek | None = None
    published: list[float] = field(default_factory=list)
    missing: int = 0
    invalid: int = 0
    oversized: int = 0

    @property
    def oldest(self) -> float | None:
        return min(self.published, default=None)


def read_tails(tails: list[Any], publish_time_header: str | None, *, limit: int = MAX_DECODED_BYTES) -> Tails:
    """The tails of a queue's lists, highest priority first, in: what ``Tails`` holds out.

    Only the next message is decoded whole. Of the others only the publish time is wanted: a number after the
    header's key is read where it stands, and the message is decoded only when the time is written otherwise
    (a string, or the ``timestamp`` property), since a backlog on every priority list would otherwise cost a JSON
    decode per list and collection.
    """
    out = Tails()
    key = json.dumps(publish_time_header).encode() + b":" if publish_time_header else None
    for raw in tails:
        if raw is None:
            continue
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        if out.head is None:
            peek = out.head = peek_message(data, publish_time_header, limit=limit)
        elif len(data) > limit:
            peek = peek_message(data, publish_time_header, limit=limit)
        else:
            peek = _quick_peek(data, key) or peek_message(data, publish_time_header, limit=limit)
        if peek.published is not None:
            out.published.append(peek.published)
        elif peek.stamp == "missing":
            out.missing += 1
        elif peek.stamp == "invalid":
            out.invalid += 1
        else:
            out.oversized += 1
    return out


# A JSON number of sane length, then the end of its value. Anything else (a string, an object, a second key of the
# same name) is left to the full decode.
_NUMBER = re.compile(rb"\s*(-?[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][-+]?[0-9]{1,4})?)\s*[,}]")


def _quick_peek(data: bytes, key: bytes | None) -> Peek | None:
    """A message's publish time without decoding it: the number after the header's key, if that is how it is
    written; "missing" when neither the header nor a ``timestamp`` property can be in it; else None (decode it).

    In kombu's envelope the key can only appear unescaped as a key: inside the (string) body a quote is escaped.
    """
    at = data.find(key) if key is not None else -1
    if key is None or at < 0:
        return None if b'"timestamp"' in data else Peek("", None, "missing")
    if data.find(key, at + 1) >= 0:
        return None
    found = _NUMBER.match(data, at + len(key))
    if found is None:
        return None
    published = as_timestamp(json.loads(found.group(1)))
    return Peek("", published, "ok" if published is not None else "invalid")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_timestamp(value: Any) -> float | None:
    """Seconds since the epoch from a number or an ISO 8601 string (naive means UTC); None if it is neither.

    Zero, negative, infinite and NaN numbers, and overlong strings, are not times.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            return None
        return number if 0 < number < math.inf else None
    if isinstance(value, str) and len(value) <= _MAX_STAMP_TEXT:
        try:
            return as_timestamp(float(value))
        except ValueError:
            pass
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    return None
