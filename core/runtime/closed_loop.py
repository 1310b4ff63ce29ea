"""Adaptive's closed loop on real collectors: tune from what the candidate exported, restart it.

The emulator re-tunes in process (``core.runtime.collector.ServedPipeline.retune``). A real
otelcol reads its config once, so here the loop is split between two processes of the local
runtime, with the same tuning code (``core.engine.tuning.tune``):

1. the measuring child (``ScrapeMeasurer``) owns a ``ClosedLoop``. Each interval it gives it
   the tap's input (the exact values the candidate's ``transform`` compared, utilisation
   included) and the series the candidate exported per ``host_name``; the loop re-tunes and
   re-renders the candidate's config. When the text differs from what runs, the measurer
   writes it beside the live config (``…-candidate.next.yaml``) with a restart request;
2. the deployer (``LocalDeployer.healthy``, each scheduler tick) takes the request: it stops
   the candidate, moves the new config in place and starts the same command again. The audit
   says ``collector.restarted`` with reason ``retune`` (not ``collector.crashed``), and the
   crash counter ``phoenix_collector_restarts_total`` does not move, so crash-loop alerts stay
   quiet. The tap keeps scraping and queues for the candidate while it restarts: both variants
   keep receiving the identical input;
3. the measurer skips intervals (no sample pair, no feedback) until the restarted candidate
   has exported data under the new config: an empty exporter must not read as a 100 %
   reduction, nor as "achieved 0" to the loop.

A deadband (``DEADBAND``): when every host is already within it of its budget, the loop does
not integrate and nothing restarts. A restart costs a skipped interval and the collector's
start-up; live CPU figures move every scrape, so without it the candidate would restart
every interval for changes that keep the same processes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.catalog.frame import ResourceFrame, from_snapshot
from core.catalog.process_metrics import METRICS_BY_NAME
from core.domain.critical import CriticalPolicy
from core.domain.pipeline import Pipeline

#: Hosts within ±5 % of budget are left alone (half the ±10 % target: room for next scrape's noise).
DEADBAND = 0.05
UTIL_COLUMNS = METRICS_BY_NAME["process.cpu.utilization"].columns


def budget_nodes(pipeline: Pipeline) -> list[str]:
    """Ids of the nodes that size themselves from a series budget (adaptive)."""
    from core.engine.tuning import tunable_nodes

    return [n.id for n in tunable_nodes(pipeline) if n.node_type.tuning == "budget_thresholds"]


def input_frame(snapshot: pd.DataFrame, num_cpus: int) -> ResourceFrame:
    """The tap's one-scrape input as the engine's frame, with the utilisation the collector saw.

    ``from_snapshot`` derives utilisation from CPU-time deltas between scrapes (none in one
    scrape); the hostmetrics receiver already computed it, and the candidate's thresholds
    compare exactly those values, so they are put back."""
    snap = snapshot.copy()
    snap["num_cpus"] = num_cpus
    frame = from_snapshot(snap)
    df = frame.df.copy()
    for col in UTIL_COLUMNS:
        if col in snapshot.columns:
            df[col] = pd.to_numeric(snapshot[col]).to_numpy(dtype="float64")
    return frame.replace(df)


@dataclass
class LoopStep:
    """One interval of the loop: per budget node and host, budget vs achieved; restart or not."""

    interval: int
    hosts: dict[str, dict[str, dict[str, Any]]]
    restart: bool
    config: str | None = None

    def details(self, variant: str) -> dict[str, Any]:
        """What the experiment records (audit ``experiment.retune``): the page and CLI read it."""
        return {"variant": variant, "interval": self.interval, "restart": self.restart, "nodes": self.hosts}


@dataclass
class ClosedLoop:
    """The candidate's tuned pipeline across intervals, and the config text that runs now."""

    pipeline: Pipeline
    render: Callable[[Pipeline], str]
    policy: CriticalPolicy | None = None
    num_cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    source: str = "experiment"
    running: str | None = None
    intervals: int = 0

    def step(self, snapshot: pd.DataFrame, achieved: Mapping[str, float] | None,
             baseline: Mapping[str, float] | None = None) -> LoopStep:
        """Re-tune from this interval's input and what the running config exported.

        ``achieved`` is None for the interval before the first tuning (the candidate still runs
        its saved thresholds): the model alone sizes K. ``baseline``: what the baseline
        collector exported per host, shown beside the budget."""
        from core.engine.tuning import tune

        frame = input_frame(snapshot, self.num_cpus)
        tuned_before = bool(self._hosts())
        inside = achieved is not None and tuned_before and self._within_deadband(achieved)
        if not inside:
            self.pipeline = tune(self.pipeline, frame, policy=self.policy, source=self.source,
                                 achieved=dict(achieved) if (achieved is not None and tuned_before) else None)
        text = self.render(self.pipeline)
        # Compared as parsed YAML: the header comments carry the tuning time, which always moves.
        restart = self.running is not None and _config(text) != _config(self.running)
        if self.running is None or restart:
            self.running = text
        self.intervals += 1
        return LoopStep(self.intervals, self.rows(achieved, baseline), restart, text if restart else None)

    def _hosts(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for node_id in budget_nodes(self.pipeline):
            hosts = (self.pipeline.node(node_id).params.get("computed") or {}).get("hosts") or {}
            for h, v in hosts.items():
                out[f"{node_id}\0{h}"] = v
        return out

    def _within_deadband(self, achieved: Mapping[str, float]) -> bool:
        hosts = self._hosts()
        for key, v in hosts.items():
            h = key.split("\0", 1)[1]
            budget = float(v.get("budget") or 0.0)
            if h not in achieved or budget <= 0 or abs(float(achieved[h]) / budget - 1.0) > DEADBAND:
                return False
        return bool(hosts)

    def rows(self, achieved: Mapping[str, float] | None,
             baseline: Mapping[str, float] | None) -> dict[str, dict[str, dict[str, Any]]]:
        """Node id → host → baseline series, budget, achieved (last interval), deviation %, K, thresholds."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for node_id in budget_nodes(self.pipeline):
            hosts = (self.pipeline.node(node_id).params.get("computed") or {}).get("hosts") or {}
            rows = {}
            for h, v in sorted(hosts.items()):
                a = None if achieved is None else float(achieved.get(h, 0.0))
                rows[h] = host_row(v.get("budget"), a, None if baseline is None else baseline.get(h))
                rows[h].update({k: v[k] for k in ("k", "cpu_utilization", "memory_bytes", "rankable", "limit") if k in v})
            out[node_id] = rows
        return out


def _config(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def host_row(budget: float | None, achieved: float | None, baseline: float | None) -> dict[str, Any]:
    """One row of the achieved-vs-budget table."""
    dev = None
    if budget and achieved is not None:
        dev = round(100.0 * (achieved / float(budget) - 1.0), 3)
    return {"baseline_series": None if baseline is None else float(baseline),
            "budget": None if budget is None else round(float(budget), 3),
            "achieved": achieved, "deviation_pct": dev}


# ---------------------------------------------------------------- the restart request (files)


def next_config_path(data_dir: Path, experiment_id: str, variant: str) -> Path:
    return Path(data_dir) / f"otelcol-{experiment_id}-{variant}.next.yaml"


def request_path(data_dir: Path, experiment_id: str, variant: str) -> Path:
    return Path(data_dir) / f"otelcol-{experiment_id}-{variant}.restart.json"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # the deployer never reads half a file


def request_restart(data_dir: Path, experiment_id: str, variant: str, config: str, details: Mapping[str, Any]) -> None:
    """Measurer side: the new config first, then the request that points at it."""
    _write(next_config_path(data_dir, experiment_id, variant), config)
    _write(request_path(data_dir, experiment_id, variant), json.dumps(dict(details)))


def take_restart_request(data_dir: Path, experiment_id: str, variant: str, live_config: Path) -> dict[str, Any] | None:
    """Deployer side: when a request is waiting, move its config over ``live_config`` and return
    the request (None when there is none). The caller restarts the collector."""
    req = request_path(data_dir, experiment_id, variant)
    nxt = next_config_path(data_dir, experiment_id, variant)
    if not req.is_file():
        return None
    try:
        details = json.loads(req.read_text())
    except (OSError, ValueError):
        details = {}
    req.unlink(missing_ok=True)
    if not nxt.is_file():
        return None
    os.replace(nxt, live_config)
    return details if isinstance(details, dict) else {}
