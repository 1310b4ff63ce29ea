"""The shipped Prometheus config and rules pass promtool (check + unit tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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
