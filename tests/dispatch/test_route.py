"""The route tree: which routes take an alert (with continue), what children inherit, and group keys."""

from __future__ import annotations

from typing import Any

import pytest

from alertd.dispatch.config import RootRouteConfig
from alertd.dispatch.route import Route, build_route_tree

TREE: dict[str, Any] = {
    "receiver": "default",
    "group_by": ["alertname"],
    "group_wait": "30s",
    "routes": [
        {"matchers": ['team="payments"'], "receiver": "payments", "group_wait": "0s", "continue": True,
         "routes": [{"matchers": ['severity="critical"'], "receiver": "payments-pager"}]},
        {"matchers": ['team="payments"'], "receiver": "payments-audit", "group_by": ["..."]},
        {"matchers": ['queue=~"crit.*"'], "receiver": "queues"},
        {"matchers": ['queue=~".*"', 'severity="warning"'], "receiver": "warnings", "send_resolved": False},
    ],
}


@pytest.fixture(scope="module")
def root() -> Route:
    return build_route_tree(RootRouteConfig.model_validate(TREE))


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"team": "platform"}, ["default"]),
        ({"team": "payments"}, ["payments", "payments-audit"]),
        ({"team": "payments", "severity": "critical"}, ["payments-pager", "payments-audit"]),
        ({"queue": "critical", "severity": "warning"}, ["queues"]),  # first match wins without continue
        ({"queue": "default", "severity": "warning"}, ["warnings"]),
        ({"queue": "critical", "team": "payments"}, ["payments", "payments-audit"]),  # audit has no continue
    ],
    ids=["no-child-matches", "continue", "deepest-child", "first-match-stops", "later-sibling", "continue-then-stop"],
)
def test_match(root: Route, labels: dict[str, str], receivers: list[str]) -> None:
    assert [r.options.receiver for r in root.match(labels)] == receivers


@pytest.mark.parametrize(
    ("labels", "option", "value"),
    [
        ({"team": "payments"}, "group_wait", 0.0),
        ({"team": "payments", "severity": "critical"}, "group_wait", 0.0),  # inherited from its parent
        ({"team": "payments", "severity": "critical"}, "group_interval", 300.0),  # from the root's default
        ({"team": "platform"}, "repeat_interval", 14400.0),
        ({"queue": "x", "severity": "warning"}, "send_resolved", False),
        ({"queue": "critical"}, "send_resolved", True),
        ({"queue": "critical"}, "group_by", ("alertname",)),
    ],
    ids=["own", "inherited-from-parent", "root-default", "repeat-default", "send-resolved-own",
         "send-resolved-inherited", "group-by-inherited"],
)
def test_inheritance(root: Route, labels: dict[str, str], option: str, value: object) -> None:
    assert getattr(root.match(labels)[0].options, option) == value


def test_group_by_all_labels(root: Route) -> None:
    audit = root.match({"team": "payments"})[1]
    assert audit.options.group_by is None
    labels = {"team": "payments", "alertname": "X", "task": "t"}
    assert audit.group_labels(labels) == labels


def test_group_labels_leave_out_missing_labels(root: Route) -> None:
    route = root.match({"team": "platform"})[0]
    assert route.group_labels({"team": "platform"}) == {}
    assert route.group_labels({"alertname": "A", "team": "platform"}) == {"alertname": "A"}


def test_group_keys_are_made_of_matchers_and_stable(root: Route) -> None:
    pager = root.match({"team": "payments", "severity": "critical"})[0]
    assert pager.key == '{}/{team="payments"}/{severity="critical"}'
    assert pager.group_key({"alertname": "PaymentTaskFailed"}) == (
        '{}/{team="payments"}/{severity="critical"}:{alertname="PaymentTaskFailed"}'
    )
    again = build_route_tree(RootRouteConfig.model_validate(TREE))
    assert [r.key for r in again.walk()] == [r.key for r in root.walk()]


def test_identical_siblings_get_distinct_keys() -> None:
    tree = build_route_tree(RootRouteConfig.model_validate(
        {"receiver": "a", "routes": [{"matchers": ['x="1"'], "receiver": "b"}, {"matchers": ['x="1"'], "receiver": "c"}]}
    ))
    assert [r.key for r in tree.routes] == ['{}/{x="1"}', '{}/{x="1"}#2']


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"receiver": "a", "matchers": ['x="1"']}, "cannot have matchers"),
        ({"receiver": "a", "continue": True}, "cannot have continue"),
        ({"receiver": "a", "group_by": ["...", "x"]}, "cannot be combined"),
        ({"receiver": "a", "group_interval": "0s"}, "longer than 0s"),
        ({"receiver": "a", "routes": [{"matchers": ['x="1'], "receiver": "b"}]}, "unterminated string"),
    ],
    ids=["root-matchers", "root-continue", "group-by-all-and-more", "zero-interval", "bad-child-matcher"],
)
def test_bad_trees(tree: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RootRouteConfig.model_validate(tree)
