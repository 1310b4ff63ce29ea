"""bench/api.py end to end at tiny scale, SQLite only: it runs and reports the documented shape (no timings asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = {"list_first", "list_later", "list_state", "get", "create", "cancel"}


@pytest.mark.slow
def test_api_bench_runs_end_to_end_and_reports_every_operation(tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "api.py"), "--experiments", "120", "--requests", "5",
                          "--warmup", "1", "--databases", "sqlite", "--json", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert json.loads(run.stdout) == report
    assert {"cpu_model", "cpus", "python"} <= set(report["machine"])
    assert report["params"]["experiments"] == 120 and report["params"]["requests"] == 5
    assert list(report["databases"]) == ["sqlite"]
    sqlite = report["databases"]["sqlite"]
    assert sqlite["seed"]["experiments"] == 120 and sqlite["seed"]["samples"] > 0
    assert set(sqlite["operations"]) == OPERATIONS
    for name, op in sqlite["operations"].items():
        assert op["n"] == 5, name
        assert 0 < op["p50_ms"] <= op["p95_ms"] <= op["p99_ms"] <= op["max_ms"], name
        assert op["target_p95_ms"] == (100.0 if name in {"create", "cancel"} else 50.0)
        assert op["meets_target"] == (op["p95_ms"] <= op["target_p95_ms"])
    assert sqlite["meets_targets"] == all(op["meets_target"] for op in sqlite["operations"].values())


def test_api_bench_refuses_an_unknown_database() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "api.py"), "--databases", "oracle"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "--databases" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_phoenix_bench_api_runs_the_same_benchmark() -> None:
    run = subprocess.run([sys.executable, "-m", "core", "bench", "api", "--experiments", "100", "--requests", "2",
                          "--databases", "sqlite", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["params"]["experiments"] == 100 and report["params"]["requests"] == 2
    assert set(report["databases"]["sqlite"]["operations"]) == OPERATIONS


def test_phoenix_bench_without_api_is_still_the_engine_bench() -> None:
    from core.cli import build_parser

    args = build_parser().parse_args(["bench", "--nodes", "2"])
    assert args.what == "engine" and args.nodes == 2
