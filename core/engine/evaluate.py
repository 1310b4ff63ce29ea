"""Run a pipeline graph over a snapshot: receiver → processors in order → exporters.

The pipeline is compiled once (core.catalog.compiled): every node runs its type's
``kernel()`` with the compiled, defaulted params, so the engine and the emitted YAML come
from one node definition. Receiver patches that later nodes contribute (receiver-mode
metric selection) come from the compiled pipeline, exactly what the renderer merges in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.catalog.compiled import CompiledNode, CompiledPipeline
from core.catalog.compiler import check
from core.catalog.eval_context import EvalContext
from core.catalog.frame import ResourceFrame, from_snapshot
from core.domain.critical import CriticalPolicy
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.engine.expand import expand, series_per_row


@dataclass
class NodeReport:
    node_id: str
    type: str
    rows_in: int
    rows_out: int
    series_in: int  # last scrape
    series_out: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"node_id": self.node_id, "type": self.type, "rows_in": self.rows_in, "rows_out": self.rows_out,
                "series_in": self.series_in, "series_out": self.series_out, "details": self.details}


@dataclass
class EvaluationResult:
    pipeline: Pipeline
    policy: CriticalPolicy
    input: ResourceFrame  # every scraped process, before the receiver
    received: ResourceFrame  # after the receiver (its toggles and include/exclude)
    output: ResourceFrame  # what the exporters receive
    ctx: EvalContext
    nodes: list[NodeReport]
    exporters: tuple[CompiledNode, ...]
    seconds: float
    compiled: CompiledPipeline

    @property
    def enabled_metrics(self) -> set[str]:
        return set(self.ctx.enabled_metrics)

    def last_scrape(self) -> int:
        return self.input.n_scrapes - 1

    def series_out(self, scrape: int = -1) -> int:
        df = _scrape_rows(self.output.df, scrape, self.input.n_scrapes)
        return int(series_per_row(df, self.ctx.enabled_metrics).sum())

    def output_series(self, scrape: int | None = -1) -> pd.DataFrame:
        """The exported series frame (one scrape, or every scrape when None)."""
        frame = self.output
        if scrape is not None:
            frame = ResourceFrame(_scrape_rows(frame.df, scrape, self.input.n_scrapes))
        return expand(frame, self.ctx.enabled_metrics)


def _scrape_rows(df: pd.DataFrame, scrape: int, n_scrapes: int) -> pd.DataFrame:
    if scrape < 0:
        scrape += n_scrapes
    return df[df["scrape"].to_numpy() == scrape]


def compile_for_engine(pipeline: Pipeline | CompiledPipeline) -> CompiledPipeline:
    """The compiled pipeline; problems are prefixed with the pipeline's name."""
    if isinstance(pipeline, CompiledPipeline):
        return pipeline
    problems, compiled = check(pipeline)
    if compiled is None:
        raise ValidationError([f"pipeline {pipeline.name}: {p}" for p in problems])
    return compiled


def evaluate(
    pipeline: Pipeline | CompiledPipeline,
    data: pd.DataFrame | ResourceFrame,
    *,
    policy: CriticalPolicy | None = None,
    node_stats: bool = True,
    stop_before: str | None = None,
) -> EvaluationResult:
    """Evaluate ``pipeline`` on a snapshot frame (or an already built resource frame).

    ``policy`` replaces the pipeline's critical policy (``--critical-file``).
    ``stop_before`` ends the run before that node id (tuning uses it to see a node's
    input). ``node_stats`` adds per-node row/series counts of the last scrape.
    """
    compiled = compile_for_engine(pipeline)
    started = time.perf_counter()
    frame = data if isinstance(data, ResourceFrame) else from_snapshot(data)
    policy = policy or compiled.policy
    # Receiver toggles never depend on the critical policy: the compiled patches serve an override too.
    ctx = EvalContext(critical_policy=policy, receiver_patches=[dict(p) for p in compiled.receiver_patches])
    last = frame.n_scrapes - 1
    reports: list[NodeReport] = []
    received = frame
    current = frame
    for node in (compiled.receiver, *compiled.chain):
        if node.id == stop_before:
            break
        ctx.node_id = node.id
        before = current
        # A fresh dict per run: kernels may not change the compiled params.
        current = node.node_type.kernel(current, dict(node.params), ctx)
        is_receiver = node is compiled.receiver
        if is_receiver:
            received = current
        if node_stats:
            reports.append(_node_report(node, before, current, ctx, last, is_receiver=is_receiver))
    if stop_before is None:
        for node in compiled.exporters:
            ctx.node_id = node.id
            node.node_type.kernel(current, dict(node.params), ctx)
    return EvaluationResult(
        pipeline=compiled.pipeline, policy=policy, input=frame, received=received, output=current, ctx=ctx,
        nodes=reports, exporters=compiled.exporters, seconds=time.perf_counter() - started, compiled=compiled,
    )


def _node_report(node: CompiledNode, before: ResourceFrame, after: ResourceFrame, ctx: EvalContext, last: int,
                 is_receiver: bool) -> NodeReport:
    from core.catalog.process_metrics import DEFAULT_METRICS

    # Masks, not slices: copying every column of a 500 k-row frame per node costs more
    # than the kernels themselves.
    mb = before.df["scrape"].to_numpy() == last
    ma = after.df["scrape"].to_numpy() == last
    # The receiver's input is every process with the scraper's default metrics.
    enabled_before = DEFAULT_METRICS if is_receiver else ctx.enabled_metrics
    return NodeReport(
        node_id=node.id, type=node.type, rows_in=int(mb.sum()), rows_out=int(ma.sum()),
        series_in=int(series_per_row(before.df, enabled_before)[mb].sum()),
        series_out=int(series_per_row(after.df, ctx.enabled_metrics)[ma].sum()),
        details=_jsonable(ctx.reports.get(node.id, {})),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
