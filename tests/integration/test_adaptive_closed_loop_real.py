"""Adaptive's closed loop on the real collector: re-tuned from what the candidate exported,
restarted with the new thresholds (not counted as a crash), near its budget within a few intervals."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client import REGISTRY

from core.analysis.analyzer import ExperimentAnalyzer
from core.catalog.templates import get_template
from core.domain.criteria import LoadProfile, SuccessCriteria, Timing
from core.domain.experiment import Experiment, State
from core.runtime.local import LocalDeployer, is_collector_of
from core.scheduler import Scheduler
from core.store.migrate import upgrade
from core.store.uow import Database

pytestmark = pytest.mark.slow


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'phoenix.db'}"
    upgrade(url)
    d = Database(url)
    yield d
    d.dispose()


@pytest.fixture(scope="module")
def otelcol_bin() -> str:
    from core.otelcol.distribution import build

    return build().path  # the real Phoenix collector (built by `make collector`; built here if absent)


def _pipeline(tmp_path, name: str, by: str | None = None) -> str:
    """A template scraping every 2 s (one fresh input per interval; the templates' 10 s would make
    this test slow); adaptive ranking by ``by`` (memory: no CPU-utilisation metric at all)."""
    p = get_template(name)
    p.receiver().params["collection_interval"] = "2s"
    if by:
        p.node("adaptive").params["by"] = by
    if by == "memory":
        p.receiver().params["metrics"] = {}
    path = tmp_path / f"{name}-{by}.json"
    path.write_text(json.dumps(p.to_dict()))
    return str(path)


def test_adaptive_candidate_converges_to_its_budget_on_real_collectors(db, tmp_path, otelcol_bin):
    exp = Experiment.create(
        name="loop", baseline=_pipeline(tmp_path, "process-baseline-v1"),
        candidate=_pipeline(tmp_path, "process-adaptive-v1", "memory"), timing=Timing(50.0, 2.5),
        load=LoadProfile("realistic"), criteria=SuccessCriteria(min_series_reduction_pct=10, min_samples=3),
    )  # fmt: skip
    with db.uow() as u:
        u.experiments.add(exp)
        u.commit()
    dep = LocalDeployer(db.uow, data_dir=tmp_path, database_url=db.url, otelcol_bin=otelcol_bin)
    sch = Scheduler(db.uow, dep, ExperimentAnalyzer(), interval_s=0.25, lease_s=10)
    started = time.monotonic()
    try:
        end = time.monotonic() + 150
        while time.monotonic() < end and not _get(db, exp.id).is_terminal:
            sch.run_once()
            time.sleep(0.25)
        with db.uow() as u:
            procs = u.processes.list(owner_ref=exp.id)
            audit = list(reversed(u.audit.list(subject=exp.id, limit=500)))
            samples = u.samples.list(exp.id)
    finally:
        dep.teardown(exp)
    e = _get(db, exp.id)
    assert e.state == State.COMPLETED, e.error
    steps = [a.details for a in audit if a.action == "experiment.retune"]
    restarts = [a.details for a in audit if a.action == "collector.restarted"]
    rows = [(s["interval"], h, r) for s in steps for h, r in s["nodes"]["adaptive"].items()]
    print(f"\nclosed loop on the real collector ({time.monotonic() - started:.0f}s wall):")
    for s in steps:
        for h, r in s["nodes"]["adaptive"].items():
            print(f"  interval {s['interval']} {h}: baseline {r['baseline_series']} budget {r['budget']} "
                  f"achieved {r['achieved']} deviation {r['deviation_pct']}% K {r.get('k')} "
                  f"mem>={r.get('memory_bytes')} rankable {r.get('rankable')} restart {s['restart']} {r.get('limit') or ''}")
    # A planned restart, not a crash: audited with its reason; the crash counter stays at 0.
    assert restarts and all(r["reason"] == "retune" and r["variant"] == "candidate" for r in restarts)
    assert not [a for a in audit if a.action == "collector.crashed"]
    assert REGISTRY.get_sample_value("phoenix_collector_restarts_total",
                                     {"phoenix_experiment_id": exp.id, "phoenix_variant": "candidate"}) is None
    asked = sum(1 for s in steps if s["restart"])
    assert asked - 1 <= len(restarts) <= asked  # the last request may come after the deployer's last tick
    assert {p.role for p in procs if p.status == "stopped"} >= {"candidate"}
    # Step 1 reports the saved (default) thresholds' output; from step 2 on, the loop's. This host
    # is shared: other processes come and go between intervals (the baseline's count moves), so
    # single steps can leave the band; the loop must bring them back (a re-tune)
    # and sit within ±10 % of budget typically.
    # The realistic load gives the host processes that memory tells apart: without it a quiet
    # container is mostly kernel threads at 0 bytes and the budget sits above the ranking's
    # ceiling. Rows at a limit (ceiling, or the floor: what must be kept is over budget) say so
    # and are not held to the band; the unit tests cover both cases.
    assert len(steps) >= 4, steps
    tuned = [(i, h, r) for i, h, r in rows if i >= 2]
    reachable = [r for _, _, r in tuned if not r.get("limit")]
    assert len(reachable) * 2 >= len(tuned), tuned
    # Settled: the second half of the steps sits in the band typically. The first half may
    # not, on a busy CI host: there the processes memory tells apart went 47 → 28 → 54 between
    # steps 1 and 7 as the load and other tests started, and the loop chased them (CI, 2026-12-03:
    # steps 2–8 at −24, +14, +31, −24, +9, −17, −11 %, then −1.4, −1.4, +4.2 %).
    settled = reachable[len(reachable) // 2:]
    devs = sorted(abs(r["deviation_pct"]) for r in settled)
    assert devs[len(devs) // 2] <= 10.0, tuned
    for before, s in zip(steps, steps[1:], strict=False):
        for h, r in s["nodes"]["adaptive"].items():
            if abs(r["deviation_pct"]) > 10.0 and not r.get("limit"):
                # out of the band: re-tuned (K moved; the config changes unless processes tie at
                # the threshold, and then the next step moves K further) — never left alone
                assert s["restart"] or r["k"] != before["nodes"]["adaptive"][h]["k"], (before, s)
    # Never more series than baseline, on the collectors' real output.
    assert all(r["achieved"] <= r["baseline_series"] for _, _, r in rows)
    by = {v: [s for s in samples if s.variant == v] for v in ("baseline", "candidate")}
    assert len(by["candidate"]) >= 3
    assert all(c.series <= b.series for b, c in zip(by["baseline"], by["candidate"], strict=True))
    assert not any(is_collector_of(p.pid, exp.id) for p in procs)
    assert not list(tmp_path.glob("*.restart.json")) and not list(tmp_path.glob("*.next.yaml"))


def _get(db, eid) -> Experiment:
    with db.uow() as u:
        return u.experiments.get(eid)
