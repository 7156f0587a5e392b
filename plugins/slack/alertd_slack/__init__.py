"""alertd-slack: alertd notifications as Slack messages, through an incoming webhook."""

from __future__ import annotations

from alertd_slack.plugin import SlackNotifier, SlackSettings

__all__ = ["SlackNotifier", "SlackSettings"]
