"""Experiment wizard model (no Streamlit): the draft, per-step validation, the create call.

The page keeps one ``Draft`` dict in session_state and asks this module, step by step,
what is wrong with it; the same domain objects (``Target``, ``LoadProfile``, ``Timing``,
``SuccessCriteria``) validate here as in ``ExperimentService.create``, so the wizard
never lets through what creation would refuse.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from core.domain.criteria import LoadProfile, SuccessCriteria, Target, Timing
from core.domain.critical import CriticalPolicy, load_policy_text
from core.domain.durations import parse_duration
from core.domain.errors import ValidationError
from core.services.settings import Sourced

STEPS = ("Basics", "Pipelines", "Target & load", "Criteria & review")
LOAD_PROFILES = ("realistic", "high-cardinality", "process-churn", "custom")
CUSTOM_EXAMPLE = ("patterns:\n- name_template: worker-{i}\n  count: 10\n  cpu_pattern: spiky\n"
                  "  cpu_pct: 5\n  memory_mb: 20\n")


def new_draft() -> dict[str, Any]:
    return {
        "name": "", "description": "", "owner": "",
        "baseline": "process-baseline-v1", "candidate": "process-topk-v1",
        "target_kind": "local", "namespace": "", "node_selector": "",
        "load": "realistic", "load_scale": 1.0, "max_processes": 60, "custom_patterns": CUSTOM_EXAMPLE,
        "duration": "60s", "interval": "5s", "policy_mode": "default", "policy_yaml": "",
        "min_series_reduction_pct": 50.0, "require_full_critical_coverage": True,
        "max_cpu_overhead_pct": None, "max_memory_overhead_mb": None, "min_cost_reduction_pct": None,
        "min_samples": 5,
    }


def _whole(value: Any) -> Any:
    """A whole number as ``int`` for the domain objects; anything else unchanged, for ``validate()`` to name.

    The widgets only produce sane numbers, but the draft is also what an API would send:
    ``int(nan)`` or ``int(inf)`` must become a validation problem, not a crash.
    """
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _real(value: Any) -> Any:
    """A number as ``float`` (NaN and infinities kept, for ``validate()`` to refuse); anything else unchanged."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range: validate() judges it as it is
            return value
    return value


def _target(d: dict[str, Any]) -> Target:
    sel: dict[str, str] = {}
    for part in str(d.get("node_selector") or "").split(","):
        if part.strip():
            k, _, v = part.partition("=")
            sel[k.strip()] = v.strip()
    if d.get("target_kind") == "kubernetes":
        return Target(kind="kubernetes", namespace=(d.get("namespace") or "").strip() or None, node_selector=sel)
    return Target()


def _load(d: dict[str, Any]) -> tuple[LoadProfile | None, list[str]]:
    name = d.get("load") or "realistic"
    if name == "custom":
        try:
            params = yaml.safe_load(d.get("custom_patterns") or "") or {}
        except yaml.YAMLError as exc:
            return None, [f"custom load patterns are not valid YAML: {str(exc).splitlines()[0]}"]
        if not isinstance(params, dict):
            return None, ["custom load patterns must be a mapping with a 'patterns' list"]
    else:
        params = {"scale": _real(d.get("load_scale") or 1.0)}
    return LoadProfile(name=name, params=params, max_processes=_whole(d.get("max_processes") or 1)), []


def _timing(d: dict[str, Any]) -> tuple[Timing | None, list[str]]:
    try:
        return Timing(parse_duration(d.get("duration") or "", "duration"),
                      parse_duration(d.get("interval") or "", "interval")), []
    except ValidationError as exc:
        return None, exc.problems


def _criteria(d: dict[str, Any]) -> SuccessCriteria:
    return SuccessCriteria(
        min_series_reduction_pct=_real(d["min_series_reduction_pct"]),
        require_full_critical_coverage=bool(d["require_full_critical_coverage"]),
        max_cpu_overhead_pct=d.get("max_cpu_overhead_pct"),
        max_memory_overhead_mb=d.get("max_memory_overhead_mb"),
        min_cost_reduction_pct=d.get("min_cost_reduction_pct"),
        min_samples=_whole(d["min_samples"]),
    )


def default_policy_label(saved: Sourced[CriticalPolicy]) -> str:
    """What "default" means for a new experiment: the policy Settings holds, and where it comes from."""
    if saved.error:
        return f"default — invalid ({saved.error})"
    where = "built-in" if saved.source == "default" else saved.origin
    return f"default: {len(saved.value.rules)} rules ({where})"


