"""The ``alertd`` command: parse arguments, load settings, call one function. No logic lives here."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

DEFAULT_CONFIG = "alertd.toml"
config_option = click.option(
    "-c", "--config", "config_path", default=DEFAULT_CONFIG, show_default=True, envvar="ALERTD_CONFIG",
    type=click.Path(dir_okay=False), help="configuration file",
)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from alertd.version import version_text

    click.echo(version_text())
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show alertd's version and its installed plugins' versions, then exit.")
def main() -> None:
    """alertd: alerting for Celery deployments, configured from files in version control."""


@main.command()
@config_option
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
    help="text: one line per problem; json: a list of {file, line, rule, field, message}; "
    "github: ::error workflow commands that GitHub Actions shows on the line in a pull request",
)
def check(config_path: str, output_format: str) -> None:
    """Validate the configuration and every rule file; one line per problem."""
    from alertd.check import check as run_check
    from alertd.reports import check_json, github_annotations

    report = run_check(config_path)
    if output_format == "json":
        click.echo(check_json(report.errors))
    elif output_format == "github" and report.errors:
        click.echo(github_annotations(report.errors))
    elif output_format == "text":
        for err in report.errors:
            click.echo(str(err), err=True)
    if not report.ok:
        click.echo(f"{len(report.errors)} problem(s) found", err=True)
        sys.exit(1)
    rules = report.rules.rules if report.rules else []
    files = report.rules.files if report.rules else []
    click.echo(f"{config_path}: ok: {len(rules)} rules in {len(files)} files", err=output_format == "json")


@main.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-v", "--verbose", is_flag=True, help="list every test, not only failures")
@click.option("--junit-xml", "junit_path", type=click.Path(dir_okay=False, writable=True),
              help="also write the results to this file as JUnit XML, for CI servers")
@click.option("--coverage", is_flag=True, help="list the rules that no test names")
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None,
              help="with --coverage (implied): exit 1 when fewer than this percentage of the rules have a test")
@click.option("-c", "--config", "config_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="with --coverage: also count this configuration's rules, which no test file may load")
def test_cmd(
    paths: tuple[str, ...], verbose: bool, junit_path: str | None, coverage: bool, fail_under: float | None,
    config_path: str | None,
) -> None:
    """Run rule unit tests (files, or folders searched for *_test.toml / *_test.yaml)."""
    from alertd.ruletest.runner import find_test_files, run_file
    from alertd.templating.env import make_environment

    files = find_test_files(paths)
    if not files:
        click.echo("no test files found (they are named *_test.toml or *_test.yaml)", err=True)
        sys.exit(1)
    env = make_environment()
    failed = passed = 0
    runs = []
    for path in files:
        run = run_file(path, env)
        runs.append(run)
        for result in run.results:
            if result.ok:
                passed += 1
                if verbose:
                    click.echo(f"PASS {path}: {result.name}")
            else:
                failed += 1
                click.echo(f"FAIL {path}: {result.name}")
                for failure in result.failures:
                    click.echo("  " + failure.replace("\n", "\n  "))
    if junit_path:
        from alertd.reports import junit_xml

        try:
            Path(junit_path).write_bytes(junit_xml(runs))
        except OSError as exc:
            raise click.ClickException(f"cannot write the JUnit file: {exc}") from exc
    click.echo(f"{passed} passed, {failed} failed")
    code = 1 if failed else 0
    if coverage or fail_under is not None:
        from alertd.errors import ConfigError
        from alertd.ruletest.coverage import configured_rules, rule_coverage

        try:
            also = configured_rules(config_path, env) if config_path else []
        except ConfigError as exc:
            raise click.ClickException(f"{exc}\n(alertd check -c {config_path} lists every problem)") from exc
        cov = rule_coverage(runs, also)
        for rule in cov.untested:
            click.echo(f"untested: {rule}")
        click.echo(f"coverage: {cov.tested} of {cov.total} rules have a test ({cov.percent:.0f}%)")
        if fail_under is not None and cov.percent < fail_under:
            click.echo(f"coverage {cov.percent:.1f}% is under --fail-under {fail_under:g}", err=True)
            code = 1
    sys.exit(code)


@main.command("config")
@config_option
def show_config(config_path: str) -> None:
    """Print the effective configuration as JSON, with secrets redacted."""
    from alertd.config import load_config
    from alertd.errors import ConfigError

    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(json.dumps(loaded.redacted(), indent=2, sort_keys=True))


@main.command()
@config_option
@click.option("--once", is_flag=True, help="run one collection and evaluation, then exit")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default=None,
    help="text for people, json for one JSON object per line (default: [logging] format)",
)
def run(config_path: str, once: bool, log_format: str | None) -> None:
    """Run the daemon: collect, evaluate and notify on schedule; serve the API, health checks and dashboard.

    SIGHUP reloads the configuration and rules; SIGTERM or SIGINT stops (a second one exits at once).
    """
    from alertd.daemon import run_daemon
    from alertd.errors import ConfigError, StateStoreError

    try:
        code = run_daemon(config_path, once=once, log_format=log_format)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except StateStoreError as exc:
        click.echo(f"{exc} (alertd state check says more; alertd state restore puts a backup back)", err=True)
        sys.exit(1)
    sys.exit(code)


@main.group("state")
def state_cmd() -> None:
    """Check, back up and restore the state file ([state] url) of a SQLite state store."""


def _state_file(config_path: str) -> Path:
    from alertd.config import load_config
    from alertd.errors import AlertdError
    from alertd.state.base import sqlite_path

    try:
        path = sqlite_path(load_config(config_path).state_url)
    except AlertdError as exc:
        raise click.ClickException(str(exc)) from exc
    if path is None:
        raise click.ClickException("[state] url is memory://: there is no state file")
    return path


def _state_report(run: Callable[[], Any]) -> None:
    from alertd.errors import StateStoreError

    try:
        report = run()
    except StateStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    for fact in report.facts:
        click.echo(f"{report.path}: {fact}")
    for problem in report.problems:
        click.echo(f"{report.path}: {problem}", err=True)
    sys.exit(0 if report.ok else 1)


@state_cmd.command("check")
@config_option
def state_check(config_path: str) -> None:
    """Whether the state file is whole and usable, what it holds, and whether an alertd has it open.

    Safe while alertd runs. Exits 1 when the file is damaged or was written by a newer alertd.
    """
    from alertd.state import maintenance

    path = _state_file(config_path)
    _state_report(lambda: maintenance.check(path))


@state_cmd.command("backup")
@config_option
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
def state_backup(config_path: str, destination: Path) -> None:
    """Copy the state file to DESTINATION (a new file, mode 0600), consistently, while alertd runs."""
    from alertd.state import maintenance

    path = _state_file(config_path)
    _state_report(lambda: maintenance.backup(path, destination))


@state_cmd.command("restore")
@config_option
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def state_restore(config_path: str, source: Path) -> None:
    """Put the backup SOURCE in place of the state file; stop alertd first.

    SOURCE is checked before anything changes; the file it replaces is kept as <file>.replaced-<unix time>.
    """
    from alertd.state import maintenance

    path = _state_file(config_path)
    _state_report(lambda: maintenance.restore(path, source))


@main.command()
@config_option
@click.option("--collector", "only", multiple=True, help="run only this collector (repeatable)")
def collect(config_path: str, only: tuple[str, ...]) -> None:
    """Run every collector once, print every sample (name, labels, value) and exit."""
    import asyncio

    from alertd.collectors.collect import collect_once, format_runs
    from alertd.config import load_config
    from alertd.errors import ConfigError

    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    unknown = set(only) - set(loaded.collector_settings)
    if unknown:
        click.echo(f"unknown or disabled collector(s): {', '.join(sorted(unknown))}", err=True)
        sys.exit(1)
    runs = asyncio.run(collect_once(loaded, set(only) or None))
    click.echo(format_runs(runs))
    sys.exit(0 if all(r.ok for r in runs) else 1)


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option("--timeout", default=2.0, show_default=True, help="seconds to wait for the workers' replies")
def inspect(config_path: str, as_json: bool, timeout: float) -> None:
    """Show the workers' state: active, reserved, scheduled and registered tasks, and stats."""
    import asyncio

    from alertd.collectors.collect import make_context
    from alertd.collectors.workers import inspect_workers, parse_inspect, render_table
    from alertd.config import load_config
    from alertd.errors import ConfigError

    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    context = make_context(loaded)
    replies = asyncio.run(inspect_workers(context, timeout))
    _samples, snapshot = parse_inspect(replies, context.clock.now())
    if as_json:
        click.echo(json.dumps(snapshot, indent=2, sort_keys=True, default=str))
    else:
        click.echo(render_table(snapshot))
    sys.exit(0 if snapshot else 1)


