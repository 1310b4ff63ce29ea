"""``phoenix experiment report`` end to end on a SQLite file: csv, html, pdf, clear errors."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest

from core.analysis.verdict import analyze_samples
from core.bootstrap import bootstrap
from core.cli import main
from core.domain.experiment import utcnow
from core.domain.samples import MeasurementSample
from core.settings import Settings
from tests.actors import ADMIN, cli_account


@pytest.fixture
def exp_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOENIX_DATABASE_URL", f"sqlite:///{tmp_path}/phoenix.db")
    cli_account(f"sqlite:///{tmp_path}/phoenix.db", monkeypatch)  # the CLI acts as a stored account
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    svc = bootstrap(Settings.from_env())
    exp = svc.experiments.create(ADMIN, name="cli report", baseline="process-baseline-v1", candidate="process-aggregated-v1",
                                 duration_s=20, interval_s=2)
    t0 = utcnow()
    samples = [MeasurementSample(exp.id, v, t0 + timedelta(seconds=2 * i), series=n - i, datapoints=(n - i) * 3,
                                 bytes=n * 70, critical_coverage_pct=100.0)
               for i in range(8) for v, n in (("baseline", 2000), ("candidate", 500))]
    with svc.uow() as uow:
        e = uow.experiments.get(exp.id)
        uow.samples.add_many(samples)
        for step in (e.start, e.mark_running, e.begin_analysis):
            step(actor="test")
        e.complete(analyze_samples(samples, e.criteria, interval_s=2.0), actor="test")
        uow.experiments.save(e)
        uow.commit()
    svc.close()
    return exp.id


def test_report_formats(exp_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "report", exp_id, "--format", "csv", "--out", str(tmp_path / "s.csv")]) == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    records = [r["record"] for r in rows]
    # one verdict row, one row per criterion, then one row per stored sample (16)
    assert records[0] == "verdict" and records.count("verdict") == 1 and records.count("sample") == 16
    assert set(records) == {"verdict", "criterion", "sample"} and records.count("criterion") >= 1
    assert all(r["experiment_id"] == exp_id and r["verdict"] == "PROMOTE" for r in rows)
    assert main(["experiment", "report", exp_id, "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Verdict: PROMOTE" in html and "cli report" in html and "process-aggregated-v1" in html
    assert "transform/" in html  # the baseline → candidate collector YAML diff
    assert main(["experiment", "report", exp_id, "--out", str(tmp_path / "r.pdf")]) == 0
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")


def test_report_errors_are_one_line(exp_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "report", "exp-missing", "--out", str(tmp_path / "x.html")]) == 1
    assert main(["experiment", "report", exp_id, "--out", str(tmp_path / "x.docx")]) == 1
    assert main(["experiment", "report", exp_id, "--format", "pdf", "--out", "-"]) == 1
    err = capsys.readouterr().err
    assert "exp-missing" in err and "--format csv|html|pdf" in err and "PDF report needs" in err
    assert "Traceback" not in err
