"""Experiment reports: CSV (verdict, criteria, samples), self-contained HTML (Plotly inline), PDF (fpdf2 + matplotlib).

``render(data, fmt)`` returns bytes; nothing here touches the network or the database.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jinja2

from core.domain.errors import ValidationError
from core.reports.data import SAMPLE_FIELDS, ReportData
from core.resources import FONTS_DIR, REPORT_TEMPLATES_DIR

if TYPE_CHECKING:  # fpdf loads only when a PDF is asked for
    from fpdf import FPDF

FORMATS = ("csv", "html", "pdf")
TEMPLATES = REPORT_TEMPLATES_DIR
SERIES_CHARTS = (("series", "Active series"), ("datapoints", "Data points"), ("bytes", "Bytes"),
                 ("collector_cpu_pct", "Collector CPU %"), ("collector_rss_mb", "Collector RSS MB"))


def render(data: ReportData, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValidationError(f"report format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return {"csv": to_csv, "html": to_html, "pdf": to_pdf}[fmt](data)


#: The CSV's columns: what each row is, the verdict (on every row, so a filtered sheet keeps it),
#: one criterion's outcome, and one sample's measures.
CSV_FIELDS = ("record", "experiment_id", "verdict", "criterion", "status", "measured", "threshold", "detail",
              *SAMPLE_FIELDS)


def to_csv(data: ReportData) -> bytes:
    """One rectangular table: a ``verdict`` row, one ``criterion`` row per criterion or gate reason
    (``core.reports.data._reasons``), then one ``sample`` row per measurement."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    common = {"experiment_id": data.experiment["id"], "verdict": data.verdict}
    w.writerow({"record": "verdict", **common})
    for r in data.reasons:
        w.writerow({"record": "criterion", **common, "criterion": r["criterion"], "status": r["status"],
                    "measured": r["measured"], "threshold": r["threshold"], "detail": r["detail"]})
    for s in data.samples:
        w.writerow({"record": "sample", **common, **s})
    return buf.getvalue().encode("utf-8")


def _by_variant(data: ReportData, metric: str) -> dict[str, tuple[list[Any], list[Any]]]:
    out: dict[str, tuple[list[Any], list[Any]]] = {}
    for s in data.samples:
        if s.get(metric) is None:
            continue
        xs, ys = out.setdefault(str(s["variant"]), ([], []))
        xs.append(s["t"])
        ys.append(s[metric])
    return out


def _plotly_divs(data: ReportData) -> list[str]:
    import plotly.graph_objects as go

    colours = {"baseline": "#64748b", "candidate": "#ea580c"}
    divs = []
    first = True
    for metric, title in SERIES_CHARTS:
        series = _by_variant(data, metric)
        if not series:
            continue
        fig = go.Figure([go.Scatter(x=xs, y=ys, name=v, mode="lines+markers", line={"color": colours.get(v)})
                         for v, (xs, ys) in sorted(series.items())])
        fig.update_layout(title=title, height=300, template="plotly_white", margin={"l": 40, "r": 10, "t": 40, "b": 30})
        # plotly.js is inlined once (first chart), so the file opens offline.
        divs.append(fig.to_html(full_html=False, include_plotlyjs=first))
        first = False
    if data.cost:
        fig = go.Figure([go.Bar(name="baseline", x=[c["vendor"] for c in data.cost], y=[c["before"] for c in data.cost],
                                marker_color=colours["baseline"]),
                         go.Bar(name="candidate", x=[c["vendor"] for c in data.cost], y=[c["after"] for c in data.cost],
                                marker_color=colours["candidate"])])
        fig.update_layout(title="Cost per vendor ($/month)", barmode="group", height=320, template="plotly_white")
        divs.append(fig.to_html(full_html=False, include_plotlyjs=first))
    return divs


def to_html(data: ReportData) -> bytes:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    html = env.get_template("experiment.html.j2").render(
        d=data, charts=_plotly_divs(data), generated=datetime.now(UTC).isoformat(timespec="seconds"))
    return html.encode("utf-8")


