"""``GET /``: the dashboard, server-rendered HTML (no script, no outside asset), refreshed every 10 seconds."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from jinja2 import Environment

from alertd import __version__
from alertd.http.health import celery_health
from alertd.http.views import silence_view

if TYPE_CHECKING:
    from alertd.daemon.core import Daemon
    from alertd.http.snapshot import Snapshot

# Alerts shown per section: past this, the page says how many more there are and points to the API's filters.
ROWS = 500


def age(since: float | None, now: float) -> str:
    if since is None:
        return ""
    seconds = int(max(0.0, now - since))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0s"


def number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


# The page's only style sheet; the Content-Security-Policy allows exactly this text (alertd/http/guard.py).
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:center}
header h1{font-size:18px;margin:0}main{padding:16px 24px}
section{background:#fff;border-radius:6px;box-shadow:0 1px 2px #0002;margin-bottom:16px;padding:8px 16px}
h2{font-size:15px;margin:8px 0}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;color:#555}.badge{border-radius:3px;padding:1px 6px;font-size:12px;color:#fff}
.critical{background:#c62828}.warning{background:#ef6c00}.info,.none{background:#607d8b}
.healthy{color:#2e7d32;font-weight:600}.unhealthy{color:#c62828;font-weight:600}
.muted{color:#888}code{font-size:12px}
"""

_ENV = Environment(autoescape=True)
_ENV.filters["number"] = number
PAGE = _ENV.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>alertd {{ firing|length }} firing</title>
<style>{{ style|safe }}</style></head><body>
<header><h1>alertd</h1><span>version {{ version }}</span>
<span class="{{ health.status }}">cluster {{ health.status }}</span>
<span>{{ "ready" if ready else "starting" }}</span>
<span>{{ firing|length }} firing, {{ pending|length }} pending</span></header>
<main>
{% if health.reasons %}<section><h2>Cluster health</h2><ul>
{% for r in health.reasons %}<li class="unhealthy">{{ r }}</li>{% endfor %}</ul></section>{% endif %}
{% for title, rows in (("Firing", firing), ("Pending", pending)) %}
<section id="{{ title|lower }}"><h2>{{ title }} alerts ({{ rows|length }})</h2>
{% if rows %}<table><tr><th>Severity</th><th>Alert</th><th>Age</th><th>Value</th><th>Message</th><th>Labels</th></tr>
{% for a in rows[:shown] %}<tr class="alert">
<td><span class="badge {{ a.severity or 'none' }}">{{ a.severity or "none" }}</span></td>
<td><a href="/api/v1/alerts/{{ a.fingerprint }}">{{ a.labels.alertname }}</a>
{% if a.silenced_by %} <span class="muted">silenced</span>{% endif %}
{% if a.inhibited_by %} <span class="muted">inhibited</span>{% endif %}
{% if a.acknowledgement %} <span class="muted">acked by {{ a.acknowledgement.by }}</span>{% endif %}
<br><code class="muted">{{ a.fingerprint[:12] }}</code></td>
<td>{{ age(a.fired_at if a.state == "firing" else a.active_at) }}</td>
<td>{{ a.value|number }}</td><td>{{ a.annotations.summary }}</td>
<td>{% for k, v in a.labels|dictsort %}{% if k not in ("alertname", "severity") %}<code>{{ k }}={{ v }}</code> {% endif %}{% endfor %}</td>
</tr>{% endfor %}</table>{% if rows|length > shown %}<p class="muted">and {{ rows|length - shown }} more: filter
them with <code>alertd alerts --filter</code> or <a href="/api/v1/alerts">/api/v1/alerts</a>?filter=…</p>{% endif %}
{% else %}<p class="muted">none</p>{% endif %}</section>
{% endfor %}
<section id="silences"><h2>Silences ({{ silences|length }})</h2>
{% if silences %}<table><tr><th>Matchers</th><th>Status</th><th>Ends in</th><th>By</th><th>Comment</th></tr>
{% for s in silences %}<tr><td><code>{{ s.matchers|join(", ") }}</code></td><td>{{ s.status }}</td>
<td>{{ age(now, s.ends_at) }}</td><td>{{ s.created_by }}</td><td>{{ s.comment }}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">none</p>{% endif %}</section>
<section id="workers"><h2>Workers ({{ health.workers|length }})</h2>
{% if health.workers %}<table><tr><th>Worker</th><th>State</th><th>Active tasks</th></tr>
{% for w in health.workers %}<tr><td>{{ w.name }}</td>
<td class="{{ 'healthy' if w.up else 'unhealthy' }}">{{ "up" if w.up else "down" }}</td>
<td>{{ w.active_tasks|number }}</td></tr>{% endfor %}</table>{% else %}<p class="muted">no worker seen</p>{% endif %}
</section>
<section id="queues"><h2>Queues ({{ health.queues|length }})</h2>
{% if health.queues %}<table><tr><th>Queue</th><th>Depth</th></tr>
{% for q in health.queues %}<tr><td>{{ q.name }}</td><td>{{ "missing" if q.missing else q.depth|number }}</td></tr>
{% endfor %}</table>{% else %}<p class="muted">no queue data</p>{% endif %}</section>
<p class="muted">Broker {{ "up" if health.broker.up else "down" }}.
API: <a href="/api/v1/openapi.json">/api/v1</a> · <a href="/metrics">/metrics</a> · <a href="/health/celery">/health/celery</a></p>
</main></body></html>
""")


async def render_dashboard(daemon: Daemon, snap: Snapshot) -> str:
    """The page for this second: health and silences read here on the loop (a few items), the alerts from the
    readers' snapshot, rendered in a worker thread and shared by every reader in the same second."""
    now = time.time()
    silences = []
    if daemon.pipeline is not None:
        silences = [silence_view(s, now) for s in daemon.pipeline.silences.list() if s.status(now) != "expired"]
    values = {
        "style": STYLE, "version": __version__, "now": now, "ready": daemon.first_collection_done.is_set(),
        "health": celery_health(daemon), "silences": silences, "shown": ROWS,
        "age": lambda since, until=None: age(since, now) if until is None else age(since, until),
    }

    def render() -> str:
        firing = [a for a in snap.alerts if a["state"] == "firing"]
        pending = [a for a in snap.alerts if a["state"] == "pending"]
        return PAGE.render(firing=firing, pending=pending, **values)

    return await snap.cached(("dashboard", int(now)), render)
