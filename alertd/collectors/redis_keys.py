"""kombu's Redis transport options in, the keys of a Celery queue (priority lists, unacked hash and index) out; a raw message in, its identity and publish time out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Peek:
    """What alertd reads of a waiting message: who it is and, when the publisher stamped it, when it was sent."""

    ident: str
    published: float | None


def peek_message(raw: bytes | str, publish_time_header: str | None = None) -> Peek:
    """Identify a message as kombu stores it in a Redis list, and read its publish time if it carries one.

    Celery's task messages (protocol 2) carry no publish time: their headers hold ``eta`` and ``expires``, and
    kombu adds no timestamp. The time is read from the header ``publish_time_header`` when a publisher sets it
    (seconds since the epoch or an ISO 8601 string), else from the AMQP-style ``timestamp`` property.
    """
    try:
        message = json.loads(raw)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        data = raw.encode() if isinstance(raw, str) else raw
        return Peek("sha1:" + hashlib.sha1(data).hexdigest(), None)
    headers = _mapping(message.get("headers"))
    properties = _mapping(message.get("properties"))
    ident = str(properties.get("delivery_tag") or headers.get("id") or hashlib.sha1(json.dumps(message).encode()).hexdigest())
    published = None
    if publish_time_header:
        published = as_timestamp(headers.get(publish_time_header))
    if published is None:
        published = as_timestamp(properties.get("timestamp"))
    return Peek(ident, published)


def read_tails(tails: list[Any], publish_time_header: str | None) -> tuple[Peek | None, float | None]:
    """The tails of a queue's lists, highest priority first, in: the next message out and the oldest publish time.

    Only the next message is decoded whole; another is decoded only if its text can hold a publish time, since a
    backlog on every priority list would otherwise cost a JSON decode per list and collection.
    """
    head: Peek | None = None
    oldest: float | None = None
    needles = [b'"timestamp"'] + ([json.dumps(publish_time_header).encode()] if publish_time_header else [])
    for raw in tails:
        if raw is None:
            continue
        if head is None:
            head = peek_message(raw, publish_time_header)
            published = head.published
        else:
            data = raw if isinstance(raw, bytes) else str(raw).encode()
            published = peek_message(data, publish_time_header).published if any(n in data for n in needles) else None
        if published is not None and (oldest is None or published < oldest):
            oldest = published
    return head, oldest


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_timestamp(value: Any) -> float | None:
    """Seconds since the epoch from a number or an ISO 8601 string (naive means UTC); None if it is neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if isinstance(value, str):
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