def _png_charts(data: ReportData) -> list[bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    colours = {"baseline": "#64748b", "candidate": "#ea580c"}
    for metric, title in SERIES_CHARTS[:3]:
        series = _by_variant(data, metric)
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 2.4), dpi=110)
        for v, (_xs, ys) in sorted(series.items()):
            ax.plot(range(len(ys)), ys, marker="o", markersize=2, label=v, color=colours.get(v))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("sample", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        out.append(buf.getvalue())
    if data.cost:
        fig, ax = plt.subplots(figsize=(7, 2.6), dpi=110)
        xs = range(len(data.cost))
        ax.bar([x - 0.2 for x in xs], [c["before"] or 0 for c in data.cost], 0.4, label="baseline",
               color=colours["baseline"])
        ax.bar([x + 0.2 for x in xs], [c["after"] or 0 for c in data.cost], 0.4, label="candidate",
               color=colours["candidate"])
        ax.set_xticks(list(xs), [c["vendor"][:22] for c in data.cost], fontsize=6, rotation=15)
        ax.set_title("Cost per vendor ($/month)", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        out.append(buf.getvalue())
    return out


#: family → (regular file, bold file); DejaVu covers Latin, Greek, Cyrillic, arrows and math signs.
PDF_FONTS = {"DejaVu": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"), "DejaVuMono": ("DejaVuSansMono.ttf", None)}


def _text(text: object) -> str:
    # A glyph DejaVu lacks (CJK, emoji) prints as a missing-glyph box, never fails the report.
    return str(text)


def _new_pdf() -> FPDF:
    """An A4 document with the vendored Unicode fonts registered (core/data/fonts)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    for family, (regular, bold) in PDF_FONTS.items():
        pdf.add_font(family, "", str(FONTS_DIR / regular))
        if bold:
            pdf.add_font(family, "B", str(FONTS_DIR / bold))
    return pdf


def to_pdf(data: ReportData) -> bytes:
    pdf = _new_pdf()
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_title(_text(f"Phoenix experiment report {data.experiment['id']}"))
    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(0, 10, _text(f"Experiment report: {data.experiment['name']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(0, 8, _text(f"Verdict: {data.verdict}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    for k, v in data.summary:
        pdf.multi_cell(0, 5, _text(f"{k}: {v}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    _section(pdf, "Reasons")
    for r in data.reasons or [{"status": "", "detail": "no analysis yet"}]:
        mark = r["status"].upper() or "-"
        pdf.multi_cell(0, 5, _text(f"[{mark}] {r['detail']}"), new_x="LMARGIN", new_y="NEXT")
    if data.reductions:
        _section(pdf, "Reductions (95% CI)")
        for r in data.reductions:
            ci = "" if r["ci_low"] is None else f" [{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
            pdf.multi_cell(0, 5, _text(f"{r['metric']}: {r['reduction_pct']}%{ci}"), new_x="LMARGIN", new_y="NEXT")
    if data.cost:
        _section(pdf, "Cost per vendor ($/month)")
        for c in data.cost:
            pdf.multi_cell(0, 5, _text(f"{c['vendor']}: baseline {c['before']}  candidate {c['after']}  "
                                        f"saving {c['saving_pct']}%"),
                           new_x="LMARGIN", new_y="NEXT")
    charts = _png_charts(data)
    if charts:
        _section(pdf, "Charts")
        for png in charts:
            pdf.image(io.BytesIO(png), w=180)
    if data.stats:
        _section(pdf, "Statistics")
        for s in data.stats[:80]:
            pdf.multi_cell(0, 4.5, _text(f"{s['name']}: {s['value']}"), new_x="LMARGIN", new_y="NEXT")
    _section(pdf, "Pipeline YAML diff (baseline → candidate)")
    pdf.set_font("DejaVuMono", "", 7)
    for line in (data.yaml_diff or "no differences / not available").splitlines()[:400]:
        pdf.multi_cell(0, 3.4, _text(line) or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _section(pdf: FPDF, title: str) -> None:
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 7, _text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
