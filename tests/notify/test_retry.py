"""Delivery: retries with backoff and Retry-After, permanent errors and fallbacks, deadlines, rate limits."""

from __future__ import annotations

import random
from typing import Any, ClassVar

import pytest

from alertd.errors import PermanentError, RetryableError
from alertd.notifiers.base import RateBudget
from alertd.notify.dedup import FIRST, PREVIOUS_FAILED
from alertd.notify.ratelimit import RateLimiter
from alertd.notify.retry import DELIVERY_FAILED, RECEIVER_DISABLED, backoff, reason_label
from alertd.state.base import OUTBOX_DELIVERED, OUTBOX_FAILED
from alertd.testing import RecordingNotifier
from tests.notify.helpers import START, harness

ROUTE: dict[str, Any] = {"receiver": "pager", "group_by": ["alertname"], "group_wait": "0s",
                         "group_interval": "5m", "repeat_interval": "4h"}


@pytest.mark.parametrize(
    ("attempts", "retry_after", "low", "high"),
    [(1, None, 0.0, 1.0), (3, None, 0.0, 4.0), (20, None, 0.0, 300.0), (1, 30.0, 30.0, 30.0), (9, 2.0, 2.0, 256.0)],
    ids=["first", "third", "capped", "retry-after-wins", "retry-after-is-a-floor"],
)
def test_backoff_bounds(attempts: int, retry_after: float | None, low: float, high: float) -> None:
    rng = random.Random(1)
    for _ in range(200):
        assert low <= backoff(attempts, 1.0, 300.0, rng, retry_after) <= high


def test_rate_limiter_on_a_clock() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert [limiter.take(0.0), limiter.take(0.0)] == [0.0, 0.0]
    assert limiter.take(0.0) == pytest.approx(1.0)
    assert limiter.take(0.5) == pytest.approx(0.5)
    assert limiter.take(1.0) == 0.0


@pytest.mark.parametrize(
    ("reason", "label"),
    [("first notification", "first"), ("escalated to level 2: unacknowledged for 1h", "escalation")],
    ids=["plain", "escalated"],
)
def test_reason_label(reason: str, label: str) -> None:
    assert reason_label(reason) == label


async def test_retryable_once_then_success_is_delivered_exactly_once() -> None:
    pager = RecordingNotifier("pager").fail(1, RetryableError("503"))
    h = harness({"route": ROUTE}, notifiers={"pager": pager})
    h.fire("PaymentTaskFailed")
    await h.tick()
    assert len(pager.attempts) == 1 and pager.sent == []
    await h.at(2)  # the first retry waits up to retry_base (1s)
    assert len(pager.sent) == 1 and len(pager.attempts) == 2
    await h.at(3600)
    assert len(pager.sent) == 1
    assert pager.attempts[0].id == pager.attempts[1].id, "a retry is the same notification (idempotency key)"
    [row] = [h.store.outbox_get(pager.sent[0].id)]
    assert row is not None and row.status == OUTBOX_DELIVERED and row.attempts == 2
    m = h.pipeline.metrics
    assert m.value("alertd_notifications_sent_total", receiver="pager", reason=FIRST.kind) == 1
    assert m.value("alertd_notifications_retried_total", receiver="pager", reason=FIRST.kind) == 1
    assert m.value("alertd_outbox_size") == 0


async def test_retry_after_is_honoured() -> None:
    pager = RecordingNotifier("pager").fail(1, RetryableError("429", retry_after=120))
    h = harness({"route": ROUTE}, notifiers={"pager": pager})
    h.fire("X")
    await h.tick()
    await h.at(119)
    assert pager.sent == []
    await h.at(121)
    assert pager.sent_at == [START + 120]


async def test_a_permanent_error_goes_to_the_fallback_receiver_rendered_for_it() -> None:
    class Mail(RecordingNotifier):
        templates: ClassVar[dict[str, str]] = {"subject": "{{ reason }}"}

    pager = RecordingNotifier("pager").fail(1, PermanentError("400 bad routing key"))
    h = harness({"route": {**ROUTE, "fallback": "mail"}}, notifiers={"pager": pager, "mail": Mail("mail")})
    h.fire("X")
    await h.tick()
    assert pager.sent == [] and len(pager.attempts) == 1, "a permanent error is not retried"
    [n] = h["mail"].sent
    assert n.reason == "fallback for pager: first notification"
    assert n.rendered == {"subject": "fallback for pager: first notification"}
    assert h.store.outbox_get(pager.attempts[0].id).status == OUTBOX_FAILED  # type: ignore[union-attr]
    assert h.pipeline.metrics.value("alertd_notifications_failed_total", receiver="pager", reason=FIRST.kind) == 1


async def test_a_receivers_own_fallback_applies_too() -> None:
    pager = RecordingNotifier("pager").fail(1, PermanentError("403"))
    h = harness({"route": ROUTE, "receivers": {"pager": {"type": "x", "fallback": "mail"}, "mail": {"type": "x"}}},
                notifiers={"pager": pager})
    h.fire("X")
    await h.tick()
    assert len(h["mail"].sent) == 1


async def test_without_fallback_a_failure_is_recorded_and_the_next_flush_tries_again() -> None:
    pager = RecordingNotifier("pager").fail(1, PermanentError("400"))
    h = harness({"route": ROUTE}, notifiers={"pager": pager})
    h.fire("X")
    await h.tick()
    assert [a.labels["receiver"] for a in h.pipeline.internal.firing()] == ["pager"]
    assert h.pipeline.internal.firing()[0].labels["alertname"] == DELIVERY_FAILED
    await h.at(300)
    assert pager.reasons == [PREVIOUS_FAILED]
    assert h.pipeline.internal.firing() == []


