"""Fixtures for the PagerDuty notifier's tests: the loopback PagerDuty peer, and the notifier as an install finds it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from alertd.notifiers.base import Notifier
from alertd.plugins import make_plugin_manager
from tests.peers.pagerduty import PagerDutyPeer


@pytest.fixture(scope="session")
def pagerduty_class() -> type[Notifier]:
    """The notifier registered for ``type = "pagerduty"`` through the ``alertd.notifiers`` entry point."""
    found = {cls.type_name: cls for classes in make_plugin_manager().hook.register_notifiers() for cls in classes}
    return found["pagerduty"]


@pytest.fixture
def pagerduty_peer() -> Iterator[PagerDutyPeer]:
    with PagerDutyPeer() as peer:
        yield peer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
