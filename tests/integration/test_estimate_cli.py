"""``phoenix estimate`` and ``phoenix bench`` end to end on real files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.cli import main
from core.engine.fleet import generate_fleet
from core.engine.snapshot import write_snapshot
from tests.actors import cli_account


@pytest.fixture(scope="module")
def snapshot_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("snap") / "fleet.csv"
    write_snapshot(generate_fleet(6, 60, seed=3, scrapes=2), path)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_series_out_file_matches_json_count_and_contract(capsys, snapshot_csv, tmp_path):
    out_csv = tmp_path / "series.csv"
    code, out, _ = run_cli(capsys, "estimate", "--pipeline", "process-topk-v1", "--snapshot", str(snapshot_csv),
                           "--json", "--series-out", str(out_csv))
    assert code == 0
    report = json.loads(out)
    with out_csv.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["host_name", "metric", "attributes", "value"]
        rows = list(reader)
    assert report["series_out"] == len(rows) == report["series_out_file"]["rows"]
    for row in rows[:200]:
        attrs = json.loads(row["attributes"])
        assert list(attrs) == sorted(attrs)
        assert not any(k in attrs for k in ("phoenix.keep", "phoenix.rollup"))
        float(row["value"])
    assert any(json.loads(r["attributes"]).get("process.executable.name") == "other" for r in rows)
    assert report["critical"]["coverage_pct"] == 100.0
    assert report["tuned"] is True and report["tuned_params"]["topk"]["memory_bytes"] > 0
    assert report["exporters"]["prometheus"]["bytes_per_point"] > 0


def test_human_summary_and_pipeline_file(capsys, snapshot_csv, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(get_template("process-aggregated-v1").to_yaml())
    code, out, _ = run_cli(capsys, "estimate", "--pipeline", str(path), "--snapshot", str(snapshot_csv))
    assert code == 0
    assert "reduction" in out and "critical" in out and "process-aggregated-v1" in out


def test_critical_file_replaces_the_policy(capsys, snapshot_csv, tmp_path):
    policy = tmp_path / "critical.yaml"
    policy.write_text("rules:\n  - {match: executable_name, pattern: '^bash$', priority: critical}\n")
    code, out, _ = run_cli(capsys, "estimate", "--pipeline", "process-aggregated-v1", "--snapshot",
                           str(snapshot_csv), "--critical-file", str(policy), "--json")
    assert code == 0
    report = json.loads(out)
    import pandas as pd

    snap = pd.read_csv(snapshot_csv)
    last = snap[snap["timestamp"] == snap.groupby("host_name")["timestamp"].transform("max")]
    assert report["critical"]["critical_processes"] == int((last["executable_name"] == "bash").sum())
    assert report["critical"]["coverage_pct"] == 100.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "no-such-template", "--snapshot", "{csv}"], "neither a built-in template"),
        (["--pipeline", "process-topk-v1", "--snapshot", "{missing}"], "does not exist"),
        (["--pipeline", "process-topk-v1", "--snapshot", "{bad}"], "missing column"),
        (["--pipeline", "process-topk-v1", "--snapshot", "{csv}", "--critical-file", "{badpolicy}"], "pattern"),
    ],
)
def test_bad_input_is_one_clear_error_line(capsys, snapshot_csv, tmp_path, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,host_name\n1,a\n")
    badpolicy = tmp_path / "p.yaml"
    badpolicy.write_text("rules:\n  - {match: executable_name, pattern: '(?=x)', priority: critical}\n")
    argv = [a.format(csv=snapshot_csv, missing=tmp_path / "nope.csv", bad=bad, badpolicy=badpolicy) for a in args]
    code, out, err = run_cli(capsys, "estimate", *argv)
    assert code == 1
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_bench_reports_every_template(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "core", "bench", "--nodes", "4", "--procs", "30", "--no-scaling", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["series_in"] == 4 * 30 * 7
    assert set(report["templates"]) == set(TEMPLATE_NAMES)
    for name, t in report["templates"].items():
        assert "error" not in t, (name, t)
        assert t["seconds"] > 0 and t["peak_rss_mb"] > 0 and t["series_out"] >= 0
    assert report["templates"]["process-baseline-v1"]["series_out"] == report["series_in"]


def test_estimate_takes_a_saved_pipeline_version(capsys, snapshot_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOENIX_DATABASE_URL", f"sqlite:///{tmp_path}/phoenix.db")
    cli_account(f"sqlite:///{tmp_path}/phoenix.db", monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_GITOPS_REPO", str(tmp_path / "gitops"))
    graph = get_template("process-aggregated-v1").to_dict()
    graph["name"] = "my-rollup"
    src = tmp_path / "my-rollup.json"
    src.write_text(json.dumps(graph))
    assert run_cli(capsys, "db", "upgrade")[0] == 0
    assert run_cli(capsys, "pipeline", "import", str(src), "-m", "first")[0] == 0

    code, out, _ = run_cli(capsys, "estimate", "--pipeline", "my-rollup@1", "--snapshot", str(snapshot_csv), "--json")
    assert code == 0
    saved = json.loads(out)
    code, out, _ = run_cli(capsys, "estimate", "--pipeline", "process-aggregated-v1", "--snapshot",
                           str(snapshot_csv), "--json")
    assert saved["series_out"] == json.loads(out)["series_out"]

    code, _, err = run_cli(capsys, "estimate", "--pipeline", "my-rollup@7", "--snapshot", str(snapshot_csv))
    assert code == 1 and "my-rollup" in err


def test_new_relic_is_priced_on_measured_otlp_bytes_even_without_an_otlphttp_exporter(capsys, snapshot_csv):
    from core.catalog.templates import get_template as template
    from core.engine.encoding import bytes_per_point
    from core.engine.estimate import estimate
    from core.engine.snapshot import load_snapshot

    result = estimate(template("process-topk-v1"), load_snapshot(snapshot_csv))
    report = result.report
    assert {e["type"] for e in report["exporters"].values()} == {"prometheus"}
    nr = next(c for c in report["cost"]["cards"] if c["card_id"].startswith("new-relic"))
    assert nr["after_usd"] is not None and nr["note"] == ""
    # what it priced is the OTLP size of the exported series, well below the Prometheus text size
    priced = nr["details"]["after"]["bytes_per_month"]
    prom_month = report["exporters"]["prometheus"]["bytes_per_month"]
    from core.engine.estimate import _series_sample

    exported = _series_sample(result.evaluation, None)  # the exported series, one column per attribute
    ratio = bytes_per_point(exported, "otlp") / bytes_per_point(exported, "prometheus")
    assert ratio < 1
    assert priced / prom_month == pytest.approx(ratio, rel=0.1)


def test_text_report_prices_each_card_before_and_after(capsys, snapshot_csv):
    code, out, _ = run_cli(capsys, "estimate", "--pipeline", "process-topk-v1", "--snapshot", str(snapshot_csv))
    assert code == 0
    card_lines = [line for line in out.splitlines() if line.startswith("  ") and "→" in line]
    assert any(line.lstrip().startswith("Grafana Cloud") for line in card_lines)
    assert all("saves $" in line or "[" in line for line in card_lines) and len(card_lines) >= 4
    assert "{" not in out  # no raw dicts in the human-readable report


def test_adaptive_summary_shows_achieved_vs_budget_per_host(capsys, snapshot_csv):
    code, out, _ = run_cli(capsys, "estimate", "--pipeline", "process-adaptive-v1", "--snapshot", str(snapshot_csv),
                           "--json")
    assert code == 0
    hosts = json.loads(out)["budget"]["adaptive"]["hosts"]
    code, text, _ = run_cli(capsys, "estimate", "--pipeline", "process-adaptive-v1", "--snapshot", str(snapshot_csv))
    assert code == 0 and "achieved vs budget" in text
    rows = [line for line in text.splitlines() if line.startswith("  adaptive ")]
    assert len(rows) == len(hosts) == 6
    for row in rows:
        _node, host, base, budget, achieved, dev = row.split()[:6]
        h = hosts[host]
        # a host held at a limit says which, after its figures (this fleet: one at the floor)
        assert row.endswith(f"  {h['limit']}") if h.get("limit") else len(row.split()) == 6
        assert float(base.replace(",", "")) == h["baseline_series"] > 0
        assert abs(float(budget.replace(",", "")) - h["budget"]) <= 0.5
        assert float(achieved.replace(",", "")) == h["achieved"] <= h["baseline_series"]
        assert dev == f"{h['deviation_pct']:+.1f}%"
