"""The Prometheus alerting rules (``config/prometheus/lapor-alerts.yml``) against the code.

- ``promtool check rules`` parses every expression and template;
- ``promtool test rules`` runs ``lapor-alerts.test.yml``: each alert fires on the series that
  should raise it, with its labels and rendered annotations, and not before;
- every alert has a scenario there, every metric an expression reads is one the gateway exports
  (a renamed metric would leave an alert that never fires), and every runbook link names a
  section of ``docs/runbook.md``.

promtool comes with Debian's ``prometheus`` package (``scripts/install-system-packages``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from gateway import bootstrap
from gateway.settings import load_settings
from tests.conftest import CONFIG, TEST_KEYS

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "lapor-alerts.yml"
SCENARIOS = Path(__file__).resolve().parent / "lapor-alerts.test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
METRIC = re.compile(r"\blapor_[a-z_]+\b")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run scripts/install-system-packages (Debian prometheus)"
    return subprocess.run([found, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alerts() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", str(RULES), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


def test_every_alert_fires_as_its_scenario_says() -> None:
    done = promtool("test", "rules", SCENARIOS.name, cwd=SCENARIOS.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_scenario_that_makes_it_fire() -> None:
    tests = yaml.safe_load(SCENARIOS.read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert firing == {rule["alert"] for rule in alerts()}


async def test_the_rules_read_only_metrics_the_gateway_exports(tmp_path: Path) -> None:
    settings = load_settings(
        CONFIG,
        environ={},
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'lapor.db'}"},
            "storage": {"file_store": str(tmp_path / "files")},
            "security": TEST_KEYS,
        },
    )
    gateway = bootstrap.build(settings)  # connects to nothing
    try:
        exposition = generate_latest(gateway.metrics.registry).decode()
    finally:
        await gateway.close()
    exported: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            exported.add(name)
            if kind == "histogram":
                exported |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    used = {name for rule in alerts() for name in METRIC.findall(str(rule["expr"]))}
    assert used, "the rules read the gateway's metrics"
    assert used <= exported, sorted(used - exported)


def test_every_runbook_link_names_a_section_of_the_runbook() -> None:
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in alerts():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        link = str(annotations["runbook_url"])
        assert link.startswith("docs/runbook.md#"), link
        assert link.split("#", 1)[1] in anchors, (rule["alert"], sorted(anchors))


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: str(r["alert"]))
def test_every_alert_says_how_bad_it_is_and_what_happened(rule: dict[str, object]) -> None:
    labels, annotations = rule["labels"], rule["annotations"]
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    assert labels["severity"] in ("critical", "warning")
    assert annotations["summary"]
