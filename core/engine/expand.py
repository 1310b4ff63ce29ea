"""Resource frame → series: counting without materialising, and vectorised expansion.

A row emits one series per (enabled metric, data-point attribute value) whose value column
holds a number (the scraper emits nothing for values it could not read). Counting needs
only ``notna`` sums over ≤ 24 columns; expansion builds one block per value column with
``np.flatnonzero`` + ``take`` — never a Python loop per series.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from core.catalog.frame import INTERNAL_MARKERS, ResourceFrame, attribute_columns
from core.catalog.process_metrics import DATAPOINT_ATTRIBUTES, FRAME_METRICS, ProcessMetric


def _points(df: pd.DataFrame, enabled: Iterable[str]) -> list[tuple[ProcessMetric, str | None, str]]:
    on = set(enabled)
    return [
        (m, value, col)
        for m in FRAME_METRICS
        if m.name in on
        for value, col in m.points
        if col in df.columns
    ]


def series_per_row(frame: ResourceFrame | pd.DataFrame, enabled: Iterable[str]) -> np.ndarray:
    """Number of series each resource row emits."""
    df = frame.df if isinstance(frame, ResourceFrame) else frame
    counts = np.zeros(len(df), dtype=np.int64)
    for _, _, col in _points(df, enabled):
        counts += ~np.isnan(df[col].to_numpy(dtype=np.float64))
    return counts


def count_series(frame: ResourceFrame, enabled: Iterable[str], scrape: int | None = None) -> int:
    """Series in one scrape (``scrape`` < 0 counts from the end) or, when None, all scrapes."""
    df = frame.df
    if scrape is not None:
        if scrape < 0:
            scrape += frame.n_scrapes
        df = df[df["scrape"].to_numpy() == scrape]
    return int(series_per_row(df, enabled).sum())


def series_per_metric(frame: ResourceFrame, enabled: Iterable[str]) -> dict[str, int]:
    df = frame.df
    out: dict[str, int] = {}
    for m, _, col in _points(df, enabled):
        out[m.name] = out.get(m.name, 0) + int((~np.isnan(df[col].to_numpy(dtype=np.float64))).sum())
    return out


def expand(frame: ResourceFrame, enabled: Iterable[str], *, drop_internal: bool = True) -> pd.DataFrame:
    """The series frame: ``scrape, host_name, metric, value`` + one column per attribute key.

    Attribute columns are the frame's resource attributes (internal markers removed, as
    the cleanup transform does) plus the data-point keys ``state``/``direction``/``type``.
    """
    df = frame.df
    points = _points(df, enabled)
    rows: list[np.ndarray] = []
    values: list[np.ndarray] = []
    metric_codes: list[np.ndarray] = []
    dp_codes: dict[str, list[np.ndarray]] = {k: [] for k in DATAPOINT_ATTRIBUTES}
    metric_names = list(dict.fromkeys(m.name for m, _, _ in points))
    dp_values: dict[str, list[str]] = {k: [] for k in DATAPOINT_ATTRIBUTES}
    for m, _, _ in points:
        if m.attribute:
            for v, _ in m.points:
                if v not in dp_values[m.attribute]:
                    dp_values[m.attribute].append(v)  # type: ignore[arg-type]
    for m, value, col in points:
        v = df[col].to_numpy(dtype=np.float64)
        idx = np.flatnonzero(~np.isnan(v))
        rows.append(idx)
        values.append(v[idx])
        metric_codes.append(np.full(len(idx), metric_names.index(m.name), dtype=np.int16))
        for key in DATAPOINT_ATTRIBUTES:
            code = dp_values[key].index(value) if m.attribute == key else -1
            dp_codes[key].append(np.full(len(idx), code, dtype=np.int8))
    row_idx = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    attrs = [c for c in attribute_columns(df) if not (drop_internal and c in INTERNAL_MARKERS)]
    out: dict[str, object] = {
        "scrape": df["scrape"].to_numpy()[row_idx],
        "host_name": df["host_name"].take(row_idx).reset_index(drop=True),
        "metric": pd.Categorical.from_codes(
            np.concatenate(metric_codes) if metric_codes else np.zeros(0, dtype=np.int16), categories=metric_names
        ),
        "value": np.concatenate(values) if values else np.zeros(0),
    }
    for col in attrs:
        out[col] = df[col].take(row_idx).reset_index(drop=True)
    for key in DATAPOINT_ATTRIBUTES:
        if dp_values[key]:
            out[key] = pd.Categorical.from_codes(np.concatenate(dp_codes[key]), categories=dp_values[key])
    return pd.DataFrame(out)


def attributes_json(series: pd.DataFrame) -> pd.Series:
    """JSON object (sorted keys) of every non-null attribute of each series row.

    Built column-wise: each key/value fragment is formatted once per distinct value
    (categoricals) and joined per row, so cost is per column, not per series.
    """
    import json

    keys = sorted(c for c in series.columns if c not in ("scrape", "host_name", "metric", "value"))
    n = len(series)
    # Every fragment starts with "," so rows concatenate with object-array additions;
    # the first comma is then replaced by "{".
    joined = np.full(n, "", dtype=object)
    for key in keys:
        col = series[key]
        prefix = "," + json.dumps(key) + ":"
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = col.cat.categories
            frag = np.array([prefix + json.dumps(str(c)) for c in cats] + [""], dtype=object)
            codes = col.cat.codes.to_numpy()
            joined = joined + frag[np.where(codes < 0, len(cats), codes)]
        else:
            arr = pd.array(col, dtype="Int64").to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).min)
            uniq, inv = np.unique(arr, return_inverse=True)
            missing = np.iinfo(np.int64).min
            frag = np.array(["" if u == missing else prefix + str(int(u)) for u in uniq], dtype=object)
            joined = joined + frag[inv]
    text = pd.Series(joined, index=series.index, dtype=object).str.slice(1)
    return "{" + text + "}"