def critical_rules(d: dict[str, Any]) -> list[dict[str, str]] | None:
    """The draft's own rules; None for "default", which creation resolves to the Settings policy."""
    if d.get("policy_mode") != "custom":
        return None
    policy = load_policy_text(d.get("policy_yaml") or "", source="experiment critical policy")
    return [r.to_dict() for r in policy.rules]


def step_problems(step: int, d: dict[str, Any], cluster_configured: bool = False) -> list[str]:
    """What blocks leaving ``step`` (0-based), each a sentence."""
    p: list[str] = []
    if step == 0:
        if not (d.get("name") or "").strip():
            p.append("Give the experiment a name.")
        elif len(d["name"]) > 120:
            p.append("The name must be at most 120 characters.")
        if len(d.get("description") or "") > 2000:
            p.append("The description must be at most 2000 characters.")
        from core.services.experiments import MAX_OWNER, text_problems

        p += text_problems(name=d.get("name"), description=d.get("description"), owner=d.get("owner") or None)
        if len((d.get("owner") or "").strip()) > MAX_OWNER:
            p.append(f"The owner must be at most {MAX_OWNER} characters.")
    elif step == 1:
        if not d.get("baseline") or not d.get("candidate"):
            p.append("Choose both a baseline and a candidate pipeline.")
        elif d["baseline"] == d["candidate"]:
            p.append("Baseline and candidate must be different pipelines.")
    elif step == 2:
        if d.get("target_kind") == "kubernetes" and not cluster_configured:
            p.append("No Kubernetes cluster is configured (PHOENIX_RUNTIME=kubernetes); run on this host.")
        p += _target(d).validate()
        load, lp = _load(d)
        p += lp + (load.validate() if load else [])
        timing, tp = _timing(d)
        p += tp + (timing.validate() if timing else [])
        if d.get("policy_mode") == "custom":
            try:
                critical_rules(d)
            except ValidationError as exc:
                p += exc.problems
    elif step == 3:
        c = _criteria(d)
        p += c.validate()
        timing, _ = _timing(d)
        if timing and not timing.validate() and not p and c.min_samples > timing.expected_samples():
            p.append(f"Min samples ({c.min_samples}) is more than the run collects "
                     f"({timing.expected_samples()} = duration / interval).")
    return p


def all_problems(d: dict[str, Any], cluster_configured: bool = False) -> list[str]:
    return [m for s in range(len(STEPS)) for m in step_problems(s, d, cluster_configured)]


def create_kwargs(d: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``ExperimentService.create`` (the draft must be valid)."""
    timing, _ = _timing(d)
    load, _ = _load(d)
    assert timing is not None and load is not None
    return {
        "name": d["name"].strip(), "description": d.get("description") or "",
        "owner": (d.get("owner") or "").strip() or None,
        "baseline": d["baseline"], "candidate": d["candidate"],
        "duration_s": timing.duration_s, "interval_s": timing.interval_s,
        "load": load, "target": _target(d), "criteria": _criteria(d), "critical_rules": critical_rules(d),
    }


def review(d: dict[str, Any], default_policy: str = "default") -> list[tuple[str, str]]:
    t, _ = _timing(d)
    c = _criteria(d)
    rows = [
        ("Name", d["name"]), ("Owner", d.get("owner") or "(you)"),
        ("Baseline", d["baseline"]), ("Candidate", d["candidate"]),
        ("Target", _target(d).describe()),
        ("Load", d["load"] + ("" if d["load"] == "custom" else f" × {d['load_scale']}")
         + f", at most {d['max_processes']} processes"),
        ("Duration / interval", f"{d['duration']} / {d['interval']}"
         + (f" ({t.expected_samples()} samples)" if t else "")),
        ("Critical policy", default_policy if d.get("policy_mode") != "custom" else "custom rules"),
        ("Min series reduction", f"{c.min_series_reduction_pct:g} %"),
        ("Full critical coverage", "required" if c.require_full_critical_coverage else "not required"),
        ("Min samples", str(c.min_samples)),
    ]
    for label, v, unit in (("Max CPU overhead", c.max_cpu_overhead_pct, "%"),
                           ("Max memory overhead", c.max_memory_overhead_mb, "MB"),
                           ("Min cost reduction", c.min_cost_reduction_pct, "%")):
        if v is not None:
            rows.append((label, f"{v:g} {unit}"))
    return rows
