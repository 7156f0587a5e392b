"""alertd-webhook: alertd notifications as Alertmanager-compatible webhook posts, optionally signed."""

from __future__ import annotations

from alertd_webhook.plugin import EndpointGone, WebhookNotifier, WebhookSettings

__all__ = ["EndpointGone", "WebhookNotifier", "WebhookSettings"]
