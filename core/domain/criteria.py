"""Experiment value objects: success criteria, target, load profile, timing, pipeline refs.

Each is a frozen dataclass built through ``from_dict``/constructor and checked by
``validate()``, which returns every problem as a readable sentence (OpenTelemetry
component style: documented defaults, specific messages). ``ensure_valid`` raises a
``ValidationError`` carrying all of them at once, so a form or CLI can show them together.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from core.domain.durations import format_duration
from core.domain.errors import ValidationError

# Caps that keep a single experiment from running for days or scraping too fast for
# the local host. Generous, but finite.
MAX_DURATION_S = 7 * 24 * 3600
MIN_INTERVAL_S = 0.5
MAX_INTERVAL_S = 3600
MAX_PROCESSES_CAP = 2000
DEFAULT_MAX_PROCESSES = 300

LOAD_PROFILES: tuple[str, ...] = ("realistic", "high-cardinality", "process-churn", "custom", "none")
CPU_PATTERNS: tuple[str, ...] = ("steady", "spiky", "growing", "random")
MEMORY_PATTERNS: tuple[str, ...] = ("steady", "spiky", "growing", "random")
TARGET_KINDS: tuple[str, ...] = ("local", "kubernetes")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _raise(problems: list[str]) -> None:
    if problems:
        raise ValidationError(problems)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Timing:
    """How long the Running phase lasts and how often both variants are measured."""

    duration_s: float = 60.0
    interval_s: float = 5.0

    def validate(self) -> list[str]:
        p: list[str] = []
        if not _is_number(self.duration_s) or self.duration_s <= 0:
            p.append(f"duration must be positive, got {self.duration_s!r}")
        elif self.duration_s > MAX_DURATION_S:
            p.append(f"duration must be at most {format_duration(MAX_DURATION_S)}, got {format_duration(self.duration_s)}")
        if not _is_number(self.interval_s) or self.interval_s <= 0:
            p.append(f"interval must be positive, got {self.interval_s!r}")
        elif self.interval_s < MIN_INTERVAL_S or self.interval_s > MAX_INTERVAL_S:
            p.append(f"interval must be between {MIN_INTERVAL_S:g}s and {MAX_INTERVAL_S}s, got {self.interval_s:g}s")
        if not p and self.interval_s >= self.duration_s:
            p.append(
                f"interval ({format_duration(self.interval_s)}) must be shorter than the duration "
                f"({format_duration(self.duration_s)})"
            )
        return p

    def expected_samples(self) -> int:
        return int(self.duration_s // self.interval_s)


# ---------------------------------------------------------------- success criteria


@dataclass(frozen=True)
class SuccessCriteria:
    """What the candidate must achieve to be promoted. ``None`` = criterion not used."""

    min_series_reduction_pct: float = 50.0
    require_full_critical_coverage: bool = True
    max_cpu_overhead_pct: float | None = None
    max_memory_overhead_mb: float | None = None
    min_cost_reduction_pct: float | None = None
    min_samples: int = 5

    def validate(self) -> list[str]:
        p: list[str] = []
        if not _is_number(self.min_series_reduction_pct) or not 0 <= self.min_series_reduction_pct <= 100:
            p.append(f"min series reduction must be between 0 and 100 %, got {self.min_series_reduction_pct!r}")
        if not isinstance(self.require_full_critical_coverage, bool):
            p.append("require full critical coverage must be true or false")
        if self.max_cpu_overhead_pct is not None and (
            not _is_number(self.max_cpu_overhead_pct) or self.max_cpu_overhead_pct < 0
        ):
            p.append(f"max CPU overhead must be 0 % or more, got {self.max_cpu_overhead_pct!r}")
        if self.max_memory_overhead_mb is not None and (
            not _is_number(self.max_memory_overhead_mb) or self.max_memory_overhead_mb < 0
        ):
            p.append(f"max memory overhead must be 0 MB or more, got {self.max_memory_overhead_mb!r}")
        if self.min_cost_reduction_pct is not None and (
            not _is_number(self.min_cost_reduction_pct) or not 0 <= self.min_cost_reduction_pct <= 100
        ):
            p.append(f"min cost reduction must be between 0 and 100 %, got {self.min_cost_reduction_pct!r}")
        if not isinstance(self.min_samples, int) or isinstance(self.min_samples, bool) or self.min_samples < 2:
            p.append(f"min samples must be a whole number of at least 2, got {self.min_samples!r}")
        return p

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SuccessCriteria:
        return cls(**_known(cls, data or {}, "success criteria"))


# ---------------------------------------------------------------- target


@dataclass(frozen=True)
class Target:
    """Where both variants run: this host, or a Kubernetes namespace + node selector."""

    kind: str = "local"
    namespace: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)

    def validate(self) -> list[str]:
        p: list[str] = []
        if self.kind not in TARGET_KINDS:
            p.append(f"target kind must be one of {', '.join(TARGET_KINDS)}, got {self.kind!r}")
            return p
        if self.kind == "kubernetes":
            if not self.namespace:
                p.append("a kubernetes target needs a namespace")
            elif not _K8S_NAME.match(self.namespace) or len(self.namespace) > 63:
                p.append(f"namespace {self.namespace!r} is not a valid Kubernetes name (lowercase letters, digits, '-')")
        elif self.namespace or self.node_selector:
            p.append("namespace and node selector only apply to a kubernetes target")
        if not isinstance(self.node_selector, dict):
            p.append("node selector must be a mapping of label → value")
        else:
            for k, v in self.node_selector.items():
                if not isinstance(k, str) or not _LABEL_KEY.match(k):
                    p.append(f"node selector key {k!r} is not a valid label key")
                if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
                    p.append(f"node selector value {v!r} for {k!r} is not a valid label value")
        return p

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "node_selector": dict(self.node_selector)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Target:
        return cls(**_known(cls, data or {}, "target"))

    def describe(self) -> str:
        if self.kind == "local":
            return "this host"
        sel = ",".join(f"{k}={v}" for k, v in sorted(self.node_selector.items()))
        return f"kubernetes ns/{self.namespace}" + (f" [{sel}]" if sel else "")


# ---------------------------------------------------------------- load profile

# Custom pattern parameters and their checks; documented defaults live in DEFAULT_PATTERN.
DEFAULT_PATTERN: dict[str, Any] = {
    "name_template": "worker-{i}",
    "count": 10,
    "lifetime_s": 0,  # 0 = lives for the whole experiment
    "cpu_pattern": "steady",
    "cpu_pct": 5.0,
    "memory_mb": 20.0,
    "memory_pattern": "steady",
    "churn_rate": 0.0,  # processes replaced per second
}
_PATTERN_KEYS = frozenset(DEFAULT_PATTERN)
MAX_NAME_TEMPLATE = 64
_TEMPLATE_SPEC = re.compile(r"^0?[0-9]{0,2}d?$")  # '', '3', '03', '03d': a zero-padded slot number at most


def _safe_template(tmpl: str) -> bool:
    """Only literal text and ``{i}`` / ``{i:03d}`` fields (no attributes, indexes, conversions, nesting)."""
    import string

    try:
        fields = list(string.Formatter().parse(tmpl))
    except ValueError:  # unbalanced braces
        return False
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name != "i" or conversion is not None or not _TEMPLATE_SPEC.match(spec or "") or "{" in (spec or ""):
            return False
    return True


@dataclass(frozen=True)
class LoadProfile:
    """Synthetic processes started on the target during the experiment.

    ``custom`` takes ``params = {"patterns": [ {name_template, count, lifetime_s,
    cpu_pattern, cpu_pct, memory_mb, memory_pattern, churn_rate}, ... ]}``; the other
    profiles take optional overrides (``scale``). ``max_processes`` bounds the total.
    """

    name: str = "realistic"
    params: dict[str, Any] = field(default_factory=dict)
    max_processes: int = DEFAULT_MAX_PROCESSES

    def validate(self) -> list[str]:
        p: list[str] = []
        if self.name not in LOAD_PROFILES:
            p.append(f"unknown load profile {self.name!r}; choose one of {', '.join(LOAD_PROFILES)}")
            return p
        if (
            not isinstance(self.max_processes, int)
            or isinstance(self.max_processes, bool)
            or not 1 <= self.max_processes <= MAX_PROCESSES_CAP
        ):
            p.append(f"max processes must be between 1 and {MAX_PROCESSES_CAP}, got {self.max_processes!r}")
        if not isinstance(self.params, dict):
            return [*p, "load profile params must be a mapping"]
        if self.name == "custom":
            patterns = self.params.get("patterns")
            if not isinstance(patterns, list) or not patterns:
                p.append("a custom load profile needs params.patterns: a non-empty list of process patterns")
            else:
                total = 0
                for i, pat in enumerate(patterns):
                    p.extend(_pattern_problems(pat, f"pattern {i + 1}"))
                    if isinstance(pat, dict) and isinstance(pat.get("count", DEFAULT_PATTERN["count"]), int):
                        total += pat.get("count", DEFAULT_PATTERN["count"])
                if isinstance(self.max_processes, int) and total > self.max_processes:
                    p.append(f"custom patterns ask for {total} processes; max processes is {self.max_processes}")
        else:
            scale = self.params.get("scale", 1.0)
            if not _is_number(scale) or not 0 < scale <= 10:
                p.append(f"load scale must be between 0 and 10, got {scale!r}")
        return p

    def patterns(self) -> list[dict[str, Any]]:
        """Custom patterns with defaults filled in (empty for built-in profiles)."""
        if self.name != "custom":
            return []
        return [{**DEFAULT_PATTERN, **pat} for pat in self.params.get("patterns", [])]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "max_processes": self.max_processes}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LoadProfile:
        return cls(**_known(cls, data or {}, "load profile"))


def _pattern_problems(pat: Any, at: str) -> list[str]:
    if not isinstance(pat, dict):
        return [f"{at} must be a mapping"]
    p: list[str] = []
    unknown = sorted(set(pat) - _PATTERN_KEYS)
    if unknown:
        p.append(f"{at} has unknown key(s) {', '.join(map(str, unknown))}")
    full = {**DEFAULT_PATTERN, **pat}
    tmpl = full["name_template"]
    if not isinstance(tmpl, str) or not tmpl.strip():
        p.append(f"{at}: name template must be a non-empty string")
    elif len(tmpl) > MAX_NAME_TEMPLATE:
        p.append(f"{at}: name template must be at most {MAX_NAME_TEMPLATE} characters")
    elif not _safe_template(tmpl):
        # Checked before formatting: '{i:>999999999}' would build a gigabyte, '{i.x}' would raise.
        p.append(f"{at}: name template {tmpl!r} may only use the placeholder {{i}} (optionally {{i:03d}})")
    else:
        name = tmpl.format(i=0)
        if "/" in name or "\x00" in name or len(name) > 64:
            p.append(f"{at}: process name {name!r} must not contain '/' and be at most 64 characters")
    count = full["count"]
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_PROCESSES_CAP:
        p.append(f"{at}: count must be between 1 and {MAX_PROCESSES_CAP}, got {count!r}")
    if not _is_number(full["lifetime_s"]) or full["lifetime_s"] < 0:
        p.append(f"{at}: lifetime must be 0 (whole run) or a positive number of seconds, got {full['lifetime_s']!r}")
    if full["cpu_pattern"] not in CPU_PATTERNS:
        p.append(f"{at}: cpu pattern must be one of {', '.join(CPU_PATTERNS)}, got {full['cpu_pattern']!r}")
    if full["memory_pattern"] not in MEMORY_PATTERNS:
        p.append(f"{at}: memory pattern must be one of {', '.join(MEMORY_PATTERNS)}, got {full['memory_pattern']!r}")
    if not _is_number(full["cpu_pct"]) or not 0 <= full["cpu_pct"] <= 100:
        p.append(f"{at}: cpu % must be between 0 and 100, got {full['cpu_pct']!r}")
    if not _is_number(full["memory_mb"]) or not 0 <= full["memory_mb"] <= 1024:
        p.append(f"{at}: memory must be between 0 and 1024 MB, got {full['memory_mb']!r}")
    if not _is_number(full["churn_rate"]) or not 0 <= full["churn_rate"] <= 100:
        p.append(f"{at}: churn rate must be between 0 and 100 processes/s, got {full['churn_rate']!r}")
    return p


# ---------------------------------------------------------------- pipeline refs


@dataclass(frozen=True)
class PipelineRef:
    """``NAME`` or ``NAME@VERSION``; ``version=None`` means "latest when deployed"."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str, what: str = "pipeline") -> PipelineRef:
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(f"{what} must be a pipeline name like process-topk-v1 or NAME@VERSION")
        name, sep, ver = text.strip().partition("@")
        if not name.strip():
            raise ValidationError(f"{what} {text!r} has no pipeline name before '@'")
        if sep:
            if not (ver.isascii() and ver.isdigit()) or len(ver) > 9 or int(ver) < 1:
                raise ValidationError(f"{what} version in {text!r} must be a positive whole number")
            return cls(name.strip(), int(ver))
        return cls(name.strip(), None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def _known(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(f"{what} must be a mapping")
    names = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValidationError(f"{what} has unknown field(s): {', '.join(map(str, unknown))}")
    return dict(data)


def ensure_valid(*objs: Any) -> None:
    """Raise one ValidationError with every problem of every value object given."""
    problems: list[str] = []
    for o in objs:
        problems.extend(o.validate())
    _raise(problems)
