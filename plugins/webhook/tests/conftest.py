"""Fixtures for the webhook notifier's tests: the loopback webhook receiver, and the notifier as an install finds it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from alertd.notifiers.base import Notifier
from alertd.plugins import make_plugin_manager
from tests.peers.webhook import WebhookPeer


@pytest.fixture(scope="session")
def webhook_class() -> type[Notifier]:
    """The notifier registered for ``type = "webhook"`` through the ``alertd.notifiers`` entry point."""
    found = {cls.type_name: cls for classes in make_plugin_manager().hook.register_notifiers() for cls in classes}
    return found["webhook"]


@pytest.fixture
def webhook_peer() -> Iterator[WebhookPeer]:
    with WebhookPeer() as peer:
        yield peer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
