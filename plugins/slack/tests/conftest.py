"""Fixtures for the Slack notifier's tests: the loopback Slack peer, and the notifier as an install finds it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from alertd.notifiers.base import Notifier
from alertd.plugins import make_plugin_manager
from tests.peers.slack import SlackPeer


@pytest.fixture(scope="session")
def slack_class() -> type[Notifier]:
    """The notifier registered for ``type = "slack"`` through the ``alertd.notifiers`` entry point."""
    found = {cls.type_name: cls for classes in make_plugin_manager().hook.register_notifiers() for cls in classes}
    return found["slack"]


@pytest.fixture
def slack_peer() -> Iterator[SlackPeer]:
    with SlackPeer() as peer:
        yield peer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
