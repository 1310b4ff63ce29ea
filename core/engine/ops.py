"""Engine kernels: one vectorised function per node type (``ops.<type_name>``).

Each catalog module's ``kernel()`` delegates here, so a node's YAML emitter and its data
semantics sit one import apart. The recipes are in docs/pipeline-semantics.md; every
comment "collector:" says which emitted statement a step mirrors. Kernels never loop over
processes or series: masks on integer codes, regexes on categories only.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.engine.context import EvalContext
from core.engine.frame import (
    BOOKKEEPING,
    CRITICAL_CODE,
    PRIORITIES,
    ResourceFrame,
    attribute_columns,
    value_columns,
)
from core.engine.metrics import (
    HOST_NAME_ATTRIBUTE,
    KEEP,
    METRICS_BY_NAME,
    PRIORITY,
    RESOURCE_ATTRIBUTES,
    ROLLUP,
)

OS_TYPE_ATTRIBUTE = "os.type"
# Attributes the rollup transform deletes (collector: delete_key per key).
ROLLUP_DELETES: tuple[str, ...] = (
    "process.pid", "process.parent_pid", "process.command", "process.command_line",
    "process.executable.path", "process.owner", PRIORITY,
)
OTHER = "other"


# ---------------------------------------------------------------- shared primitives


def params_with_defaults(type_name: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The node type's documented defaults overlaid with ``params`` (what emit() uses)."""
    try:
        module = importlib.import_module(f"core.catalog.{type_name}")
    except ModuleNotFoundError:
        return dict(params or {})
    node = getattr(module, "NODE", None)
    return node.with_defaults(params or {}) if node is not None else dict(params or {})


def duration_seconds(text: Any, default: float) -> float:
    from core.catalog._common import parse_duration

    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    secs = parse_duration(text) if isinstance(text, str) else None
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


def regex_hits(column: pd.Series, pattern: str) -> np.ndarray:
    """Rows whose categorical string value matches ``pattern`` with search semantics.

    Evaluated once per distinct value with RE2 (pyarrow), the engine OTTL ``IsMatch`` and
    filterset ``regexp`` use. A pattern RE2 refuses raises ValidationError (validation refuses
    it first); values Arrow cannot hold go through ``user_regex.match_values`` (RE2 as well).
    Missing values never match. Never Python ``re``: user patterns must run in linear time.
    """
    from core.domain.user_regex import compile_user, match_values

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


def _last_scrape_rows(df: pd.DataFrame) -> np.ndarray:
    scrape = df["scrape"].to_numpy()
    return scrape == scrape.max() if len(scrape) else np.zeros(0, dtype=bool)


