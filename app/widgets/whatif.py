"""Cost explorer maths (no Streamlit): estimate once on a sample fleet, scale by hosts.

The engine evaluates the pipeline on a simulated sample of hosts (``SAMPLE_HOSTS`` ×
processes per host) at the chosen collection interval; per-host series, data points per
series and bytes per point then scale linearly to any fleet size through
``core.cost.project`` — the cost models are linear in series / dpm / bytes per host
except for free tiers and allotments, which ``project`` applies on the fleet totals.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from core.cost import PriceCard, project
from core.domain.pipeline import Pipeline
from core.engine.fleet import generate_fleet
from core.services.estimate import Estimates
from core.services.settings import SettingsService

SAMPLE_HOSTS = 5
FLEET_STEPS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000)
BASELINE = "process-baseline-v1"


@dataclass(frozen=True)
class PerHost:
    pipeline: str
    series_in: float
    series_out: float
    dpm_per_series_in: float
    dpm_per_series_out: float
    bytes_per_point: dict[str, float]
    reduction_pct: float
    critical_coverage_pct: float | None


def with_interval(p: Pipeline, interval_s: int) -> Pipeline:
    out = copy.deepcopy(p)
    recv = out.receiver()
    recv.params = {**recv.params, "collection_interval": f"{int(interval_s)}s"}
    return out


def per_host(p: Pipeline, procs: int, interval_s: int, configuration: SettingsService | None = None,
             seed: int = 11, estimates: Estimates | None = None) -> PerHost:
    """Per-host figures of ``p`` on the sample fleet, with the critical policy Settings holds."""
    snap = generate_fleet(nodes=SAMPLE_HOSTS, procs=procs, seed=seed, scrapes=2, interval_s=float(interval_s))
    # through the services' cache when given (``backend.estimates()``): the page reruns often
    estimator = estimates or Estimates(configuration or SettingsService(None))
    r = estimator.report(with_interval(p, interval_s), snap, source="cost explorer sample", with_cost=False)
    hosts = max(1, r["snapshot"]["hosts"])
    bpp = {e["type"]: float(e["bytes_per_point"]) for e in (r.get("exporters") or {}).values()
           if e.get("bytes_per_point")}
    return PerHost(
        pipeline=p.name,
        series_in=r["series_in"] / hosts, series_out=r["series_out"] / hosts,
        dpm_per_series_in=(r["dpm_in"] / r["series_in"]) if r["series_in"] else 0.0,
        dpm_per_series_out=(r["dpm_out"] / r["series_out"]) if r["series_out"] else 0.0,
        bytes_per_point=bpp, reduction_pct=r["reduction_pct"],
        critical_coverage_pct=_float((r.get("critical") or {}).get("coverage_pct")),
    )


def cost_table(ph: PerHost, hosts: int, cards: list[PriceCard]) -> list[dict[str, Any]]:
    """Before (unreduced) vs after (this pipeline) $/month per card at ``hosts`` hosts."""
    bpp = ph.bytes_per_point or None
    before = project(fleet_hosts=hosts, series_per_host=ph.series_in, dpm_per_series=ph.dpm_per_series_in,
                     bytes_per_point=bpp, cards=cards)
    after = project(fleet_hosts=hosts, series_per_host=ph.series_out, dpm_per_series=ph.dpm_per_series_out,
                    bytes_per_point=bpp, cards=cards)
    rows = []
    for b, a in zip(before, after, strict=True):
        saving = b.usd_per_month - a.usd_per_month
        rows.append({
            "vendor": f"{b.vendor} — {b.plan}" if b.plan else b.vendor, "card_id": b.card_id,
            "before": round(b.usd_per_month, 2), "after": round(a.usd_per_month, 2),
            "saving_usd": round(saving, 2),
            "saving_pct": round(100 * saving / b.usd_per_month, 1) if b.usd_per_month else 0.0,
            "unit": a.unit, "source": b.source, "as_of": b.as_of,
        })
    return rows


def sweep(ph: PerHost, cards: list[PriceCard], steps: tuple[int, ...] = FLEET_STEPS) -> list[dict[str, Any]]:
    """$/month after the pipeline across fleet sizes, one row per (hosts, card)."""
    rows = []
    for h in steps:
        for r in cost_table(ph, h, cards):
            rows.append({"hosts": h, "vendor": r["vendor"], "after": r["after"], "before": r["before"]})
    return rows


def _float(v: Any) -> float | None:
    return None if v is None else float(v)
