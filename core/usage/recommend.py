"""From queries to a pipeline: keep individual every process a query names, roll up the rest.

1. ``analyse`` walks each query (``core.usage.promql``) and evaluates its process matchers on
   the snapshot's processes (``core.usage.matching``): those are *referenced*.
2. ``propose`` turns the referenced processes into critical-policy rules of priority ``high``
   (whole executables when every process of that name is referenced, exact command lines
   otherwise), placed after the policy's critical rules, and builds the pipeline
   hostmetrics → … → priority_classifier (keep ``high``) → rollup per executable → exporter.
3. ``check`` reads the candidate's exported series (the engine's evaluation of that pipeline)
   and confirms, per query, that its selectors select the same individual series as before and
   no rolled-up one. A query that fails any step is reported with the reason, never dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.catalog.templates import get_template
from core.domain.critical import MAX_RULES, CriticalPolicy, policy_from_rules
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.domain.user_regex import MAX_REGEX_LEN
from core.engine.encoding import metric_meta, prometheus_label_name, prometheus_metric_name
from core.usage.matching import label_frame, matcher_problem, rows_matching
from core.usage.promql import HOST_LABEL, PROCESS_LABELS, Selector, usage
from core.usage.sources import Query

BASE_TEMPLATE = "process-aggregated-v1"  # classify → rollup per executable: the shape we fill in
PIPELINE_NAME = "process-recommended-v1"
KEEP_PRIORITY = "high"
PATTERN_BUDGET = MAX_REGEX_LEN - 24  # room for ^(?:…)$ around an alternation

KEPT, NOT_KEPT, IGNORED, ERROR = "kept", "not kept", "ignored", "error"


@dataclass
class Verdict:
    query: Query
    status: str
    reason: str = ""
    processes: int = 0  # processes (last scrape) its matchers select
    selectors: list[Selector] = field(default_factory=list)
    rows: np.ndarray | None = None  # snapshot rows its process matchers select

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.query.origin, "expr": self.query.written, "evaluated": self.query.expr,
                "status": self.status, "reason": self.reason, "processes": self.processes}


@dataclass
class Analysis:
    verdicts: list[Verdict]
    referenced: np.ndarray  # bool per snapshot row
    labels: list[str]  # labels the queries match on or group by


def _snapshot_labels(snapshot: pd.DataFrame) -> dict[str, pd.Series]:
    return label_frame(snapshot, {**PROCESS_LABELS, HOST_LABEL: "host_name"})


def analyse(snapshot: pd.DataFrame, queries: Sequence[Query]) -> Analysis:
    if len(snapshot) == 0:
        raise ValidationError("the snapshot holds no processes: nothing to recommend from")
    labels = _snapshot_labels(snapshot)
    n = len(snapshot)
    last = last_scrape(snapshot)
    referenced = np.zeros(n, dtype=bool)
    used: set[str] = set()
    verdicts: list[Verdict] = []
    for q in queries:
        try:
            u = usage(q.expr)
        except ValueError as exc:
            verdicts.append(Verdict(q, ERROR, f"not valid PromQL: {exc}"))
            continue
        if not u.selectors:
            verdicts.append(Verdict(q, IGNORED, "reads no process metric"))
            continue
        used |= u.grouping | {m.label for s in u.selectors for m in s.matchers}
        mine = np.zeros(n, dtype=bool)
        verdict = Verdict(q, KEPT, "", selectors=u.selectors)
        for sel in u.selectors:
            bad = next((p for p in map(matcher_problem, sel.matchers) if p), None)
            if bad:
                verdict.status, verdict.reason = ERROR, bad
                break
            if not sel.process_matchers:
                if not sel.summed_per_host and verdict.status == KEPT:
                    verdict.status = NOT_KEPT
                    verdict.reason = (f"{sel.text} names no process label, and the query does more than sum it "
                                      "per host: keeping it would mean keeping every process individually")
                continue
            narrowing = [m for m in sel.matchers if m.label in PROCESS_LABELS or m.label == HOST_LABEL]
            mine |= rows_matching(labels, n, narrowing)
        if verdict.status != ERROR:
            referenced |= mine
            verdict.rows = mine
            verdict.processes = int((mine & last).sum())
            if verdict.status == KEPT:
                verdict.reason = _kept_reason(u.selectors, verdict.processes)
        verdicts.append(verdict)
    return Analysis(verdicts, referenced, sorted(used - {"__name__"}))


def _kept_reason(selectors: Iterable[Selector], processes: int) -> str:
    sel = list(selectors)
    if all(not s.process_matchers for s in sel):
        return "sums every process per host: the rollup keeps host sums"
    return f"its {processes} process(es) stay individual"


def last_scrape(snapshot: pd.DataFrame) -> np.ndarray:
    scrape = snapshot["scrape"].to_numpy()
    last = snapshot.groupby("host_name", observed=True)["scrape"].transform("max").to_numpy()
    return np.asarray(scrape == last, dtype=bool)


# ---- the proposal ---------------------------------------------------------------------------------


def literal(text: str) -> str:
    """``text`` as an RE2 (Go and C++) literal. Punctuation is backslash-escaped, so a pattern
    never holds ``${`` or ``$$`` (refused in collector configs); control bytes become ``\\x{..}``."""
    out = []
    for ch in text:
        if ch.isascii() and not (ch.isalnum() or ch == "_" or ch == " "):
            out.append(f"\\x{{{ord(ch):02x}}}" if ord(ch) < 32 or ord(ch) == 127 else "\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _alternations(values: Iterable[str]) -> list[str]:
    """``^(?:a|b|…)$`` patterns, each within the regex length limit. A value too long for one
    pattern is matched by its prefix (``^(?:prefix)``): more processes kept, never fewer."""
    patterns: list[str] = []
    chunk: list[str] = []
    size = 0
    for v in sorted(set(values)):
        lit = literal(v)
        if len(lit) > PATTERN_BUDGET:
            cut = literal(v[: PATTERN_BUDGET // 5])  # escaping grows text at most 5× (\x{..} is 6 for 1)
            patterns.append(f"^(?:{cut})")
            continue
        if chunk and size + len(lit) + 1 > PATTERN_BUDGET:
            patterns.append("^(?:" + "|".join(chunk) + ")$")
            chunk, size = [], 0
        chunk.append(lit)
        size += len(lit) + 1
    if chunk:
        patterns.append("^(?:" + "|".join(chunk) + ")$")
    return patterns


def keep_rules(snapshot: pd.DataFrame, referenced: np.ndarray) -> list[dict[str, str]]:
    """Rules (priority ``high``) that classify every referenced process, as few as possible."""
    if not referenced.any():
        return []
    exe = snapshot["executable_name"].astype(str).to_numpy()
    cmd = snapshot["command_line"].astype(str).to_numpy()
    whole = {e for e in set(exe[referenced]) if e and referenced[exe == e].all()}
    rest = referenced & ~np.isin(exe, list(whole))
    rules = [{"match": "executable_name", "pattern": p, "priority": KEEP_PRIORITY} for p in _alternations(whole)]
    rules += [{"match": "command_line", "pattern": p, "priority": KEEP_PRIORITY} for p in _alternations(cmd[rest])]
    return rules


def propose(snapshot: pd.DataFrame, analysis: Analysis, policy: CriticalPolicy) -> Pipeline:
    """The recommended pipeline: the policy's critical rules, then the keep rules, then the rest."""
    keep = keep_rules(snapshot, analysis.referenced)
    critical = [r.to_dict() for r in policy.rules if r.priority == "critical"]
    others = [r.to_dict() for r in policy.rules if r.priority != "critical"]
    rules = critical + keep + others
    if len(rules) > MAX_RULES:
        raise ValidationError(f"the queries reference processes that need {len(keep)} keep rules; with the "
                              f"policy's {len(critical) + len(others)} that is over the limit of {MAX_RULES}")
    policy_from_rules(rules)  # every pattern passes the policy's own checks
    base = get_template(BASE_TEMPLATE)
    pipeline = Pipeline.from_dict(copy.deepcopy(base.to_dict()))
    pipeline.name = PIPELINE_NAME
    kept = int(analysis.referenced.sum())
    pipeline.description = (
        "Recommended from usage: the processes the queries read "
        f"stay individual ({len(keep)} keep rule(s)); critical processes stay individual; every "
        "other process is summed per executable per host.") if kept else (
        "Recommended from usage: no query names a process; critical processes stay individual and every "
        "other process is summed per executable per host.")
    for node in pipeline.nodes:
        if node.type == "priority_classifier":
            node.params["keep_priorities"] = [KEEP_PRIORITY]
    pipeline.critical_policy = rules
    return pipeline


# ---- the check on the candidate's output ------------------------------------------------------------


def series_labels(series: pd.DataFrame) -> tuple[dict[str, pd.Series], np.ndarray]:
    """Label columns of an exported series frame (Prometheus names) and each row's metric name."""
    columns = {prometheus_label_name(c): c for c in series.columns if c not in ("scrape", "host_name", "metric", "value")}
    columns.setdefault(HOST_LABEL, "host_name")
    names = {m: _prom_name(m) for m in series["metric"].astype(str).unique()}
    return label_frame(series, columns), series["metric"].astype(str).map(names).to_numpy()


def _prom_name(otel: str) -> str:
    meta = metric_meta(otel)
    return prometheus_metric_name(meta.name, meta.unit, meta.is_monotonic_sum, is_gauge=meta.kind == "gauge")


def keep_only_kept(analysis: Analysis) -> None:
    """Reference only the processes of queries still kept: a query the check demoted gains
    nothing from its processes staying individual."""
    referenced = np.zeros_like(analysis.referenced)
    for v in analysis.verdicts:
        if v.status == KEPT and v.rows is not None:
            referenced |= v.rows
    analysis.referenced = referenced


def check(analysis: Analysis, snapshot: pd.DataFrame, candidate: pd.DataFrame) -> int:
    """Demote to NOT_KEPT any query whose selectors would read a rolled-up series, or miss a
    referenced process, in the candidate's output (its last scrape). Returns how many."""
    demoted = 0
    labels, names = series_labels(candidate)
    n = len(candidate)
    pid_col = "process.pid"
    rolled = candidate[pid_col].isna().to_numpy() if pid_col in candidate.columns else np.ones(n, dtype=bool)
    kept_ids = set()
    if pid_col in candidate.columns:
        ind = candidate[~rolled]
        kept_ids = set(zip(ind["host_name"].astype(str), ind[pid_col].astype("int64"), strict=True))
    snap_labels = _snapshot_labels(snapshot)
    last = last_scrape(snapshot)
    hosts = snapshot["host_name"].astype(str).to_numpy()
    pids = snapshot["pid"].to_numpy()
    for v in analysis.verdicts:
        if v.status != KEPT:
            continue
        for sel in v.selectors:
            if not sel.process_matchers:
                continue
            hit = np.isin(names, sel.metrics) & rows_matching(labels, n, sel.matchers)
            if (hit & rolled).any():
                row = candidate[hit & rolled].iloc[0]
                group = row.get("process.executable.name", "")
                v.status = NOT_KEPT
                v.reason = (f"{sel.text} also selects rolled-up series (e.g. executable {group} on {row['host_name']}): "
                            "a rollup's labels are empty, and its matchers accept that")
                demoted += 1
                break
            narrowing = [m for m in sel.matchers if m.label in PROCESS_LABELS or m.label == HOST_LABEL]
            wanted = rows_matching(snap_labels, len(snapshot), narrowing) & last
            missing = [(h, int(p)) for h, p in zip(hosts[wanted], pids[wanted], strict=True) if (h, int(p)) not in kept_ids]
            if missing:
                v.status = NOT_KEPT
                v.reason = f"{sel.text}: process {missing[0][1]} on {missing[0][0]} is not kept individually"
                demoted += 1
                break
    return demoted
