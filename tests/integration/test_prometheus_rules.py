"""The shipped Prometheus config and rules pass promtool (check + unit tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROM_DIR = Path(__file__).resolve().parents[2] / "k8s" / "prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str, cwd: Path = PROM_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_config_is_valid():
    r = promtool("check", "config", "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_are_valid():
    r = promtool("check", "rules", "rules.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "7 rules found" in r.stdout


def test_rules_behave_on_known_series():
    r = promtool("test", "rules", "rules_test.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_phoenix_alerts_are_valid_and_each_has_severity_runbook_and_for():
    r = promtool("check", "rules", "phoenix-alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    rules = [rule for g in yaml.safe_load((PROM_DIR / "phoenix-alerts.yml").read_text())["groups"] for rule in g["rules"]]
    severities = {rule["alert"]: rule["labels"]["severity"] for rule in rules}
    assert severities == {
        "PhoenixDown": "critical", "PhoenixDatabaseUnreachable": "critical", "PhoenixCollectorCrashLooping": "critical",
        "PhoenixSchedulerLagging": "warning", "PhoenixExperimentFailed": "warning", "PhoenixApiLatencyHigh": "warning",
        "PhoenixPromotionDone": "info",
    }  # fmt: skip
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]


def test_every_phoenix_alert_is_unit_tested_firing_and_silent():
    """Each alert has a promtool case where it fires and one where it stays silent."""
    tests = yaml.safe_load((PROM_DIR / "phoenix-alerts_test.yml").read_text())["tests"]
    cases = [case for t in tests for case in t.get("alert_rule_test", [])]
    alerts = [rule["alert"] for g in yaml.safe_load((PROM_DIR / "phoenix-alerts.yml").read_text())["groups"]
              for rule in g["rules"]]  # fmt: skip
    for alert in alerts:
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c.get("exp_alerts") for c in mine), f"{alert}: no case where it fires"
        assert any(not c.get("exp_alerts") for c in mine), f"{alert}: no case where it stays silent"


def test_phoenix_alerts_behave_on_known_series():
    r = promtool("test", "rules", "phoenix-alerts_test.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@pytest.mark.parametrize(
    "broken",
    [
        "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: count by (a (b)\n",
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: soon\n",
    ],
)
def test_promtool_really_rejects_bad_rules(tmp_path, broken):
    f = tmp_path / "bad.yml"
    f.write_text(broken)
    assert promtool("check", "rules", str(f), cwd=tmp_path).returncode != 0
