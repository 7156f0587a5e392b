"""The route tree from the configuration in; for an alert's labels, the routes that take it and its group out.

Alertmanager's semantics: a route matches when all its matchers do; its children are tried in order and the
first that matches ends the search unless it says ``continue``; a route none of whose children match takes
the alert itself. Unset options are inherited from the parent (unlike Alertmanager, time intervals, the
escalation policy and the fallback receiver are inherited too).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from alertd.dispatch.config import ALL_LABELS, RootRouteConfig, RouteConfig
from alertd.dispatch.matchers import Matchers


@dataclass(frozen=True, slots=True)
class RouteOptions:
    """A route's options once inheritance is resolved."""

    receiver: str
    group_by: tuple[str, ...] | None  # None: every label ("...")
    group_wait: float
    group_interval: float
    repeat_interval: float
    send_resolved: bool
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    escalation: str | None = None
    fallback: str | None = None


class Route:
    """One node of the route tree."""

    __slots__ = ("continue_", "key", "matchers", "options", "parent", "routes")

    def __init__(
        self, key: str, matchers: Matchers, continue_: bool, options: RouteOptions, parent: Route | None
    ) -> None:
        self.key = key
        self.matchers = matchers
        self.continue_ = continue_
        self.options = options
        self.parent = parent
        self.routes: list[Route] = []

    def __repr__(self) -> str:
        return f"Route({self.key!r}, receiver={self.options.receiver!r})"

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with these labels (empty when this route does not match)."""
        if not self.matchers.matches(labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            taken = child.match(labels)
            found.extend(taken)
            if taken and not child.continue_:
                break
        return found or [self]

    def walk(self) -> Iterator[Route]:
        yield self
        for child in self.routes:
            yield from child.walk()

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name the alert's group on this route (a missing label is left out)."""
        group_by = self.options.group_by
        if group_by is None:
            return dict(labels)
        return {name: labels[name] for name in group_by if name in labels}

    def group_key(self, group_labels: Mapping[str, str]) -> str:
        """Stable across repeats, restarts and replicas: the route's key and the group's labels."""
        return f"{self.key}:{format_labels(group_labels)}"


def format_labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={_quote(v)}" for k, v in sorted(labels.items())) + "}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def build_route_tree(config: RootRouteConfig) -> Route:
    """Resolve inheritance once; a root without a receiver is a configuration error found at load time."""
    if config.receiver is None:
        raise ValueError("route.receiver is required: the root route needs a receiver")
    options = RouteOptions(
        receiver=config.receiver,
        group_by=_group_by(config.group_by or []),
        group_wait=float(config.group_wait if config.group_wait is not None else 30.0),
        group_interval=float(config.group_interval if config.group_interval is not None else 300.0),
        repeat_interval=float(config.repeat_interval if config.repeat_interval is not None else 14400.0),
        send_resolved=True if config.send_resolved is None else config.send_resolved,
        mute_time_intervals=tuple(config.mute_time_intervals or ()),
        active_time_intervals=tuple(config.active_time_intervals or ()),
        escalation=config.escalation,
        fallback=config.fallback,
    )
    root = Route("{}", Matchers(), False, options, None)
    _children(root, config.routes)
    return root


def _group_by(labels: list[str]) -> tuple[str, ...] | None:
    return None if ALL_LABELS in labels else tuple(labels)


def _inherit(parent: RouteOptions, child: RouteConfig) -> RouteOptions:
    def pick(value: object, inherited: object) -> object:
        return inherited if value is None else value

    return RouteOptions(
        receiver=child.receiver or parent.receiver,
        group_by=parent.group_by if child.group_by is None else _group_by(child.group_by),
        group_wait=float(pick(child.group_wait, parent.group_wait)),  # type: ignore[arg-type]
        group_interval=float(pick(child.group_interval, parent.group_interval)),  # type: ignore[arg-type]
        repeat_interval=float(pick(child.repeat_interval, parent.repeat_interval)),  # type: ignore[arg-type]
        send_resolved=bool(pick(child.send_resolved, parent.send_resolved)),
        mute_time_intervals=parent.mute_time_intervals
        if child.mute_time_intervals is None
        else tuple(child.mute_time_intervals),
        active_time_intervals=parent.active_time_intervals
        if child.active_time_intervals is None
        else tuple(child.active_time_intervals),
        escalation=child.escalation if child.escalation is not None else parent.escalation,
        fallback=child.fallback if child.fallback is not None else parent.fallback,
    )


def _children(parent: Route, configs: list[RouteConfig]) -> None:
    seen: dict[str, int] = {}
    for config in configs:
        # The key is made of matchers, not positions, so inserting a route keeps the other groups' keys
        # (a PagerDuty incident follows its group key); identical siblings get a number.
        base = f"{parent.key}/{config.matchers}"
        count = seen.get(base, 0)
        seen[base] = count + 1
        key = base if count == 0 else f"{base}#{count + 1}"
        route = Route(key, config.matchers, config.continue_, _inherit(parent.options, config), parent)
        parent.routes.append(route)
        _children(route, config.routes)
