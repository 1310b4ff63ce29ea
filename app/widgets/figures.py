"""Plotly figure builders shared by pages and the HTML report (no Streamlit here).

Each builder takes plain data (lists of dicts, dicts of numbers) and returns a
``plotly.graph_objects.Figure`` styled the same way, so the app and the report agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import plotly.graph_objects as go

VARIANT_COLOURS = {"baseline": "#64748b", "candidate": "#ea580c"}
BEFORE_AFTER = {"before": "#94a3b8", "after": "#ea580c"}


def _layout(fig: go.Figure, title: str, y_title: str = "", height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 40, "r": 10, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"}, yaxis_title=y_title, template="plotly_white")
    return fig


def before_after_bars(values: Mapping[str, tuple[float, float]], title: str) -> go.Figure:
    """Grouped bars: {label: (before, after)}."""
    labels = list(values)
    fig = go.Figure([
        go.Bar(name="before", x=labels, y=[values[k][0] for k in labels], marker_color=BEFORE_AFTER["before"]),
        go.Bar(name="after", x=labels, y=[values[k][1] for k in labels], marker_color=BEFORE_AFTER["after"]),
    ])
    fig.update_layout(barmode="group")
    return _layout(fig, title)


def cost_bars(rows: Iterable[Mapping[str, Any]], title: str = "Cost per vendor ($/month)") -> go.Figure:
    """Rows with ``vendor``, ``before`` and ``after`` in $/month."""
    rows = list(rows)
    vendors = [str(r["vendor"]) for r in rows]
    fig = go.Figure([
        go.Bar(name="baseline / before", x=vendors, y=[r.get("before") for r in rows],
               marker_color=BEFORE_AFTER["before"]),
        go.Bar(name="candidate / after", x=vendors, y=[r.get("after") for r in rows],
               marker_color=BEFORE_AFTER["after"]),
    ])
    fig.update_layout(barmode="group")
    return _layout(fig, title, "$ / month")


def variant_timeseries(samples: Iterable[Mapping[str, Any]], metric: str, title: str, y_title: str = "") -> go.Figure:
    """One line per variant over time from samples with ``variant``, ``t`` and ``metric``."""
    by_variant: dict[str, tuple[list[Any], list[Any]]] = {}
    for s in samples:
        if s.get(metric) is None:
            continue
        xs, ys = by_variant.setdefault(str(s["variant"]), ([], []))
        xs.append(s["t"])
        ys.append(s[metric])
    fig = go.Figure([
        go.Scatter(x=xs, y=ys, mode="lines+markers", name=v, line={"color": VARIANT_COLOURS.get(v)})
        for v, (xs, ys) in sorted(by_variant.items())
    ])
    return _layout(fig, title, y_title, height=260)


def contributors_bars(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]],
                      title: str = "Top contributors to cardinality") -> go.Figure:
    """Series by executable name, before and after (rows of ``executable_name``, ``series``)."""
    b = {str(r.get("executable_name")): r.get("series", 0) for r in before}
    a = {str(r.get("executable_name")): r.get("series", 0) for r in after}
    names = list(dict.fromkeys(list(b) + list(a)))[:15]
    fig = go.Figure([
        go.Bar(name="before", y=names, x=[b.get(n, 0) for n in names], orientation="h",
               marker_color=BEFORE_AFTER["before"]),
        go.Bar(name="after", y=names, x=[a.get(n, 0) for n in names], orientation="h",
               marker_color=BEFORE_AFTER["after"]),
    ])
    fig.update_layout(barmode="group", yaxis={"autorange": "reversed"})
    return _layout(fig, title, height=360)


def what_if_lines(rows: Iterable[Mapping[str, Any]], x: str, y: str, group: str, title: str,
                  y_title: str = "") -> go.Figure:
    """Lines of ``y`` over ``x``, one per ``group`` value (cost explorer sweeps)."""
    series: dict[str, tuple[list[Any], list[Any]]] = {}
    for r in rows:
        xs, ys = series.setdefault(str(r[group]), ([], []))
        xs.append(r[x])
        ys.append(r[y])
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="lines+markers", name=g) for g, (xs, ys) in series.items()])
    fig.update_xaxes(title=x)
    return _layout(fig, title, y_title)