def per_host_counts(df: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """For the last scrape: how many ``mask`` rows each host has (hosts with none → 0)."""
    last = _last_scrape_rows(df)
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


# ---------------------------------------------------------------- receiver


def hostmetrics(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    from core.catalog.hostmetrics import enabled_metrics

    p = params_with_defaults("hostmetrics", params)
    ctx.collection_interval_s = duration_seconds(p.get("collection_interval"), ctx.collection_interval_s)
    # Receiver-mode metric selection patches the receiver's toggles (collected by evaluate).
    enabled = set(enabled_metrics(p, [patch.get("metrics", {}) for patch in ctx.receiver_patches]))
    ctx.enabled_metrics = enabled
    df = frame.df
    names = df["process.executable.name"]
    keep = np.ones(len(df), dtype=bool)
    strict = p.get("match_type") == "strict"
    include, exclude = list(p.get("include_names") or []), list(p.get("exclude_names") or [])
    if include:
        hit = equal_hits(names, include) if strict else _any_regex(names, include)
        keep &= hit
    if exclude:
        hit = equal_hits(names, exclude) if strict else _any_regex(names, exclude)
        keep &= ~hit
    out = df[keep].reset_index(drop=True) if not keep.all() else df.copy(deep=False)
    # Disabled metrics produce no data points: drop their columns so no later node
    # (thresholds, rollups, totals) can see values the collector never had.
    known = {c for m in METRICS_BY_NAME.values() if m.name in enabled for c in m.columns}
    out = out.drop(columns=[c for c in value_columns(out) if c not in known])
    toggles = p.get("resource_attributes") or {}
    off = [a for a, on in toggles.items() if on is False and a in RESOURCE_ATTRIBUTES]
    set_na(out, off)
    ctx.report(processes_excluded=int((~keep).sum()), enabled_metrics=sorted(enabled),
               collection_interval_s=ctx.collection_interval_s)
    missing = sorted(m for m in enabled if m in METRICS_BY_NAME
                     and all(c not in out.columns or out[c].isna().all() for c in METRICS_BY_NAME[m].columns))
    for m in missing:
        ctx.warn(f"{m} is enabled but the snapshot has no values for it; its series are not counted")
    return frame.replace(out)


def _any_regex(column: pd.Series, patterns: list[str]) -> np.ndarray:
    hit = np.zeros(len(column), dtype=bool)
    for pattern in patterns:
        hit |= regex_hits(column, pattern)
    return hit


# ---------------------------------------------------------------- processors


def priority_classifier(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    """collector: one ``set(phoenix.priority, …) where phoenix.priority == nil and IsMatch(…)``
    per policy rule, then the default, then ``phoenix.keep`` for ``keep_priorities``."""
    from core.domain.critical import DEFAULT_POLICY, FIELD_ATTRIBUTE

    p = params_with_defaults("priority_classifier", params)
    policy = ctx.critical_policy or DEFAULT_POLICY
    df = frame.df.copy(deep=False)
    codes = df[PRIORITY].cat.codes.to_numpy().astype(np.int8).copy()
    for rule in policy.rules:
        unset = codes < 0
        if not unset.any():
            break
        hit = regex_hits(df[FIELD_ATTRIBUTE[rule.match]], rule.pattern)
        codes[unset & hit] = PRIORITIES.index(rule.priority)
    default = p.get("default_priority") or getattr(policy, "default_priority", "low")
    codes[codes < 0] = PRIORITIES.index(default)
    df[PRIORITY] = pd.Categorical.from_codes(codes, dtype=df[PRIORITY].dtype)
    keep_codes = [PRIORITIES.index(k) for k in p.get("keep_priorities") or []]
    if keep_codes:
        set_marker(df, KEEP, np.isin(codes, keep_codes))
    last = _last_scrape_rows(df)
    ctx.report(priorities={k: int(((codes == i) & last).sum()) for i, k in enumerate(PRIORITIES)})
    out = frame.replace(df)
    drop_codes = [PRIORITIES.index(d) for d in p.get("drop_priorities") or [] if d != "critical"]
    if drop_codes:
        # collector: filter drops `priority == d and priority != "critical"` (keep ignored).
        out = keep_rows(out, ~np.isin(codes, drop_codes))
    return out


def resource_filter(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    p = params_with_defaults("resource_filter", params)
    return apply_thresholds(frame, ctx, p["by"], float(p["cpu_utilization"]), int(p["memory_bytes"]),
                            p["action"] == "drop")


def topk(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    from core.catalog._thresholds import DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES, effective

    p = params_with_defaults("topk", params)
    cpu, mem, computed = effective(p.get("computed"), p["by"], DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES)
    if not computed:
        ctx.warn(f"{ctx.node_id}: thresholds not computed from data; the documented defaults apply")
    out = apply_thresholds(frame, ctx, p["by"], cpu, mem, p["action"] == "drop")
    ctx.report(target_k=int(p["k"]), computed=bool(computed))
    return out


def adaptive(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    from core.catalog._thresholds import DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES, effective

    p = params_with_defaults("adaptive", params)
    cpu, mem, computed = effective(p.get("computed"), p["by"], DEFAULT_CPU_UTILIZATION, DEFAULT_MEMORY_BYTES)
    if not computed:
        ctx.warn(f"{ctx.node_id}: thresholds not computed from data; the documented defaults apply")
    out = apply_thresholds(frame, ctx, p["by"], cpu, mem, p["action"] == "drop")
    k = (p.get("computed") or {}).get("k")
    ctx.report(target_k=None if k is None else int(k), computed=bool(computed),
               series_budget_per_host=int(p["series_budget_per_host"]))
    return out


def intelligent(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    """collector: ``set(phoenix.keep, "true") where IsMatch(executable.name, "^(?:n1|n2…)$")``."""
    p = params_with_defaults("intelligent", params)
    names = learned_names(p)
    df = frame.df.copy(deep=False)
    mark = equal_hits(df["process.executable.name"], names) if names else np.zeros(len(df), dtype=bool)
    newly = mark & ~frame.keep_mask() & ~frame.critical_mask()
    set_marker(df, KEEP, mark)
    ctx.report(learned_names=len(names), achieved_k=spread(per_host_counts(df, newly)), marked=int(newly.sum()))
    return frame.replace(df)


def learned_names(params: dict[str, Any]) -> list[str]:
    learned = params.get("learned") or {}
    names = learned.get("names") if isinstance(learned, dict) else learned
    return [str(n) for n in (names or [])]


def rollup(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    """collector: transform (rename, delete identity, mark) → groupbyattrs → sum.

    Rows that are neither critical nor kept get their group name and lose their identity;
    then identical resources merge and every value column is summed per group, so for each
    host, metric and data-point attribute set the total is unchanged.
    """
    p = params_with_defaults("rollup", params)
    df = frame.df.copy(deep=False)
    # collector: eligible = not critical, not kept and not already a rollup group.
    target = frame.reducible_mask() & ~frame.rollup_mask()
    group_by = p.get("group_by", OTHER)
    default = str(p.get("default_category") or OTHER)
    name_col = df["process.executable.name"]
    if group_by == "category":
        df["process.executable.name"] = _categorise(name_col, p.get("categories") or {}, target, default)
    elif group_by != "executable_name":  # "other": one group per host
        df["process.executable.name"] = _rename(name_col, target, default)
    elif p.get("strip_after"):
        # collector: replace_pattern(name, "<re.escape(text)>.*$", "") on grouped rows.
        df["process.executable.name"] = _strip_after(name_col, target, str(p["strip_after"]))
    set_na(df, list(ROLLUP_DELETES), target)
    set_marker(df, ROLLUP, target)
    out, groups, collisions = compact(df)
    ctx.report(rolled_up=int(target.sum()), groups=groups, collisions=collisions)
    return frame.replace(out)


def _rename(col: pd.Series, mask: np.ndarray, name: str) -> pd.Categorical:
    if name not in col.cat.categories:
        col = col.cat.add_categories([name])
    codes = col.cat.codes.to_numpy().copy()
    codes[mask] = col.cat.categories.get_loc(name)
    return pd.Categorical.from_codes(codes, dtype=col.dtype)


def _strip_after(col: pd.Series, mask: np.ndarray, text: str) -> pd.Categorical:
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


def _categorise(col: pd.Series, categories: dict[str, Any], mask: np.ndarray, default: str) -> pd.Categorical:
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


def attribute_reduction(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    """collector: ``delete_key`` per key (or ``keep_keys``) in resource context, conditioned
    on not-critical unless ``apply_to: all``. Phoenix markers are never deleted here."""
    p = params_with_defaults("attribute_reduction", params)
    df = frame.df.copy(deep=False)
    mask = None if p.get("apply_to") == "all" else ~frame.critical_mask()
    delete = list(p.get("delete_keys") or [])
    set_na(df, delete, mask)
    ctx.report(deleted_keys=sorted(set(delete)))
    return frame.replace(df)


def metric_selection(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    """Receiver mode: scraper toggles for everyone (already applied by ``hostmetrics`` via
    ``ctx.receiver_patches``). Filter mode: ``metric.name == m and priority != "critical"``
    (or the negated keep-list) drops the metric's points of non-critical processes."""
    p = params_with_defaults("metric_selection", params)
    if p.get("mode") == "receiver":
        ctx.report(mode="receiver", enabled_metrics=sorted(ctx.enabled_metrics))
        return frame
    keep = set(p.get("keep_metrics") or [])
    dropped = {m for m in METRICS_BY_NAME if m not in keep} if keep else set(p.get("drop_metrics") or [])
    df = frame.df.copy(deep=False)
    non_critical = ~frame.critical_mask()
    for m in sorted(dropped):
        for col in metric_available(df, ctx, m):
            v = df[col].to_numpy(dtype=np.float64).copy()
            v[non_critical] = np.nan
            df[col] = v
    ctx.report(mode="filter", dropped_metrics=sorted(dropped & ctx.enabled_metrics))
    return frame.replace(df)


def interval(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    """collector: ``interval`` processor — same series, one point per interval at most."""
    p = params_with_defaults("interval", params)
    ctx.processor_interval_s = duration_seconds(p.get("interval"), ctx.collection_interval_s)
    ctx.report(export_interval_s=ctx.export_interval_s)
    return frame


def resourcedetection(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    """collector: ``resourcedetection`` with the ``system`` detector adds ``host.name`` (and
    ``os.type``, on by default); ``env`` adds nothing without OTEL_RESOURCE_ATTRIBUTES."""
    p = params_with_defaults("resourcedetection", params)
    detectors = p.get("detectors") or ["env", "system"]
    if "system" not in detectors:
        return frame
    df = frame.df.copy(deep=False)
    df[HOST_NAME_ATTRIBUTE] = df["host_name"].copy()
    df[OS_TYPE_ATTRIBUTE] = pd.Categorical.from_codes(np.zeros(len(df), dtype=np.int8), categories=["linux"])
    return frame.replace(df)


def _pass_through(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    return frame


memory_limiter = _pass_through
batch = _pass_through
cumulativetodelta = _pass_through


# ---------------------------------------------------------------- exporters


def _exporter(frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
    """Exporters change no data; the estimate accounts their bytes per encoding."""
    return frame


prometheus = _exporter
prometheusremotewrite = _exporter
otlphttp = _exporter
debug = _exporter


def finalize(frame: ResourceFrame) -> ResourceFrame:
    """collector: ``transform/phoenix_cleanup`` deletes the internal markers before export.

    The columns stay (the estimate still needs to know rollup rows) but the expansion drops
    them; here we only make sure bookkeeping columns are in place.
    """
    missing = [c for c in BOOKKEEPING if c not in frame.df.columns]
    if missing:
        raise ValueError(f"resource frame lacks {missing}")
    return frame


__all__ = [
    "CRITICAL_CODE", "adaptive", "attribute_reduction", "batch", "cumulativetodelta", "debug", "hostmetrics",
    "intelligent", "interval", "memory_limiter", "metric_selection", "otlphttp", "priority_classifier",
    "prometheus", "prometheusremotewrite", "resource_filter", "resourcedetection", "rollup", "topk",
]
