"""The Recommend page as a user meets it: upload a snapshot and rule files or dashboards, read
the verdicts, download the pipeline and open it in the builder (docs/recommend.md).

The expected figures come from ``phoenix recommend --json`` on the same files, run against the
server's own database and Settings (so the same critical policy and price cards), in the
background while the browser works. A rules file that is not YAML is one clear line on the
page, and the files already uploaded stay for the next try.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from core.domain.pipeline import Pipeline
from tests.e2e.conftest import ROOT, USERS, login, no_exceptions, shot, wait_idle

pytestmark = pytest.mark.e2e
DATA = ROOT / "tests" / "data" / "recommend"
COLUMNS = ("status", "origin", "reason", "processes", "expr")
BROKEN = "groups:\n  - name: cpu\n    rules: [ {alert: A, expr: 'sum(rate(process_cpu_time_seconds_total[5m]))'} ]\n  - {name: y\n"


def _cli(server, *args: str) -> subprocess.Popen[str]:
    """``phoenix recommend … --json`` as the e2e viewer, started now, read with ``_report``."""
    installed = os.environ.get("PHOENIX_E2E_PHOENIX")
    cmd = [installed] if installed else [sys.executable, "-c", "from core.cli import main; raise SystemExit(main())"]
    env = {**server.env, "PHOENIX_USER": USERS["viewer"]}
    return subprocess.Popen([*cmd, "recommend", *args, "--json"], cwd=server.data_dir if installed else ROOT, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _report(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out)


def _uploader(page, label: str):
    return page.locator("[data-testid='stFileUploader']").filter(has_text=label)


def _grid_rows(page, want: int) -> set[tuple[str, ...]]:
    """Every row of the queries table, scrolling the grid: it renders only the rows in view."""
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stDataFrame] [role=gridcell]').length > 0")
    rows: set[tuple[str, ...]] = set()
    for _ in range(10):
        for row in grid.locator("[role='row']").all():
            cells = tuple(row.locator("[role='gridcell']").all_inner_texts())
            if len(cells) == len(COLUMNS):
                rows.add(cells)
        if len(rows) >= want:
            break
        grid.hover()
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(300)
    return rows


def test_recommend_page_shows_what_the_service_computes(page, server, tmp_path: Path) -> None:
    snapshot, rules = str(DATA / "snapshot.csv"), str(DATA / "rules.yml")
    dashboards = tmp_path / "dashboards"  # the dashboard alone: the page takes only .json files
    dashboards.mkdir()
    shutil.copy(DATA / "dashboards" / "processes.json", dashboards)
    broken = tmp_path / "alerts.yml"
    broken.write_text(BROKEN)
    pipeline_out = tmp_path / "cli-pipeline.yaml"
    want_good = _cli(server, "--snapshot", snapshot, "--rules", rules, "--dashboards", str(dashboards),
                     "--pipeline-out", str(pipeline_out))
    want_broken = _cli(server, "--snapshot", snapshot, "--rules", str(broken))

    login(page, server, "viewer", "recommend")
    recommend = page.get_by_role("button", name="Recommend", exact=True)
    metrics = page.locator("[data-testid='stMetric']")
    kept_metric = metrics.filter(has_text="Queries kept working").locator("[data-testid='stMetricValue']")

    # 1. A rules file that is not YAML: the page says which file and why, and that there is nothing
    # to recommend from; no traceback, no figures, no pipeline to download.
    _uploader(page, "Process snapshot").locator("input[type=file]").set_input_files(snapshot)
    _uploader(page, "Prometheus rule files").locator("input[type=file]").set_input_files(str(broken))
    recommend.click()
    expect(page.get_by_text("nothing to recommend from")).to_be_visible(timeout=90_000)
    wait_idle(page)
    bad = _report(want_broken)
    assert len(bad["problems"]) == 1 and "alerts.yml is not valid YAML" in bad["problems"][0], bad["problems"]
    assert bad["queries"] == [], bad["queries"]
    expect(page.locator("[data-testid='stAlert']").filter(has_text=bad["problems"][0])).to_be_visible()
    no_exceptions(page)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    expect(metrics).to_have_count(0)
    expect(page.get_by_role("button", name="Download pipeline (YAML)")).to_have_count(0)

    # 2. Swap the broken file for the real rules and add a dashboard; the snapshot is still there.
    rules_up = _uploader(page, "Prometheus rule files")
    rules_up.locator("[data-testid='stFileChip']", has_text="alerts.yml").get_by_test_id("stFileChipDeleteBtn").click()
    expect(rules_up.get_by_text("alerts.yml")).to_have_count(0)
    rules_up.locator("input[type=file]").set_input_files(rules)
    _uploader(page, "Grafana dashboards").locator("input[type=file]").set_input_files(str(dashboards / "processes.json"))
    expect(_uploader(page, "Process snapshot").get_by_text("snapshot.csv")).to_be_visible()
    want = _report(want_good)
    c, e = want["counts"], want["estimate"]
    assert c["kept"] and c["not kept"] and c["error"], c  # the test data has a verdict of each kind
    recommend.click()
    expect(kept_metric).to_have_text(f"{c['kept']:,}", timeout=90_000)
    wait_idle(page)
    no_exceptions(page)
    expect(page.locator("[data-testid='stAlert']").filter(has_text="alerts.yml")).to_have_count(0)
    expect(page.get_by_text("nothing to recommend from")).to_have_count(0)

    def metric(label: str):
        return metrics.filter(has_text=label)

    expect(metric("Queries kept working").locator("[data-testid='stMetricDelta']")).to_have_text(
        f"{c['not kept']:,} not kept")
    expect(metric("Processes kept individually").locator("[data-testid='stMetricValue']")).to_have_text(
        f"{want['processes']['referenced']:,}")
    series = metric("Series")
    expect(series.locator("[data-testid='stMetricValue']")).to_have_text(f"{e['series_out']:,}")
    expect(series.locator("[data-testid='stMetricDelta']")).to_have_text(
        f"-{e['reduction_pct']:.1f}% of {e['series_in']:,}")
    assert e["series_out"] < e["series_in"], e
    crit = e["critical"]
    expect(metric("Critical processes visible").locator("[data-testid='stMetricValue']")).to_have_text(
        f"{crit['covered']:,} / {crit['critical_processes']:,}")

    # Every query, kept or not, with the service's reason and process count.
    expected = {(q["status"], q["origin"], q["reason"], str(q["processes"]), q["expr"]) for q in want["queries"]}
    assert _grid_rows(page, len(expected)) == expected
    expect(page.get_by_text(", ".join(want["labels"]))).to_be_visible()
    shot(page, "recommend", page.get_by_role("heading", name="Queries"))

    # 3. The pipeline: the download is the CLI's --pipeline-out, and the builder opens it.
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download pipeline (YAML)").click()
    downloaded = tmp_path / dl.value.suggested_filename
    dl.value.save_as(downloaded)
    assert downloaded.name == f"{want['pipeline']['name']}.yaml"
    assert yaml.safe_load(downloaded.read_text()) == yaml.safe_load(pipeline_out.read_text()) == want["pipeline"]
    assert Pipeline.from_text(downloaded.read_bytes(), source=downloaded.name).name == "process-recommended-v1"

    page.get_by_role("link", name="Pipeline Builder").click()  # the sidebar: same session, still signed in
    wait_idle(page)
    expect(page.get_by_label("Pipeline name", exact=True)).not_to_have_value(want["pipeline"]["name"])
    page.get_by_role("button", name="Import / export YAML").click()
    page.locator("[data-testid='stFileUploader']").filter(has_text="Import pipeline").locator(
        "input[type=file]").set_input_files(str(downloaded))
    page.get_by_role("button", name="Import", exact=True).click()
    wait_idle(page)
    no_exceptions(page)
    # The import reruns the page (twice: it loads, then redraws under the imported name, whose
    # name field has a new key), so between runs the old field and the new one can both be
    # there: wait until one field is left and it holds the imported name.
    def name_fields() -> list[str]:
        try:
            return [f.input_value(timeout=1000) for f in page.get_by_label("Pipeline name", exact=True).all()]
        except PlaywrightError:  # a field went away mid-read: the rerun is still going
            return []

    deadline = time.monotonic() + 30
    while name_fields() != [want["pipeline"]["name"]]:
        assert time.monotonic() < deadline, f"the builder's name fields after the import: {name_fields()}"
        page.wait_for_timeout(200)
    no_exceptions(page)
    expect(page.get_by_text("Pipeline is valid.")).to_be_visible()
