"""Overview insights (no Streamlit): best measured reduction, projected savings, alerts."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.bootstrap import Services
from core.domain.accounts import Actor
from core.runtime.procs import pid_alive


@dataclass
class Insights:
    best_reduction_pct: float | None = None
    best_experiment: str | None = None
    projected_savings_usd: float | None = None
    savings_basis: str = ""
    running_now: list[dict[str, str]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)




def gather(svc: Services, actor: Actor, limit: int = 100) -> Insights:
    """From the database only: completed results, running experiments, collector processes."""
    out = Insights()
    out.running_now = [{"id": r.id, "name": r.name} for r in svc.experiments.list(actor, states=["Running"], limit=limit)]
    completed = svc.experiments.completed(actor, limit=50)
    for e in completed:
        red = (e.result or {}).get("series_reduction_pct")
        if red is not None and (out.best_reduction_pct is None or red > out.best_reduction_pct):
            out.best_reduction_pct, out.best_experiment = float(red), e.id
    # Savings of what is in production: the promoted experiment's measured cost difference.
    rec = svc.promotion.current(actor)
    if rec is not None:
        result = svc.experiments.get(actor, rec.experiment_id).result or {}
        costs = result.get("cost") or {}
        if costs:
            name, c = next(iter(costs.items()))
            if c.get("baseline_usd") is not None and c.get("candidate_usd") is not None:
                out.projected_savings_usd = round(float(c["baseline_usd"]) - float(c["candidate_usd"]), 2)
                out.savings_basis = f"{rec.ref} on {name}"
        else:
            out.savings_basis = f"{rec.ref}: no price card in its result"
    # Failed experiments are already listed by the overview's experiment table.
    procs = svc.system.collector_processes(actor, status="running")
    down = [p for p in procs if not pid_alive(p.pid)]
    out.alerts += [f"Collector {p.role} of {p.owner_ref} (pid {p.pid}) is down" for p in down]
    return out
