"""Problems and test results in, the formats that CI servers read out: JSON, GitHub workflow commands, JUnit XML.

``alertd check`` prints its errors as text (one line each, ``str(ConfigError)``), as JSON, or as GitHub Actions
``::error`` commands, which show each problem on its line in a pull request. ``alertd test --junit-xml`` writes the
JUnit XML that Jenkins, GitLab, GitHub test-report actions and most other CI servers read.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from alertd.errors import ConfigError
from alertd.ruletest.runner import FileRun

# Characters that XML 1.0 cannot carry at all, even escaped; a test name in a TOML file may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def check_json(errors: Sequence[ConfigError]) -> str:
    """A JSON list of {file, line, rule, field, message}; an absent part is null."""
    return json.dumps(
        [{"file": e.file, "line": e.line, "rule": e.rule, "field": e.field, "message": e.message} for e in errors],
        indent=2,
    )


def _escape_data(text: str) -> str:
    # The escapes of GitHub's workflow commands: a message is one line, so newlines travel as %0A.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _workspace_path(path: str) -> str:
    """GitHub places an annotation by a path relative to the checkout; make an absolute one relative to here."""
    if os.path.isabs(path):
        relative = os.path.relpath(path)
        if not relative.startswith(os.pardir):
            return relative
    return path


def github_annotations(errors: Sequence[ConfigError], title: str = "alertd check") -> str:
    """One ``::error file=F,line=L,title=T::message`` line per problem (file and line when known)."""
    lines = []
    for e in errors:
        props = []
        if e.file:
            props.append(f"file={_escape_property(_workspace_path(e.file))}")
            if e.line is not None:
                props.append(f"line={e.line}")
        props.append(f"title={_escape_property(title)}")
        message = ": ".join(p for p in (e.rule, f"{e.field}: {e.message}" if e.field else e.message) if p)
        lines.append(f"::error {','.join(props)}::{_escape_data(message)}")
    return "\n".join(lines)


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _failure_message(failures: Sequence[str]) -> str:
    first = failures[0].splitlines()[0] if failures and failures[0] else "failed"
    return _xml(first if len(failures) < 2 else f"{first} (and {len(failures) - 1} more)")


def junit_xml(runs: Sequence[FileRun]) -> bytes:
    """A ``<testsuites>`` document: one ``<testsuite>`` per test file, one ``<testcase>`` per test in it.

    A test file that cannot be loaded is one testcase with an ``<error>``; a failed test has a ``<failure>``
    whose message is the first line of its first problem and whose text is every problem in full.
    """
    root = ET.Element("testsuites", name="alertd test")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    seconds = 0.0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    for run in runs:
        errors = len(run.results) if run.spec is None else 0
        failures = 0 if run.spec is None else sum(not r.ok for r in run.results)
        suite_seconds = sum(r.seconds for r in run.results)
        path = _xml(run.path)
        suite = ET.SubElement(
            root, "testsuite", name=path, tests=str(len(run.results)), failures=str(failures),
            errors=str(errors), skipped="0", time=f"{suite_seconds:.6f}", timestamp=stamp,
            hostname=socket.gethostname(), file=path,
        )
        for result in run.results:
            case = ET.SubElement(
                suite, "testcase", name=_xml(result.name), classname=path, file=path, time=f"{result.seconds:.6f}",
            )
            if not result.ok:
                kind = "error" if run.spec is None else "failure"
                problem = ET.SubElement(
                    case, kind, message=_failure_message(result.failures),
                    type="ConfigError" if run.spec is None else "ExpectationFailed",
                )
                problem.text = _xml("\n\n".join(result.failures))
        totals["tests"] += len(run.results)
        totals["failures"] += failures
        totals["errors"] += errors
        seconds += suite_seconds
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", f"{seconds:.6f}")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
