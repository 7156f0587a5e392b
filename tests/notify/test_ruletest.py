"""``alertd test`` with notification expectations: routing, grouping, inhibition, silences and escalation."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from alertd.cli import main
from tests.helpers import write

ROOT = Path(__file__).resolve().parents[2]

RULES = """
[[groups]]
name = "g"
interval = "15s"

[[groups.rules]]
name = "PaymentTaskFailed"
select = "payment_failures"
condition = "value > 0"
severity = "critical"
labels = { team = "payments" }
summary = "payment {{ labels.task }} failed"

[[groups.rules]]
name = "QueueBacklog"
select = "depth"
condition = "value > 100"
severity = "warning"
summary = "{{ labels.queue }} holds {{ value | int }}"

[[groups.rules]]
name = "BrokerDown"
select = "broker_up"
condition = "value == 0"
severity = "critical"
"""

INLINE = """
rule_files = ["rules.toml"]
evaluation_interval = "15s"

[receivers.ops]
type = "console"
[receivers.oncall]
type = "console"
templates = { text = "PAGE {{ firing | map(attribute='annotations.summary') | join('; ') }}" }
[receivers.lead]
type = "console"

[route]
receiver = "ops"
group_by = ["alertname"]
group_wait = "30s"
group_interval = "5m"

[[route.routes]]
matchers = ['team="payments"']
receiver = "oncall"
group_wait = "0s"
escalation = "payments"

[[inhibit_rules]]
source_matchers = ['alertname="BrokerDown"']
target_matchers = ['alertname="QueueBacklog"']

[escalation_policies.payments]
levels = [{ receiver = "lead", after = "10m" }]
"""


def run(tmp_path: Path, tests: str, head: str = INLINE) -> tuple[int, str]:
    write(tmp_path / "rules.toml", RULES)
    write(tmp_path / "n_test.toml", head + tests)
    result = CliRunner().invoke(main, ["test", "-v", str(tmp_path / "n_test.toml")])
    return result.exit_code, result.output


def test_expectations_pass(tmp_path: Path) -> None:
    code, out = run(tmp_path, """
[[tests]]
name = "a payment failure pages at once and escalates while unacknowledged"
interval = "15s"
series = [ { select = 'payment_failures{task="charge"}', values = "0 1x60" } ]

  [[tests.notifications]]
  at = "15s"
  receiver = "oncall"
    [[tests.notifications.notifications]]
    group_labels = { alertname = "PaymentTaskFailed" }
    status = "firing"
    reason = "first notification"
    alerts = [ { name = "PaymentTaskFailed", labels = { task = "charge" } } ]
    contains = { text = "PAGE payment charge failed" }

  [[tests.notifications]]
  at = "10m"
  receiver = "lead"
  notifications = []

  [[tests.notifications]]
  at = "10m15s"
  receiver = "lead"
  notifications = [ { reason = "escalated to level 1: unacknowledged for 10m" } ]

[[tests]]
name = "an acknowledged payment failure does not escalate"
interval = "15s"
series = [ { select = 'payment_failures{task="charge"}', values = "0 1x60" } ]
acks = [ { at = "1m", matchers = ['alertname="PaymentTaskFailed"'] } ]

  [[tests.notifications]]
  at = "15m"
  receiver = "lead"
  notifications = []

[[tests]]
name = "a broken broker mutes the backlog it causes, and a silence mutes the rest"
interval = "15s"
series = [
  { select = 'depth{queue="a"}', values = "500x40" },
  { select = 'broker_up', values = "0x40" },
]
silences = [ { at = "0s", matchers = ['alertname="BrokerDown"'], duration = "2m" } ]

  [[tests.notifications]]
  at = "1m"
  receiver = "ops"
  notifications = []

  [[tests.notifications]]
  at = "5m30s"
  receiver = "ops"
  notifications = [ { group_labels = { alertname = "BrokerDown" }, reason = "silence ended" } ]
""")
    assert code == 0, out
    assert out.strip().endswith("3 passed, 0 failed")


def test_a_wrong_expectation_shows_what_was_sent(tmp_path: Path) -> None:
    code, out = run(tmp_path, """
[[tests]]
name = "expects the wrong receiver"
interval = "15s"
series = [ { select = 'depth{queue="a"}', values = "500x40" } ]

  [[tests.notifications]]
  at = "1m"
  receiver = "ops"
  notifications = [ { reason = "new alerts", contains = "holds 9" } ]
""")
    assert code == 1
    assert "at 1m: notifications to ops differ" in out
    assert "reason 'first notification'" in out
    assert "rendered text does not contain 'holds 9'" in out
    assert "firing {'alertname': 'QueueBacklog'} reason='first notification' alerts=[QueueBacklog[firing]]" in out


def test_a_config_file_can_be_named_and_its_secrets_need_not_be_set(tmp_path: Path) -> None:
    write(tmp_path / "alertd.toml", """
[receivers.ops]
type = "slack"
webhook_url = "${ALERTD_TEST_UNSET_WEBHOOK}"
[route]
receiver = "ops"
group_wait = "0s"
""")
    code, out = run(tmp_path, """
[[tests]]
name = "slack gets it"
interval = "15s"
series = [ { select = 'depth{queue="a"}', values = "500x4" } ]
  [[tests.notifications]]
  at = "15s"
  receiver = "ops"
  notifications = [ { status = "firing", contains = { text = "QueueBacklog" } } ]
""", head='rule_files = ["rules.toml"]\nevaluation_interval = "15s"\nconfig = "alertd.toml"\n')
    assert code == 0, out


def test_notification_expectations_without_settings_are_an_error(tmp_path: Path) -> None:
    code, out = run(tmp_path, """
[[tests]]
name = "no settings"
  [[tests.notifications]]
  at = "15s"
  receiver = "ops"
  notifications = []
""", head='rule_files = ["rules.toml"]\n')
    assert code == 1
    assert "notification expectations need config" in out


def test_an_unknown_receiver_is_named(tmp_path: Path) -> None:
    code, out = run(tmp_path, """
[[tests]]
name = "typo"
  [[tests.notifications]]
  at = "15s"
  receiver = "opps"
  notifications = []
""")
    assert code == 1
    assert "no receiver named 'opps'" in out
