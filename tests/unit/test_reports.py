"""Reports from an in-memory experiment: CSV rows, self-contained HTML, a real PDF."""

from __future__ import annotations

import csv
import io
import re
import zlib
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


def test_csv_has_the_verdict_every_criterion_and_every_sample() -> None:
    exp, samples = _exp()
    rows = list(csv.DictReader(io.StringIO(render(build(exp, samples), "csv").decode())))
    assert {r["verdict"] for r in rows} == {exp.result["verdict"]}  # on every row
    assert [r["record"] for r in rows if r["record"] == "verdict"] == ["verdict"]
    criteria = [r for r in rows if r["record"] == "criterion"]
    named = [c["criterion"] for c in exp.result["criteria"]]
    assert named and [r["criterion"] for r in criteria if r["criterion"]] == named
    assert all(r["status"] in {"met", "missed", "uncertain"} for r in criteria if r["criterion"])
    sample_rows = [r for r in rows if r["record"] == "sample"]
    assert len(sample_rows) == 12
    assert {r["variant"] for r in sample_rows} == {"baseline", "candidate"}
    assert sample_rows[1]["series"] == "224" and sample_rows[0]["experiment_id"] == exp.id


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


def _pdf_text_maps(pdf: bytes) -> str:
    """The PDF's decompressed streams: fpdf2 writes a ToUnicode CMap per embedded font, mapping
    each glyph it used to its code point (hex), which is what a text extractor reads back."""
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
    out = []
    for raw in streams:
        try:
            out.append(zlib.decompress(raw).decode("latin-1"))
        except zlib.error:
            out.append(raw.decode("latin-1"))
    return "\n".join(out)


def test_pdf_embeds_a_unicode_font_with_the_dashes_arrows_and_non_latin_names() -> None:
    exp, samples = _exp()
    exp.name = "Ωmega – ≤ 5% → Привет"
    pdf = render(build(exp, samples), "pdf")
    assert pdf.startswith(b"%PDF-")
    assert len(pdf) > 20_000  # includes the chart images
    assert b"/FontFile2" in pdf and b"DejaVuSans" in pdf  # an embedded TrueType font, not Helvetica
    assert b"/Helvetica" not in pdf
    maps = _pdf_text_maps(pdf).upper()
    for ch in "Ω–≤→П":  # each drawn character maps back to itself: no "?" in its place
        assert f"<{ord(ch):04X}>" in maps, ch


def test_unknown_format_is_a_clear_error() -> None:
    import pytest

    from core.domain.errors import ValidationError

    exp, samples = _exp()
    with pytest.raises(ValidationError, match="csv, html, pdf"):
        render(build(exp, samples), "docx")
