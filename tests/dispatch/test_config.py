"""The notification sections of alertd.toml: every mistake is one `file:line: field: message` line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from alertd.cli import main
from alertd.config import load_config
from alertd.errors import ConfigErrors
from tests.helpers import write

BASE = """
[receivers.console]
type = "console"

[receivers.oncall]
type = "console"
templates = { text = "{{ status }}" }

[route]
receiver = "console"

[[route.routes]]
matchers = ['team="payments"']
receiver = "oncall"
"""


def errors_of(tmp_path: Path, text: str) -> list[str]:
    cfg = write(tmp_path / "alertd.toml", text)
    with pytest.raises(ConfigErrors) as info:
        load_config(cfg)
    return [str(e).replace(str(cfg), "alertd.toml") for e in info.value.errors]


def test_the_base_loads(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path / "alertd.toml", BASE))
    assert set(loaded.receiver_settings) == {"console", "oncall"}
    assert loaded.config.route.routes[0].matchers.matches({"team": "payments"})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ('[receivers.x]\ntype = "slak"\n', "alertd.toml:16: receivers.x.type: unknown receiver type 'slak'; installed:"),
        ('[receivers.x]\ntype = "console"\npaht = "x.log"\n', "alertd.toml:17: receivers.x.paht: unknown field"),
        ('[receivers.x]\ntype = "console"\ntimeout = "soon"\n', "alertd.toml:17: receivers.x.timeout: invalid duration"),
        ('[[route.routes]]\nreceiver = "nobody"\n', "alertd.toml:16: route.routes[1].receiver: unknown receiver 'nobody'"),
        ('[[inhibit_rules]]\nsource_matchers = [\'alertname="A\']\ntarget_matchers = [\'a="b"\']\n',
         "alertd.toml:16: inhibit_rules[0].source_matchers: unterminated string"),
        ("[[inhibit_rules]]\nsource_matchers = []\ntarget_matchers = ['a=\"b\"']\n",
         "alertd.toml:16: inhibit_rules[0].source_matchers: at least one matcher is needed"),
        ('[[route.routes]]\nmatchers = [\'a="b"\']\nmute_time_intervals = ["night"]\n',
         "alertd.toml:17: route.routes[1].mute_time_intervals[0]: unknown time interval 'night'"),
        ('[[route.routes]]\nmatchers = [\'a="b"\']\nescalation = "nope"\n',
         "alertd.toml:17: route.routes[1].escalation: unknown escalation policy 'nope'"),
        ('[escalation_policies.p]\nlevels = [{ receiver = "ghost", after = "5m" }]\n',
         "escalation_policies.p.levels[0].receiver: unknown receiver 'ghost'"),
        ('[[time_intervals.night]]\ntimes = ["22:00-06:00"]\n',
         "alertd.toml:16: time_intervals.night[0].times: invalid time range '22:00-06:00'"),
        ('[[time_intervals.night]]\nlocation = "Mars/Olympus"\n',
         "time_intervals.night[0].location: unknown time zone 'Mars/Olympus'"),
        ('[receivers.x]\ntype = "console"\ntemplates = { text = "{{ status" }\n',
         "alertd.toml:17: receivers.x.templates.text: template syntax error"),
        ('[receivers.x]\ntype = "console"\nfallback = "nobody"\n', "receivers.x.fallback: unknown receiver 'nobody'"),
    ],
    ids=["unknown-type", "typo-in-setting", "bad-duration", "route-unknown-receiver", "bad-inhibit-matcher",
         "empty-inhibit-matchers", "unknown-time-interval", "unknown-escalation", "escalation-unknown-receiver",
         "time-range-across-midnight", "unknown-zone", "template-syntax", "unknown-fallback"],
)
def test_mistakes(tmp_path: Path, change: str, expected: str) -> None:
    errors = errors_of(tmp_path, BASE + "\n" + change)
    assert any(e.startswith(expected) or expected in e for e in errors), errors


def test_alertd_check_names_a_route_regex_re2_refuses(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "r.toml", '[[rules]]\nname = "A"\nselect = "x"\ncondition = "value > 1"\n')
    cfg = write(tmp_path / "alertd.toml", BASE + '\n[[route.routes]]\nmatchers = [\'team=~"(pay)\\\\1"\']\n'
                'receiver = "oncall"\n')
    result = CliRunner().invoke(main, ["check", "-c", str(cfg)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{cfg}:16: route.routes[1].matchers: invalid regex for label 'team': invalid escape sequence: \\1 "
        "(RE2 syntax: no backreferences, lookarounds or \\Z) in 'team=~\"(pay)\\\\\\\\1\"'",
        "1 problem(s) found",
    ]


def test_receivers_need_a_root_receiver(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, '[receivers.console]\ntype = "console"\n')
    assert errors == ["alertd.toml: route: route.receiver is required: every alert that no child route takes goes there"]


def test_alertd_check_catches_a_typo_in_a_plugin_receiver(tmp_path: Path) -> None:
    write(tmp_path / "rules" / "r.toml", '[[rules]]\nname = "A"\nselect = "x"\ncondition = "value > 1"\n')
    cfg = write(tmp_path / "alertd.toml", BASE + '\n[receivers.slack]\ntype = "slack"\nwebhook_ur = "https://hooks.slack.com/x"\n')
    result = CliRunner().invoke(main, ["check", "-c", str(cfg)])
    assert result.exit_code == 1
    assert f"{cfg}:17: receivers.slack.webhook_ur: unknown field" in result.output
    assert f"{cfg}:15: receivers.slack.webhook_url: missing required field" in result.output


def test_the_effective_configuration_hides_receiver_secrets(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertd.toml", BASE + '\n[receivers.slack]\ntype = "slack"\nwebhook_url = "https://hooks.slack.com/services/T0/B0/s3cr3tvalue"\n')
    result = CliRunner().invoke(main, ["config", "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "s3cr3tvalue" not in result.output
