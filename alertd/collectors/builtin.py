"""The built-in collectors, registered through the plugin manager like any installed plugin."""

from __future__ import annotations

from alertd.collectors.base import Collector
from alertd.collectors.broker import BrokerCollector
from alertd.collectors.prometheus import PrometheusCollector
from alertd.collectors.pushgateway import PushgatewayCollector
from alertd.collectors.queues import QueueCollector
from alertd.collectors.scrape import ScrapeCollector
from alertd.collectors.workers import InspectCollector, WorkersCollector
from alertd.hookspecs import hookimpl


@hookimpl
def register_collectors() -> list[type[Collector]]:
    return [WorkersCollector, InspectCollector, BrokerCollector, QueueCollector, PushgatewayCollector,
            ScrapeCollector, PrometheusCollector]
