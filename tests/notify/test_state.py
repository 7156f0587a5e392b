"""The notification pipeline's part of the state store contract, run against every implementation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alertd.errors import StateStoreError
from alertd.state import StateStore, open_store
from alertd.state.base import (
    OUTBOX_DELIVERED,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SUPERSEDED,
    Acknowledgement,
    EscalationState,
    NotificationLogEntry,
    OutboxRow,
    Silence,
)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    s = open_store(str(tmp_path / "state.db") if request.param == "sqlite" else "memory://")
    try:
        yield s
    finally:
        s.close()


def entry(group: str = "g", receiver: str = "r", sent_at: float = 10.0, **kw: object) -> NotificationLogEntry:
    fields: dict[str, object] = {"firing": frozenset({"a", "b"}), "resolved": frozenset({"c"}),
                                 "reason": "first notification", "notification_id": "n1", "failed": False}
    fields.update(kw)
    return NotificationLogEntry(group, receiver, sent_at, **fields)  # type: ignore[arg-type]


def row(id: str = "n1", receiver: str = "r", group: str = "g", created: float = 10.0, **kw: object) -> OutboxRow:
    fields: dict[str, object] = {"payload": '{"x": "é"}', "deadline": created + 3600, "next_attempt_at": created}
    fields.update(kw)
    return OutboxRow(id, receiver, group, created_at=created, **fields)  # type: ignore[arg-type]


def test_empty(store: StateStore) -> None:
    assert (store.nflog_entries(), store.silences(), store.acks(), store.escalations(), store.outbox_pending()) == (
        [], [], [], [], [])
    assert store.outbox_get("x") is None


def test_nflog_put_replaces_and_prunes(store: StateStore) -> None:
    store.nflog_put([entry(), entry(receiver="s", sent_at=5.0)])
    store.nflog_put([entry(firing=frozenset(), reason="alerts resolved", failed=True)])
    assert store.nflog_entries() == [
        entry(firing=frozenset(), reason="alerts resolved", failed=True), entry(receiver="s", sent_at=5.0)]
    assert store.nflog_prune(before=6.0) == 1
    assert [e.receiver for e in store.nflog_entries()] == ["r"]


def test_silences(store: StateStore) -> None:
    s = Silence("s1", ('queue=~"crit.*"', 'team!="x"'), 10.0, 20.0, "alice", "maintenance", 5.0)
    store.silence_put(s)
    assert store.silences() == [s]
    assert [s.status(t) for t in (9.0, 10.0, 19.9, 20.0)] == ["pending", "active", "active", "expired"]
    early = Silence("s1", s.matchers, 10.0, 12.0, "alice", "maintenance", 5.0)
    store.silence_put(early)
    assert store.silences() == [early]
    assert store.silence_prune(before=12.5) == 1
    assert store.silences() == []


@pytest.mark.parametrize(
    "silence",
    [
        Silence("s", (), 1.0, 2.0, "a", "", 0.0),
        Silence("s", ('a="b"',), 3.0, 2.0, "a", "", 0.0),
        Silence("s", 'a="b"', 1.0, 2.0, "a", "", 0.0),  # type: ignore[arg-type]
    ],
    ids=["no-matchers", "ends-before-start", "one-string"],
)
def test_bad_silences_are_refused(store: StateStore, silence: Silence) -> None:
    with pytest.raises(StateStoreError):
        store.silence_put(silence)
    assert store.silences() == []


def test_acks(store: StateStore) -> None:
    a = Acknowledgement("fp1", "alice", "on it", 10.0, 70.0)
    store.ack_put(a)
    store.ack_put(Acknowledgement("fp0", "bob", "", 11.0))
    assert store.acks() == [Acknowledgement("fp0", "bob", "", 11.0), a]
    assert (a.active(9.0), a.active(10.0), a.active(70.0)) == (False, True, False)
    assert store.ack_delete("fp1") is True
    assert store.ack_delete("fp1") is False
    assert [x.fingerprint for x in store.acks()] == ["fp0"]


def test_escalations(store: StateStore) -> None:
    store.escalation_put([EscalationState("g1", "p", 1, 100.0, 5.0), EscalationState("g2", "p", 0, None, 5.0)])
    store.escalation_put([EscalationState("g1", "p", 2, None, 6.0)], deletes=["g2"])
    assert store.escalations() == [EscalationState("g1", "p", 2, None, 6.0)]
    with pytest.raises(StateStoreError):
        store.escalation_put([], deletes="g1")


def test_outbox_add_supersedes_and_writes_the_log_in_one_go(store: StateStore) -> None:
    assert store.outbox_add(row("n1"), entry(notification_id="n1")) == []
    assert store.outbox_add(row("other", receiver="s"), None) == []
    assert store.outbox_add(row("n2", created=11.0), entry(notification_id="n2", sent_at=11.0)) == ["n1"]
    assert [r.id for r in store.outbox_pending()] == ["other", "n2"]
    old = store.outbox_get("n1")
    assert old is not None and old.status == OUTBOX_SUPERSEDED and old.next_attempt_at is None
    assert [e.notification_id for e in store.nflog_entries()] == ["n2"]


def test_outbox_update_and_pending_order(store: StateStore) -> None:
    store.outbox_add(row("a", group="g1", next_attempt_at=50.0))
    store.outbox_add(row("b", group="g2", next_attempt_at=20.0))
    store.outbox_update(row("a", group="g1", attempts=3, next_attempt_at=15.0, last_error="503"))
    assert [(r.id, r.attempts, r.last_error) for r in store.outbox_pending()] == [("a", 3, "503"), ("b", 0, "")]
    store.outbox_update(row("b", group="g2", attempts=1, next_attempt_at=None, delivered_at=21.0,
                            status=OUTBOX_DELIVERED))
    assert [r.id for r in store.outbox_pending()] == ["a"]
    got = store.outbox_get("b")
    assert got is not None and (got.status, got.delivered_at, got.payload) == (OUTBOX_DELIVERED, 21.0, '{"x": "é"}')


def test_outbox_prune_keeps_pending_rows(store: StateStore) -> None:
    store.outbox_add(row("a", group="g1"))
    store.outbox_add(row("b", group="g2"))
    store.outbox_update(row("b", group="g2", status=OUTBOX_FAILED, next_attempt_at=None))
    assert store.outbox_prune(before=100.0) == 1
    assert store.outbox_get("a") is not None and store.outbox_get("b") is None


def test_outbox_refuses_a_duplicate_id_and_an_unknown_status(store: StateStore) -> None:
    store.outbox_add(row("a"))
    with pytest.raises(StateStoreError):
        store.outbox_add(row("a", group="other"))
    with pytest.raises(StateStoreError):
        store.outbox_update(row("a", status="lost"))
    assert store.outbox_get("a").status == OUTBOX_PENDING  # type: ignore[union-attr]


def test_a_closed_store_refuses_the_new_calls_too(store: StateStore) -> None:
    store.close()
    for call in (store.nflog_entries, store.silences, store.acks, store.escalations, store.outbox_pending):
        with pytest.raises(StateStoreError, match="closed"):
            call()
