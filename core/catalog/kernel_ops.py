"""Primitive operations the node kernels are written with (masks, markers, thresholds, groups).

Kernels never loop over processes or series: masks on integer codes, regexes on categories
only. Each node type's ``kernel()`` in its own module combines these; the recipes are in
docs/pipeline-semantics.md, and every comment "collector:" says which emitted statement a
step mirrors. This module sits in the catalog layer so node types never reach up into the
engine; the engine reaches kernels only through the registry.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.catalog.eval_context import EvalContext
from core.catalog.frame import KEEP, ROLLUP, ResourceFrame, attribute_columns, value_columns
from core.catalog.process_metrics import METRICS_BY_NAME
from core.domain.durations import duration_or_none
from core.domain.user_regex import compile_user, match_values


def duration_seconds(text: Any, default: float) -> float:
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    secs = duration_or_none(text)
    return default if secs is None else secs


_LABELS_CACHE: dict[int, tuple[pd.Index, pa.Array]] = {}


def _labels(cats: pd.Index) -> pa.Array:
    """Categories as an Arrow string array, cached per Index object (they are shared by
    every frame derived from one snapshot, so this conversion happens once)."""
    hit = _LABELS_CACHE.get(id(cats))
    if hit is not None and hit[0] is cats:
        return hit[1]
    labels = pa.array(cats.astype(str).to_numpy(dtype=object), type=pa.string())
    if len(_LABELS_CACHE) > 64:
        _LABELS_CACHE.clear()
    _LABELS_CACHE[id(cats)] = (cats, labels)
    return labels


def clear_label_cache() -> None:
    """Forget converted categories (benchmarks time each run from a cold cache)."""
    _LABELS_CACHE.clear()


def regex_hits(column: pd.Series, pattern: str) -> np.ndarray:
    """Rows whose categorical string value matches ``pattern`` with search semantics.

    Evaluated once per distinct value with RE2 (pyarrow), the engine OTTL ``IsMatch`` and
    filterset ``regexp`` use. A pattern RE2 refuses raises ValidationError (validation refuses
    it first); values Arrow cannot hold go through ``user_regex.match_values`` (RE2 as well).
    Missing values never match. Never Python ``re``: user patterns must run in linear time.
    """
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    cats = cat.cat.categories
    if len(cats) == 0:
        return np.zeros(len(cat), dtype=bool)
    compile_user(pattern)
    try:
        hit_cats = pc.match_substring_regex(_labels(cats), pattern).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, UnicodeEncodeError):
        hit_cats = match_values(pattern, cats.astype(str).to_numpy(dtype=object))
    hit_cats = np.r_[np.asarray(hit_cats, dtype=bool), False]  # code -1 (NA) → the appended False
    codes = cat.cat.codes.to_numpy()
    return hit_cats[np.where(codes < 0, len(cats), codes)]


def equal_hits(column: pd.Series, names: list[str]) -> np.ndarray:
    """Rows whose value equals one of ``names`` (filterset ``strict``)."""
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    hit_cats = np.r_[np.asarray(cat.cat.categories.isin(names), dtype=bool), False]
    codes = cat.cat.codes.to_numpy()
    return hit_cats[np.where(codes < 0, len(hit_cats) - 1, codes)]


def set_marker(df: pd.DataFrame, column: str, mask: np.ndarray, value: str = "true") -> None:
    """Set a categorical marker to ``value`` on ``mask`` rows (in place on a fresh copy)."""
    col = df[column]
    if value not in col.cat.categories:
        col = col.cat.add_categories([value])
    codes = col.cat.codes.to_numpy().copy()
    codes[mask] = col.cat.categories.get_loc(value)
    df[column] = pd.Categorical.from_codes(codes, dtype=col.dtype)


def set_na(df: pd.DataFrame, columns: list[str] | tuple[str, ...], mask: np.ndarray | None = None) -> None:
    """Delete attribute values (collector: ``delete_key``) on ``mask`` rows, all rows if None."""
    for column in columns:
        if column not in df.columns:
            continue
        col = df[column]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().copy()
            if mask is None:
                codes[:] = -1
            else:
                codes[mask] = -1
            df[column] = pd.Categorical.from_codes(codes, dtype=col.dtype)
        else:
            arr = pd.array(col, dtype="Int64").copy()
            if mask is None:
                arr[:] = pd.NA
            else:
                arr[mask] = pd.NA
            df[column] = arr


def keep_rows(frame: ResourceFrame, mask: np.ndarray) -> ResourceFrame:
    if mask.all():
        return frame
    return frame.replace(frame.df[mask].reset_index(drop=True))


def last_scrape_rows(df: pd.DataFrame) -> np.ndarray:
    scrape = df["scrape"].to_numpy()
    return scrape == scrape.max() if len(scrape) else np.zeros(0, dtype=bool)


def per_host_counts(df: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """For the last scrape: how many ``mask`` rows each host has (hosts with none → 0)."""
    last = last_scrape_rows(df)
    codes = df["host_name"].cat.codes.to_numpy()[last]
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(codes, weights=mask[last].astype(np.float64), minlength=codes.max() + 1)
    present = np.bincount(codes, minlength=codes.max() + 1) > 0
    return counts[present].astype(np.int64)


def spread(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": int(values.min()), "median": float(np.median(values)), "max": int(values.max())}


def metric_available(df: pd.DataFrame, ctx: EvalContext, metric: str) -> list[str]:
    """Value columns of ``metric`` that can carry data points at this point of the pipeline."""
    if metric not in ctx.enabled_metrics:
        return []
    return [c for c in METRICS_BY_NAME[metric].columns if c in df.columns]


def threshold_marks(df: pd.DataFrame, ctx: EvalContext, by: str, cpu: float, memory: int) -> np.ndarray:
    """Rows the datapoint-context keep statements mark.

    collector: ``set(phoenix.keep) where metric.name == "process.memory.usage" and
    value_int >= M`` / ``... "process.cpu.utilization" and value_double >= C`` — a row is
    marked when any of its data points satisfies one; absent points never do.
    """
    mark = np.zeros(len(df), dtype=bool)
    if by in ("memory", "combined"):
        for col in metric_available(df, ctx, "process.memory.usage"):
            mark |= df[col].to_numpy(dtype=np.float64) >= memory
    if by in ("cpu", "combined"):
        for col in metric_available(df, ctx, "process.cpu.utilization"):
            mark |= df[col].to_numpy(dtype=np.float64) >= cpu
    return mark


def apply_thresholds(
    frame: ResourceFrame, ctx: EvalContext, by: str, cpu: float, memory: int, drop: bool
) -> ResourceFrame:
    """Mark by thresholds, optionally drop the unmarked non-critical rows; report achieved K."""
    df = frame.df.copy(deep=False)
    mark = threshold_marks(df, ctx, by, cpu, memory)
    was_kept = frame.keep_mask()
    critical = frame.critical_mask()
    newly = mark & ~was_kept & ~critical
    set_marker(df, KEEP, mark)
    achieved = per_host_counts(df, newly)
    ctx.report(thresholds={"by": by, "cpu_utilization": cpu, "memory_bytes": memory},
               achieved_k=spread(achieved), marked=int(newly.sum()))
    out = frame.replace(df)
    if drop:
        # collector: filter `metrics: metric: [not critical and keep == nil]` drops those.
        out = keep_rows(out, ~out.reducible_mask())
    return out


def any_regex(column: pd.Series, patterns: list[str]) -> np.ndarray:
    hit = np.zeros(len(column), dtype=bool)
    for pattern in patterns:
        hit |= regex_hits(column, pattern)
    return hit


def rename_rows(col: pd.Series, mask: np.ndarray, name: str) -> pd.Categorical:
    if name not in col.cat.categories:
        col = col.cat.add_categories([name])
    codes = col.cat.codes.to_numpy().copy()
    codes[mask] = col.cat.categories.get_loc(name)
    return pd.Categorical.from_codes(codes, dtype=col.dtype)


def strip_after(col: pd.Series, mask: np.ndarray, text: str) -> pd.Categorical:
    """Cut each name at the first ``text`` (``kworker/0:1`` → ``kworker``), per category."""
    cats = col.cat.categories.astype(str)
    stripped = pd.Index([c.split(text, 1)[0] for c in cats])  # once per distinct name
    wanted = pd.Index(stripped.unique()).difference(cats)
    col = col.cat.add_categories(list(wanted)) if len(wanted) else col
    target_codes = col.cat.categories.get_indexer(stripped)
    codes = col.cat.codes.to_numpy().copy()
    sel = mask & (codes >= 0)
    codes[sel] = target_codes[codes[sel]]
    return pd.Categorical.from_codes(codes, dtype=col.dtype)


def categorise(col: pd.Series, categories: dict[str, Any], mask: np.ndarray, default: str) -> pd.Categorical:
    """collector: ``set(phoenix.group, "<category>") where … IsMatch(name, "<regex>")`` in map
    order (first match wins), unmatched → ``default_category``; then name := group."""
    labels: list[str] = [*categories.keys(), default]
    wanted = [c for c in labels if c not in col.cat.categories]
    col = col.cat.add_categories(wanted) if wanted else col
    codes = col.cat.codes.to_numpy().copy()
    new_codes = np.full(len(col), col.cat.categories.get_loc(default), dtype=codes.dtype)
    assigned = np.zeros(len(col), dtype=bool)
    for category, pattern in categories.items():
        hit = regex_hits(col, str(pattern)) & ~assigned
        new_codes[hit] = col.cat.categories.get_loc(category)
        assigned |= hit
    codes[mask] = new_codes[mask]
    return pd.Categorical.from_codes(codes, dtype=col.dtype)


def _key_codes(col: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes ≥ 0 of one key column and their bound (NA is a value of its own)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy().astype(np.int64) + 1, len(col.cat.categories) + 1
    values = pd.array(col, dtype="Int64").to_numpy(dtype=np.int64, na_value=-(2**62))
    codes, uniq = pd.factorize(values)
    return codes.astype(np.int64), len(uniq) + 1


def compact(df: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """collector: ``groupbyattrs`` (no keys) merges identical resources, then
    ``aggregate_on_attributes("sum")`` sums the merged rollup resources' points.

    Only rows without a pid can be identical (a pid is unique per host and scrape), so
    only those are grouped. Returns (frame, groups, collisions) — a collision is a merge
    of non-rollup resources, which validation is meant to prevent.
    """
    if "process.pid" in df.columns:
        cand = df["process.pid"].isna().to_numpy()
    else:
        cand = np.ones(len(df), dtype=bool)
    if not cand.any():
        return df, 0, 0
    sub = df[cand].reset_index(drop=True)
    keys = ["scrape", "host_name", *attribute_columns(sub)]
    key = np.zeros(len(sub), dtype=np.int64)
    bound = 1
    for k in keys:
        if k == "scrape":
            codes = sub[k].to_numpy().astype(np.int64)
            width = int(codes.max()) + 1
        elif k in ("process.pid", "process.parent_pid") and sub[k].isna().all():
            continue  # deleted everywhere here: no information
        else:
            codes, width = _key_codes(sub[k])
        if bound * width >= 2**62:  # keep the mixed-radix key in int64
            key, uniq = pd.factorize(key)
            key = key.astype(np.int64)
            bound = len(uniq)
        key = key * width + codes
        bound *= width
    key, _ = pd.factorize(key)
    key = key.astype(np.int64)
    n_groups = int(key.max()) + 1 if len(key) else 0
    first = np.full(n_groups, len(key), dtype=np.int64)
    np.minimum.at(first, key, np.arange(len(key)))
    grouped = sub.iloc[first].reset_index(drop=True)
    for col in value_columns(sub):
        v = sub[col].to_numpy(dtype=np.float64)
        present = ~np.isnan(v)
        total = np.bincount(key, weights=np.where(present, v, 0.0), minlength=n_groups)
        count = np.bincount(key, weights=present.astype(np.float64), minlength=n_groups)
        grouped[col] = np.where(count > 0, total, np.nan)
    grouped["members"] = np.bincount(key, weights=sub["members"].to_numpy(dtype=np.float64),
                                     minlength=n_groups).astype(np.int64)
    sizes = np.bincount(key, minlength=n_groups)
    rolled = grouped[ROLLUP].cat.codes.to_numpy() == 0 if ROLLUP in grouped.columns else np.zeros(n_groups, bool)
    collisions = int(((sizes > 1) & ~rolled).sum())
    out = pd.concat([df[~cand], grouped], ignore_index=True)
    return out, int(rolled.sum()), collisions