@main.command("plugins")
def plugins_cmd() -> None:
    """List every notifier and collector with the distribution (and version) that provides it."""
    from alertd.errors import ConfigError
    from alertd.plugins import installed, make_plugin_manager

    try:
        entries = installed(make_plugin_manager())
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    width = max((len(e.type_name) for e in entries), default=4)
    for e in entries:
        click.echo(f"{e.kind:9} {e.type_name:{width}}  {e.distribution} {e.version}  ({e.module})")


@main.command("notify")
@config_option
@click.option("--receiver", "-r", required=True, help="the receiver to send the test notification through")
def notify_cmd(config_path: str, receiver: str) -> None:
    """Send a test notification through one receiver; print its status, latency and error."""
    import asyncio

    from alertd.config import load_config
    from alertd.errors import ConfigError
    from alertd.notify.pipeline import send_test_notification

    try:
        report = asyncio.run(send_test_notification(load_config(config_path), receiver))
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    status = "delivered" if report.ok else "FAILED"
    click.echo(f"{report.receiver} ({report.type}): {status} in {report.latency * 1000:.1f} ms")
    for problem in report.template_errors:
        click.echo(f"  template problem: {problem}", err=True)
    if report.error:
        click.echo(f"  error: {report.error}", err=True)
    sys.exit(0 if report.ok else 1)


# The clients of a running alertd's HTTP API register themselves on ``main``.
from alertd import cli_api  # noqa: E402, F401

if __name__ == "__main__":
    main()
