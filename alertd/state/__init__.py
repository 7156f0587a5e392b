"""The state store: active alerts, their history and the daemon's own values, kept across restarts."""

from __future__ import annotations

from alertd.state.base import AlertRecord, StateStore, Transition, open_store

__all__ = ["AlertRecord", "StateStore", "Transition", "open_store"]
