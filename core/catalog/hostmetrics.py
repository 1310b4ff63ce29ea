"""hostmetrics receiver with the ``process`` scraper (and optionally ``processes``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.catalog._common import check_params, quote_pattern, regex_problem
from core.catalog.base import EmitContext, Emitted, NodeType, Param, short_value
from core.catalog.frame import value_columns
from core.catalog.kernel_ops import any_regex, duration_seconds, equal_hits, set_na
from core.catalog.process_metrics import (
    METRICS_BY_NAME,
    PROCESS_METRICS,
    RESOURCE_ATTRIBUTE_COLUMNS,
    RESOURCE_ATTRIBUTE_DEFAULTS,
)
from core.catalog.process_metrics import enabled_metrics as _enabled_metrics
from core.domain.durations import duration_or_none

if TYPE_CHECKING:
    from core.catalog.eval_context import EvalContext
    from core.catalog.frame import ResourceFrame

MUTE_FLAGS = ("name", "exe", "io", "user", "cgroup")
# The description counts the default series from the table, so it cannot drift from it.
_DEFAULT_ON = [m for m in PROCESS_METRICS if m.default_enabled]
_DEFAULT_SERIES = sum(len(m.points) for m in _DEFAULT_ON)
_DEFAULT_SUMMARY = ", ".join(
    m.name.removeprefix("process.") + (f" ×{len(m.points)} {m.attribute}s" if m.attribute else "") for m in _DEFAULT_ON
)


class HostMetrics(NodeType):
    type_name = "hostmetrics"
    kind = "receiver"
    title = "Host metrics (process)"
    description = (
        f"Scrapes every process on the host: {_DEFAULT_SERIES} series per process with default metrics "
        f"({_DEFAULT_SUMMARY})."
    )
    params = (
        Param("collection_interval", "duration", "10s", "How often processes are scraped.", "s", minimum=1, maximum=3600),
        Param("include_names", "list[str]", [], "Only these executable names (empty: all)."),
        Param("exclude_names", "list[str]", [], "Never these executable names."),
        Param("match_type", "enum", "regexp", "How include/exclude names match.", choices=("strict", "regexp")),
        Param("metrics", "map", {}, "Metric toggles {name: true|false}; unset metrics keep upstream defaults."),
        Param("resource_attributes", "map", {}, "Resource attribute toggles {name: true|false}.", advanced=True),
        Param("mute_process_all_errors", "bool", False, "Mute every per-process scrape error.", advanced=True),
        *(Param(f"mute_process_{f}_error", "bool", True, f"Mute {f} read errors (kernel threads, permissions).",
                advanced=True) for f in MUTE_FLAGS),
        Param("processes_scraper", "bool", False, "Also run the `processes` scraper (process counts per status)."),
    )

    def describe(self, p: dict[str, Any]) -> str:
        parts = [f"every {p['collection_interval']}"]
        if p["include_names"]:
            parts.append(f"only {short_value(p['include_names'])}")
        if p["exclude_names"]:
            parts.append(f"not {short_value(p['exclude_names'])}")
        toggled = [k for k, v in (p["metrics"] or {}).items() if v]
        if toggled:
            parts.append(f"+{len(toggled)} metric{'s' if len(toggled) != 1 else ''}")
        return " · ".join(parts)

    def validate(self, params: dict[str, Any]) -> list[str]:
        problems = check_params(self.params, params)
        p = self.with_defaults(params)
        if problems:
            return problems
        if p["match_type"] == "regexp":
            for key in ("include_names", "exclude_names"):
                for i, name in enumerate(p[key]):
                    why = regex_problem(name)
                    if why:
                        problems.append(f"{key}[{i}] {quote_pattern(name)} {why}")
        for name, on in p["metrics"].items():
            if name not in METRICS_BY_NAME:
                problems.append(f"metrics: unknown process metric {name!r}")
            elif not isinstance(on, bool):
                problems.append(f"metrics: {name} must be true or false")
        for name, on in p["resource_attributes"].items():
            if name not in RESOURCE_ATTRIBUTE_DEFAULTS:
                problems.append(f"resource_attributes: unknown attribute {name!r}")
            elif not isinstance(on, bool):
                problems.append(f"resource_attributes: {name} must be true or false")
        if duration_or_none(p["collection_interval"]) is None:
            problems.append("collection_interval must be a Go duration")
        return problems

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        p = self.with_defaults(params)
        process: dict[str, Any] = {}
        for key, yaml_key in (("include_names", "include"), ("exclude_names", "exclude")):
            if p[key]:
                process[yaml_key] = {"names": list(p[key]), "match_type": p["match_type"]}
        process["mute_process_all_errors"] = p["mute_process_all_errors"]
        for f in MUTE_FLAGS:
            process[f"mute_process_{f}_error"] = p[f"mute_process_{f}_error"]
        if p["metrics"]:
            process["metrics"] = {m: {"enabled": bool(on)} for m, on in sorted(p["metrics"].items())}
        if p["resource_attributes"]:
            process["resource_attributes"] = {
                a: {"enabled": bool(on)} for a, on in sorted(p["resource_attributes"].items())
            }
        scrapers: dict[str, Any] = {"process": process}
        if p["processes_scraper"]:
            scrapers["processes"] = {}
        receiver = {"collection_interval": p["collection_interval"], "scrapers": scrapers}
        return Emitted(receivers={"hostmetrics": receiver})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        p = self.with_defaults(params)
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
            hit = equal_hits(names, include) if strict else any_regex(names, include)
            keep &= hit
        if exclude:
            hit = equal_hits(names, exclude) if strict else any_regex(names, exclude)
            keep &= ~hit
        out = df[keep].reset_index(drop=True) if not keep.all() else df.copy(deep=False)
        # Disabled metrics produce no data points: drop their columns so no later node
        # (thresholds, rollups, totals) can see values the collector never had.
        known = {c for m in METRICS_BY_NAME.values() if m.name in enabled for c in m.columns}
        out = out.drop(columns=[c for c in value_columns(out) if c not in known])
        toggles = p.get("resource_attributes") or {}
        off = [a for a, on in toggles.items() if on is False and a in RESOURCE_ATTRIBUTE_COLUMNS]
        set_na(out, off)
        ctx.report(processes_excluded=int((~keep).sum()), enabled_metrics=sorted(enabled),
                   collection_interval_s=ctx.collection_interval_s)
        missing = sorted(m for m in enabled if m in METRICS_BY_NAME
                         and all(c not in out.columns or out[c].isna().all() for c in METRICS_BY_NAME[m].columns))
        for m in missing:
            ctx.warn(f"{m} is enabled but the snapshot has no values for it; its series are not counted")
        return frame.replace(out)


def enabled_metrics(params: dict[str, Any], patches: list[dict[str, bool]] | None = None) -> frozenset[str]:
    """Metrics the receiver exports after its toggles and later receiver patches."""
    return _enabled_metrics(NODE.with_defaults(params).get("metrics"), patches or [])


NODE = HostMetrics()
