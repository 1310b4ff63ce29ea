"""hostmetrics receiver with the ``process`` scraper (and optionally ``processes``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.catalog._common import (
    PROCESS_METRICS,
    RESOURCE_ATTRIBUTES,
    check_params,
    parse_duration,
    quote_pattern,
    regex_problem,
)
from core.catalog.base import EmitContext, Emitted, NodeType, Param

if TYPE_CHECKING:
    from core.engine.context import EvalContext
    from core.engine.frame import ResourceFrame

MUTE_FLAGS = ("name", "exe", "io", "user", "cgroup")


class HostMetrics(NodeType):
    type_name = "hostmetrics"
    kind = "receiver"
    title = "Host metrics (process)"
    description = (
        "Scrapes every process on the host: 7 series per process with default metrics "
        "(cpu.time ×3 states, memory.usage, memory.virtual, disk.io ×2 directions)."
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
            if name not in PROCESS_METRICS:
                problems.append(f"metrics: unknown process metric {name!r}")
            elif not isinstance(on, bool):
                problems.append(f"metrics: {name} must be true or false")
        for name, on in p["resource_attributes"].items():
            if name not in RESOURCE_ATTRIBUTES:
                problems.append(f"resource_attributes: unknown attribute {name!r}")
            elif not isinstance(on, bool):
                problems.append(f"resource_attributes: {name} must be true or false")
        if parse_duration(p["collection_interval"]) is None:
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
        from core.engine import ops

        return ops.hostmetrics(frame, params, ctx)


def enabled_metrics(params: dict[str, Any], patches: list[dict[str, bool]] | None = None) -> frozenset[str]:
    """Metrics the receiver exports after its toggles and later receiver patches."""
    p = HostMetrics().with_defaults(params)
    on = {m for m in PROCESS_METRICS if m in {"process.cpu.time", "process.memory.usage",
                                             "process.memory.virtual", "process.disk.io"}}
    toggles = dict(p.get("metrics") or {})
    for patch in patches or []:
        toggles.update(patch)
    for m, enabled in toggles.items():
        if enabled:
            on.add(m)
        else:
            on.discard(m)
    return frozenset(on)


NODE = HostMetrics()
