"""The examples in docs/sources.md load: its configuration blocks make the collectors they describe, and its
rules compile, so the guide does not drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from alertd.collectors.base import CollectorContext
from alertd.collectors.collect import build_collectors
from alertd.config import load_config
from tests.helpers import OFFLINE, ruleset, write
from tests.peers.tls import shared_certificate

DOC = (Path(__file__).resolve().parents[2] / "docs" / "sources.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC, re.S)


def test_the_configuration_examples_make_their_collectors(tmp_path: Path) -> None:
    configs = [b for b in BLOCKS if b.startswith("[collectors.")]
    assert len(configs) == 2
    token = write(tmp_path / "token", "t0ken")

    text = OFFLINE + "\n".join(configs)
    text = text.replace("/etc/alertd/exporter-token", str(token)).replace(
        "/etc/alertd/internal-ca.pem", shared_certificate().ca_file)
    write(tmp_path / "rules" / "r.toml", "")
    loaded = load_config(write(tmp_path / "alertd.toml", text))
    names = sorted(c.name for c in build_collectors(loaded, CollectorContext()))
    assert names == [
        "prometheus:celery_task_failure_ratio", "prometheus:node_filesystem_free_ratio",
        "scrape:celery-exporter", "scrape:flower",
    ]


def test_the_rule_examples_compile(tmp_path: Path) -> None:
    rules = [b for b in BLOCKS if b.startswith("[[groups.rules]]")]
    assert len(rules) == 2
    loaded = ruleset(tmp_path, '[[groups]]\nname = "g"\n' + "\n".join(rules))
    assert [r.name for r in loaded.rules] == ["FlowerSeesFailures", "DiskAlmostFull"]
