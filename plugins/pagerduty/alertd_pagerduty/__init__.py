"""alertd-pagerduty: alertd notifications as PagerDuty incidents, through the Events API v2."""

from __future__ import annotations

from alertd_pagerduty.plugin import PagerDutyNotifier, PagerDutySettings

__all__ = ["PagerDutyNotifier", "PagerDutySettings"]
