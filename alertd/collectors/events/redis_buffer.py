"""At start: is the Redis broker's pub/sub output buffer big enough for a busy event stream?

Redis drops a subscriber whose output buffer passes the hard limit, or stays above the soft limit for longer
than its seconds; Pub/Sub is at-most-once, so everything sent until alertd subscribes again is lost. The default,
``32mb 8mb 60``, is a second or two of a busy cluster's events if alertd stalls (docs/celery.md).
"""

from __future__ import annotations

import logging

import redis

from alertd.config.secrets import redact_url

log = logging.getLogger(__name__)

DEFAULT = (32 * 2**20, 8 * 2**20, 60)
RECOMMENDED = "client-output-buffer-limit pubsub 256mb 64mb 60"
_SCHEMES = ("redis://", "rediss://", "unix://")


def pubsub_limit(config: str) -> tuple[int, int, int] | None:
    """(hard bytes, soft bytes, soft seconds) of the ``pubsub`` class in CONFIG GET's value, or None."""
    words = config.split()
    for i, word in enumerate(words[:-3]):
        if word == "pubsub":
            try:
                hard, soft, seconds = (int(w) for w in words[i + 1:i + 4])
            except ValueError:
                return None
            return hard, soft, seconds
    return None


def too_small(limit: tuple[int, int, int]) -> bool:
    """Whether a limit drops a subscriber as soon as the default would, or sooner (0 means no limit)."""
    hard, soft, seconds = limit
    return (hard != 0 and hard <= DEFAULT[0]) or (soft != 0 and soft <= DEFAULT[1] and seconds <= DEFAULT[2])


def check(broker_url: str | None) -> tuple[int, int, int] | None:
    """Reads the limit when alertd may (CONFIG GET), warns when it is the default or lower; never raises."""
    url = (broker_url or "").split(";")[0].strip()
    if not url.startswith(_SCHEMES):
        return None
    try:
        client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0,
                                       decode_responses=True)
        try:
            reply = client.config_get("client-output-buffer-limit")
        finally:
            client.close()
    except redis.ResponseError as exc:  # NOPERM from an ACL, or CONFIG renamed away
        log.info("cannot read client-output-buffer-limit on %s (%s): check that it is at least '%s'",
                 redact_url(url), exc, RECOMMENDED)
        return None
    except Exception as exc:  # the broker is down: the event stream will say so
        log.debug("cannot read client-output-buffer-limit on %s: %s", redact_url(url), exc)
        return None
    limit = pubsub_limit(str(reply.get("client-output-buffer-limit", "")))
    if limit is not None and too_small(limit):
        log.warning("the Redis broker %s drops a pub/sub subscriber at client-output-buffer-limit pubsub %d %d %d: "
                    "a busy event stream loses events whenever alertd falls behind; set '%s'",
                    redact_url(url), *limit, RECOMMENDED)
    return limit
