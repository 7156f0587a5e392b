"""`alertd check` renders every rule and receiver template on sample data under the configured budget."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from alertd.check import check, permissive, sample_notification
from alertd.cli import main
from alertd.config.load import notifier_types
from alertd.notifiers.templates import template_context
from alertd.plugins import make_plugin_manager
from alertd.templating.env import make_environment, render_bounded
from tests.helpers import write

RULE = """
[[groups]]
name = "queues"

[[groups.rules]]
name = "Backlog"
select = 'celery_queue_depth{{queue="critical"}}'
condition = "value > 100"
summary = "{summary}"
"""

CONFIG = """
rule_files = ["rules/*.toml"]
{templates}
[receivers.chat]
type = "console"
path = "pages.log"
[receivers.chat.templates]
text = "{text}"
[route]
receiver = "chat"
"""


def setup(tmp_path: Path, summary: str = "depth {{ value }}", text: str = "{{ alerts | length }} alerts",
          templates: str = "") -> Path:
    write(tmp_path / "rules" / "r.toml", RULE.format(summary=summary))
    return write(tmp_path / "alertd.toml", CONFIG.format(text=text, templates=templates))


def test_a_rule_template_past_its_budget_is_one_line(tmp_path: Path) -> None:
    cfg = setup(tmp_path, summary="{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}")
    report = check(str(cfg))
    assert [str(e) for e in report.errors] == [
        f"{tmp_path / 'rules' / 'r.toml'}:8: Backlog: summary: template fails on sample data: "
        "template budget exceeded: loop iterations (more than 100000)"
    ]


def test_a_receiver_template_past_its_budget_is_one_line(tmp_path: Path) -> None:
    cfg = setup(tmp_path, text="{{ 'x' * 10**10 }}")
    report = check(str(cfg))
    assert [str(e) for e in report.errors] == [
        f"{cfg}:7: receivers.chat.templates.text: template fails on sample data: "
        "template budget exceeded: output size (str of 1 repeated 10000000000 times)"
    ]


def test_a_receiver_template_that_fails_on_sample_data_is_reported(tmp_path: Path) -> None:
    cfg = setup(tmp_path, text="{{ alerts[0].labels.update({'x': 1}) }}")
    [error] = check(str(cfg)).errors
    assert error.field == "receivers.chat.templates.text"
    assert "template fails on sample data: SecurityError: access to attribute 'update'" in str(error)


def test_the_default_templates_of_every_receiver_pass(tmp_path: Path) -> None:
    assert check(str(setup(tmp_path))).ok


def test_a_receiver_template_may_read_any_label(tmp_path: Path) -> None:
    text = "{{ alerts[0].labels.team }} {{ common_annotations.dashboard }} {{ group_labels.cluster }}"
    assert check(str(setup(tmp_path, text=text))).ok


def test_the_configured_budget_is_the_one_checked(tmp_path: Path) -> None:
    summary = "{{ 'x' * 40 }}"
    assert check(str(setup(tmp_path, summary=summary))).ok
    report = check(str(setup(tmp_path, summary=summary, templates="[templates]\nmax_output = 32\n")))
    assert [e.field for e in report.errors] == ["summary"]
    assert "template budget exceeded: output size" in str(report.errors[0])


def test_check_command_exits_1_with_the_line(tmp_path: Path) -> None:
    cfg = setup(tmp_path, summary="{{ range(10**9) | list }}")
    result = CliRunner().invoke(main, ["check", "-c", str(cfg)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "template budget exceeded" in line]
    assert lines == [
        f"{tmp_path / 'rules' / 'r.toml'}:8: Backlog: summary: template fails on sample data: "
        "template budget exceeded: loop iterations (range of 1000000000 numbers, more than 100000)"
    ]


def test_every_installed_notifier_s_default_templates_render_on_the_sample() -> None:
    pm = make_plugin_manager()
    types = notifier_types(pm)
    assert {"console", "slack", "pagerduty", "email", "webhook"} <= set(types)
    env = make_environment(pm)
    for name, cls in types.items():
        context = permissive(template_context(sample_notification(name, "http://alertd.example")))
        for template, source in cls.templates.items():
            result = render_bounded(env.from_string(source), context)
            assert result.breach is None and "SampleAlert" in result.text, (name, template, result.text)
