"""Achieved vs budget per host: the one table the estimate, the experiment page and the CLI show.

Two sources, one row shape:
- an estimate's ``report["budget"]`` (``core.engine.estimate.budget_report``): per series-budget
  node and host, what the pipeline would export on the snapshot;
- an experiment's closed-loop records (audit ``experiment.retune``): the real loop writes
  ``nodes`` (``core.runtime.closed_loop.LoopStep.details``), the emulator ``after`` (the tuned
  ``computed`` of each node, whose ``hosts`` carry budget and last interval's achieved).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class HostBudget:
    node: str
    host: str
    baseline_series: float | None
    budget: float | None
    achieved: float | None
    deviation_pct: float | None
    interval: int | None = None
    #: Why the host cannot reach its budget: at the ranking's ceiling (every process it tells
    #: apart is kept) or at the floor (what it must keep exports more than the budget).
    limit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def deviation(budget: float | None, achieved: float | None) -> float | None:
    if not budget or achieved is None:
        return None
    return round(100.0 * (achieved / budget - 1.0), 3)


def _row(node: str, host: str, v: Mapping[str, Any], interval: int | None) -> HostBudget:
    budget, achieved = _num(v.get("budget")), _num(v.get("achieved"))
    return HostBudget(node, str(host), _num(v.get("baseline_series")), budget, achieved,
                      _num(v.get("deviation_pct")) if "deviation_pct" in v else deviation(budget, achieved), interval,
                      v["limit"] if isinstance(v.get("limit"), str) else None)


def from_estimate(budget_report: Mapping[str, Any] | None) -> list[HostBudget]:
    """Rows of an estimate report's ``budget`` section (empty without a series-budget node)."""
    out = []
    for node, n in sorted((budget_report or {}).items()):
        for host, v in sorted(((n or {}).get("hosts") or {}).items()):
            if isinstance(v, Mapping):
                out.append(_row(node, host, v, None))
    return out


def from_retunes(records: Iterable[Mapping[str, Any]]) -> list[HostBudget]:
    """Every interval's rows of an experiment's closed-loop records (oldest first)."""
    out = []
    for i, d in enumerate(records):
        interval = d.get("interval") if isinstance(d.get("interval"), int) else i + 1
        nodes = d.get("nodes")
        if not isinstance(nodes, Mapping):  # the emulator's shape: the tuned state after the step
            after = d.get("after") if isinstance(d.get("after"), Mapping) else {}
            nodes = {k: (c or {}).get("hosts") for k, c in after.items() if isinstance(c, Mapping)}
        for node, hosts in sorted(nodes.items()):
            for host, v in sorted((hosts or {}).items()):
                if isinstance(v, Mapping) and "budget" in v:
                    out.append(_row(node, host, v, interval))
    return out


def latest(rows: Iterable[HostBudget]) -> list[HostBudget]:
    """The last row of each (node, host) that has an achieved figure."""
    last: dict[tuple[str, str], HostBudget] = {}
    for r in rows:
        if r.achieved is not None:
            last[(r.node, r.host)] = r
    return [last[k] for k in sorted(last)]


def text_table(rows: Iterable[HostBudget]) -> list[str]:
    """Fixed-width lines for the CLI: host, baseline series, budget, achieved, deviation %."""
    def f(x: float | None, fmt: str = "{:,.0f}") -> str:
        return "n/a" if x is None else fmt.format(x)

    rows = list(rows)
    if not rows:
        return []
    lines = [f"{'node':<12} {'host':<24} {'baseline':>10} {'budget':>10} {'achieved':>10} {'deviation':>10}"]
    for r in rows:
        lines.append(f"{r.node[:12]:<12} {r.host[:24]:<24} {f(r.baseline_series):>10} {f(r.budget):>10} "
                     f"{f(r.achieved):>10} {f(r.deviation_pct, '{:+.1f}%'):>10}"
                     + (f"  {r.limit}" if r.limit else ""))
    return lines
