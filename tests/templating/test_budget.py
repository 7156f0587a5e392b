"""Hostile templates stop at the budget, before the memory is allocated; ordinary ones render as before."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest

from alertd.templating.budget import MARKER, Budget
from alertd.templating.env import make_environment, render_bounded

ENV = make_environment()
# The deadline is taken out of the way so that each payload meets the limit it aims at, however loaded the machine.
PATIENT = make_environment(budget=Budget(time=60.0))
PEAK_BOUND = 50 * 1024 * 1024  # bytes: each payload below would take gigabytes, or minutes, unbounded

# (id, template, the limit it passes)
HOSTILE = [
    ("str-times-huge", "{{ 'x' * 10**10 }}", "output size"),
    ("huge-times-str", "{{ 10**10 * 'x' }}", "output size"),
    ("list-times-huge", "{{ [1] * 10**9 }}", "output size"),
    ("range-list", "{{ range(10**9)|list }}", "loop iterations"),
    ("for-over-range", "{% for i in range(10**8) %}.{% endfor %}", "loop iterations"),
    ("nested-loops-under-range-cap", "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
     "loop iterations"),
    ("nested-loops-over-a-string", "{% for a in 'x' * 60000 %}{% for b in 'x' * 60000 %}{% endfor %}{% endfor %}",
     "loop iterations"),
    ("join-a-megabyte", "{{ ('a' * 10**6)|join(',') }}", "output size"),
    ("join-with-a-wide-separator", "{{ ('a' * 60000)|join('b' * 60000) }}", "output size"),
    ("str-join-method", "{{ ('b' * 60000).join('a' * 60000) }}", "output size"),
    ("lipsum", "{{ lipsum(10**6) }}", "output size"),
    ("percent-format-filter", "{{ '%0999999999d'|format(1) }}", "output size"),
    ("percent-operator", "{{ '%.999999999f' % 1.5 }}", "output size"),
    ("star-width", "{{ '%*d' % (10**9, 1) }}", "output size"),
    ("str-format-width", "{{ '{:>999999999}'.format(1) }}", "output size"),
    ("str-format-nested-width", "{{ '{0:{1}}'.format(1, 10**9) }}", "output size"),
    ("format-map", "{{ '{a:>999999999}'.format_map({'a': 1}) }}", "output size"),
    ("center-method", "{{ 'x'.center(10**9) }}", "output size"),
    ("ljust-method", "{{ 'x'.ljust(10**9) }}", "output size"),
    ("zfill-method", "{{ '1'.zfill(10**9) }}", "output size"),
    ("center-filter", "{{ 'x'|center(10**9) }}", "output size"),
    ("expandtabs", "{{ ('\t' * 60000).expandtabs(10**6) }}", "output size"),
    ("replace-filter", "{{ ('x' * 60000)|replace('x', 'y' * 60000) }}", "output size"),
    ("replace-method", "{{ ('x' * 60000).replace('x', 'y' * 60000) }}", "output size"),
    ("translate", "{{ ('x' * 60000).translate({120: 'y' * 60000}) }}", "output size"),
    ("indent", "{{ ('x\n' * 30000)|indent(10**6) }}", "output size"),
    ("wordwrap", "{{ ('x ' * 30000)|wordwrap(1, wrapstring='y' * 60000) }}", "output size"),
    ("tojson-indent", "{{ ([[1] * 1000] * 60)|tojson(indent=100000) }}", "output size"),
    ("batch-fill", "{{ [1]|batch(10**9, 'x')|list }}", "loop iterations"),
    ("to-bytes", "{{ (1).to_bytes(10**10, 'big') }}", "output size"),
    ("power", "{{ 7 ** (10 ** 9) }}", "output size"),
    ("doubling-with-tilde",
     "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "output size"),
    ("doubling-with-plus",
     "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "output size"),
    ("doubling-macro",
     "{% macro f(n) %}{% if n %}{% set a = f(n - 1) %}{{ a }}{{ a }}{% else %}x{% endif %}{% endmacro %}{{ f(64) }}",
     "output size"),
    ("printing-a-list-of-shared-strings", "{{ [('x' * 60000)] * 100000 }}", "output size"),
    ("string-filter-of-shared-strings", "{{ ([('x' * 60000)] * 100000)|string }}", "output size"),
    ("mapped-then-listed", "{{ ([('x' * 60000)] * 1000)|map('upper')|list }}", "output size"),
    ("recursive-loop",
     "{% for x in range(9) recursive %}{% if loop.depth < 4 %}{{ loop(range(99999)) }}{% endif %}{% endfor %}",
     "loop iterations"),
    ("set-block", "{% set s = 'x' * 60000 %}{% set big %}{% for i in range(100000) %}{{ s }}{% endfor %}{% endset %}"
     "{{ big | length }}", "output size"),
    ("macro-output", "{% macro m(s) %}{% for i in range(100000) %}{{ s }}{% endfor %}{% endmacro %}"
     "{{ m('x' * 60000) | length }}", "output size"),
    ("filter-block", "{% filter upper %}{% for i in range(100000) %}{{ 'x' * 60000 }}{% endfor %}{% endfilter %}",
     "output size"),
    ("namespace-chain", "{% set ns = namespace(l=none) %}{% for i in range(100000) %}"
     "{% set ns.l = (ns.l, 'x' * 60000 ~ i) %}{% endfor %}", "output size"),
    ("list-growing-by-plus", "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
     "{% set ns.l = ns.l + ['x' * 60000 ~ i] %}{% endfor %}", "output size"),
    ("dict-growing", "{% set ns = namespace(d={}) %}{% for i in range(100000) %}"
     "{% set ns.d = dict(ns.d, **{'k' ~ i: 'x' * 60000}) %}{% endfor %}", "output size"),
    ("long-output", "{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}", "output size"),
]


def measured(template: str, env: Any = PATIENT) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = render_bounded(env.from_string(template), {"labels": {"severity": "page"}})
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("template", "limit"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_a_hostile_template_stops_at_its_budget_with_a_marker(template: str, limit: str) -> None:
    result, peak = measured(template)
    assert result.breach is not None, result.text[:200]
    assert result.breach.limit == limit, result.breach
    assert result.text.endswith(MARKER.format(limit=limit))
    assert len(result.text) <= PATIENT.budget.output + len(MARKER) + 20
    assert peak < PEAK_BOUND, f"peak {peak / 1e6:.1f} MB"


def test_a_busy_loop_stops_at_the_deadline() -> None:
    # Few iterations, each one slow: the deadline ends it, not the loop budget.
    env = make_environment(budget=Budget(time=0.05, iterations=10**9))
    result, _ = measured("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", env)
    assert result.breach is not None and result.breach.limit == "time"


def test_a_rendering_kept_waiting_is_not_cut_short() -> None:
    # A filter that blocks without computing stands for a machine too busy to run the rendering for a while.
    env = make_environment(budget=Budget(time=0.02))
    env.filters["held_up"] = lambda value: time.sleep(0.1) or value
    result = render_bounded(env.from_string("{{ 1 | held_up }}{% for i in range(3000) %}.{% endfor %}"), {})
    assert result.breach is None
    assert result.text == "1" + "." * 3000


def test_the_breach_is_reported_to_the_environment(caplog: pytest.LogCaptureFixture) -> None:
    seen = []
    env = make_environment(on_breach=seen.append)
    template = env.from_string("{{ 'x' * 10**10 }}")
    assert template.render() == MARKER.format(limit="output size")  # render() is bounded too
    assert [(b.limit, b.template) for b in seen] == [("output size", "{{ 'x' * 10**10 }}")]
    assert "template budget exceeded: output size" in caplog.text


def test_the_budget_is_configurable() -> None:
    small = make_environment(budget=Budget(output=10))
    assert render_bounded(small.from_string("{{ 'x' * 11 }}"), {}).breach is not None
    assert render_bounded(small.from_string("{{ 'x' * 10 }}"), {}).text == "x" * 10
    few = make_environment(budget=Budget(iterations=3))
    assert render_bounded(few.from_string("{% for i in range(3) %}{{ i }}{% endfor %}"), {}).text == "012"
    assert render_bounded(few.from_string("{% for i in 'abcd' %}{{ i }}{% endfor %}"), {}).text.startswith("abc…")


NORMAL = [
    ("{{ labels.queue }}: {{ value | int }}", {"labels": {"queue": "critical"}, "value": 1234.5}, "critical: 1234"),
    ("{{ value | humanize_percentage }}", {"value": 0.0523}, "5.23%"),
    ("{% for k, v in labels | dictsort %}{{ k }}={{ v }}{% if not loop.last %}, {% endif %}{% endfor %}",
     {"labels": {"b": "2", "a": "1"}}, "a=1, b=2"),
    ("{{ labels | dictsort | map('join', '=') | join(', ') }}", {"labels": {"b": "2", "a": "1"}}, "a=1, b=2"),
    ("{{ '%s is %.1f%%' | format(name, 12.345) }}", {"name": "q"}, "q is 12.3%"),
    ("{{ '{}: {:>5}'.format(name, 42) }}", {"name": "q"}, "q:    42"),
    ("{{ '%-6s|' % name }}", {"name": "q"}, "q     |"),
    ("{{ (name ~ '-') * 3 }}{{ [1, 2] + [3] }}{{ 2 ** 10 }}", {"name": "q"}, "q-q-q-[1, 2, 3]1024"),
    ("{{ text | wordwrap(10) | indent(2) | center(30) | trim }}", {"text": "alpha beta gamma"},
     "alpha beta\n  gamma"),
    ("{{ alerts | map(attribute='name') | unique | sort | join(',') }}",
     {"alerts": [{"name": "b"}, {"name": "a"}, {"name": "b"}]}, "a,b"),
    ("{{ alerts | join(', ', attribute='name') }}", {"alerts": [{"name": "b"}, {"name": "a"}]}, "b, a"),
    ("{{ items | batch(2) | list }} {{ items | slice(2) | list | length }} {{ items | sum }}",
     {"items": [1, 2, 3]}, "[[1, 2], [3]] 2 6"),
    ("{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}", {}, "1/3 2/3 3/3 "),
    ("{{ data | tojson }}", {"data": {"a": [1, 2]}}, '{"a": [1, 2]}'),
    ("{{ 'a\tb'.expandtabs(4) }}|{{ 'x'.center(5) }}|{{ 'ab'.replace('a', 'c') }}", {}, "a   b|  x  |cb"),
]


@pytest.mark.parametrize(("template", "context", "expected"), NORMAL, ids=[n[0][:40] for n in NORMAL])
def test_an_ordinary_template_renders_as_it_did(template: str, context: dict[str, Any], expected: str) -> None:
    result = render_bounded(ENV.from_string(template), context)
    assert result.breach is None
    assert result.text == expected
