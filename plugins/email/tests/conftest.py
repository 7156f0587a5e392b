"""Fixtures for the email notifier's tests: real SMTP servers on loopback, and the notifier as an install finds it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from alertd.notifiers.base import Notifier
from alertd.plugins import make_plugin_manager
from tests.peers.smtp import SmtpPeer


@pytest.fixture(scope="session")
def email_class() -> type[Notifier]:
    """The notifier registered for ``type = "email"`` through the ``alertd.notifiers`` entry point."""
    found = {cls.type_name: cls for classes in make_plugin_manager().hook.register_notifiers() for cls in classes}
    return found["email"]


@pytest.fixture
def smtp_starttls() -> Iterator[SmtpPeer]:
    """Submission as on port 587: STARTTLS before anything, then AUTH."""
    with SmtpPeer(tls="starttls") as peer:
        yield peer


@pytest.fixture
def smtp_implicit() -> Iterator[SmtpPeer]:
    """Submission as on port 465: TLS from the first byte, then AUTH."""
    with SmtpPeer(tls="implicit") as peer:
        yield peer


@pytest.fixture
def smtp_plain() -> Iterator[SmtpPeer]:
    """A relay inside a trusted network: no TLS, no AUTH."""
    with SmtpPeer(tls="none", require_auth=False) as peer:
        yield peer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
