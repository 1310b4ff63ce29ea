"""Reports from an in-memory experiment: CSV rows, self-contained HTML, a real PDF."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from core.analysis.verdict import analyze_samples
from core.domain.experiment import Experiment
from core.domain.samples import MeasurementSample
from core.reports import build, render


def _price(series: float, dpm: float, bytes_month: float) -> float:
    return series / 1000 * 6.5


def _exp() -> tuple[Experiment, list[MeasurementSample]]:
    exp = Experiment.create(name="topk trial", baseline="process-baseline-v1", candidate="process-topk-v1")
    t0 = datetime(2026, 11, 28, tzinfo=UTC)
    samples = [MeasurementSample(exp.id, v, t0 + timedelta(seconds=5 * i), series=s + i % 3, datapoints=(s + i % 3) * 6,
                                 bytes=s * 90, collector_cpu_pct=1.5, collector_rss_mb=40.0, critical_coverage_pct=100.0)
               for i in range(6) for v, s in (("baseline", 1400), ("candidate", 224))]
    exp.result = analyze_samples(samples, exp.criteria, interval_s=5.0, prices={"Grafana Cloud Pro": _price})
    return exp, samples


def test_csv_has_every_sample() -> None:
    exp, samples = _exp()
    rows = list(csv.DictReader(io.StringIO(render(build(exp, samples), "csv").decode())))
    assert len(rows) == 12
    assert {r["variant"] for r in rows} == {"baseline", "candidate"}
    assert rows[1]["series"] == "224" and rows[0]["experiment_id"] == exp.id


def test_html_is_self_contained_with_verdict_reasons_cost_and_diff() -> None:
    exp, samples = _exp()
    html = render(build(exp, samples, "a: 1\n", "a: 2\n"), "html").decode()
    assert f"Verdict: {exp.result['verdict']}" in html
    for reason in exp.result["reasons"]:
        assert reason.replace("≥", "&ge;") in html or reason in html
    assert "Grafana Cloud Pro" in html
    assert "-a: 1" in html and "+a: 2" in html
    assert re.search(r"<script[^>]*\bsrc=", html) is None  # nothing fetched: plotly.js is inline
    assert len(html) > 1_000_000
    assert html.count("Plotly.newPlot") >= 2  # charts rendered with the inlined plotly.js


def test_pdf_is_a_pdf_with_the_verdict() -> None:
    exp, samples = _exp()
    pdf = render(build(exp, samples), "pdf")
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 20_000  # includes the chart images


def test_unknown_format_is_a_clear_error() -> None:
    import pytest

    from core.domain.errors import ValidationError

    exp, samples = _exp()
    with pytest.raises(ValidationError, match="csv, html, pdf"):
        render(build(exp, samples), "docx")