async def test_the_deadline_bounds_the_attempts() -> None:
    pager = RecordingNotifier("pager").fail_forever(RetryableError("timeout"))
    h = harness({"route": {**ROUTE, "group_interval": "24h", "repeat_interval": "48h"},
                 "notify": {"deadline": "10m", "retry_max": "1m"}}, notifiers={"pager": pager})
    h.fire("X")
    await h.at(3600)
    rows = h.store.outbox_pending()
    assert rows == []
    first = pager.attempts[0]
    row = h.store.outbox_get(first.id)
    assert row is not None and row.status == OUTBOX_FAILED and "deadline" in row.last_error
    assert all(n.created_at == first.created_at for n in pager.attempts)
    assert 5 < len(pager.attempts) < 40


async def test_an_endpoint_that_is_gone_disables_its_receiver() -> None:
    class Gone(PermanentError):
        disable = True

    pager = RecordingNotifier("pager").fail(1, Gone("410 Gone"))
    h = harness({"route": ROUTE}, notifiers={"pager": pager})
    h.fire("X")
    await h.tick()
    h.fire("Y")
    await h.tick()
    assert len(pager.attempts) == 1, "no attempt after the endpoint said it is gone"
    assert RECEIVER_DISABLED in {a.labels["alertname"] for a in h.pipeline.internal.firing()}


async def test_rate_limit_per_receiver() -> None:
    h = harness({"route": {**ROUTE, "group_by": ["..."]}, "receivers": {"pager": {"type": "x", "rate_limit": 1.0}}})
    for i in range(5):
        h.fire("X", i=str(i))
    await h.tick()
    assert len(h["pager"].sent) == 1
    await h.at(10)
    assert [t - START for t in h["pager"].sent_at] == [0, 1, 2, 3, 4]
    assert all(n.created_at == START for n in h["pager"].sent)


async def test_a_newer_notification_replaces_one_not_yet_delivered() -> None:
    pager = RecordingNotifier("pager").fail(2, RetryableError("503", retry_after=600))
    h = harness({"route": {**ROUTE, "group_interval": "1m"}}, notifiers={"pager": pager})
    h.fire("X", i="1")
    await h.tick()
    h.fire("X", i="2")
    await h.at(60)  # new alerts: a second notification supersedes the first, which waits for its retry
    await h.at(1300)
    assert len(pager.sent) == 1
    assert sorted(a.labels["i"] for a in pager.sent[0].alerts) == ["1", "2"]


async def test_a_retry_after_pauses_every_send_to_the_destination_then_one_goes_first() -> None:
    pager = RecordingNotifier("pager").fail(1, RetryableError("429", retry_after=60))
    h = harness({"route": {**ROUTE, "group_by": ["..."]}}, notifiers={"pager": pager})
    h.fire("X", i="1")
    await h.tick()
    assert len(pager.attempts) == 1 and pager.sent == []
    await h.at(10)
    h.fire("X", i="2")
    h.fire("X", i="3")
    await h.at(59)
    assert len(pager.attempts) == 1, "other notifications to the destination wait for its Retry-After too"
    await h.at(61)
    assert [t - START for t in pager.sent_at] == [60, 60, 60]
    assert sorted(n.alerts[0].labels["i"] for n in pager.sent) == ["1", "2", "3"]


def test_after_a_pause_one_send_goes_alone_until_it_comes_back() -> None:
    limiter = RateLimiter(None)
    limiter.pause(10.0)
    assert limiter.take(5.0) == pytest.approx(5.0)
    pauses = limiter.pauses
    assert limiter.take(10.0) == 0.0
    assert limiter.take(10.0) > 0, "the second waits for the first's answer"
    limiter.pause(20.0)  # the first was refused again
    limiter.returned(pauses)
    assert limiter.take(15.0) == pytest.approx(5.0)
    pauses = limiter.pauses
    assert limiter.take(20.0) == 0.0
    limiter.returned(pauses)  # delivered: the pause is over
    assert [limiter.take(20.0), limiter.take(20.0)] == [0.0, 0.0]


class Shared(RecordingNotifier):
    """A service that limits per account: receivers with one account share one budget."""

    rate_budget = RateBudget(rate=1.0, burst=1)

    def destination(self) -> str:
        return "shared:account"


async def test_receivers_with_one_destination_share_its_budget() -> None:
    a, b = Shared("a"), Shared("b")
    route = {**ROUTE, "receiver": "a", "routes": [{"matchers": ['team="b"'], "receiver": "b"}]}
    h = harness({"route": route}, notifiers={"a": a, "b": b})
    h.fire("X")
    h.fire("Y", team="b")
    await h.at(10)
    assert sorted(t - START for t in [*a.sent_at, *b.sent_at]) == [0, 1]


async def test_a_receivers_rate_limit_replaces_the_notifiers_budget() -> None:
    h = harness({"route": {**ROUTE, "group_by": ["..."]},
                 "receivers": {"pager": {"type": "x", "rate_limit": 0.5, "rate_burst": 2}}},
                notifiers={"pager": Shared("pager")})
    for i in range(4):
        h.fire("X", i=str(i))
    await h.at(10)
    assert [t - START for t in h["pager"].sent_at] == [0, 0, 2, 4]
