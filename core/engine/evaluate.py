"""Run a pipeline graph over a snapshot: receiver → processors in order → exporters.

Every node runs through the registry's ``kernel()`` (which delegates to ``core.engine.ops``)
so the engine and the emitted YAML come from one node definition. Receiver patches that
later nodes contribute (receiver-mode metric selection) are collected from their
``emit()`` first, exactly as the renderer merges them into the receiver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.catalog.base import EmitContext
from core.catalog.eval_context import EvalContext
from core.catalog.frame import ResourceFrame, from_snapshot
from core.catalog.registry import get as get_node_type
from core.domain.critical import CriticalPolicy
from core.domain.errors import ValidationError
from core.domain.pipeline import Node, Pipeline, validate_graph
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
    exporters: list[Node]
    seconds: float

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


def receiver_patches(pipeline: Pipeline, policy: CriticalPolicy) -> list[dict[str, Any]]:
    """``receiver_patch`` of every processor, in order (what the renderer merges in)."""
    from core.catalog.hostmetrics import enabled_metrics

    enabled = enabled_metrics(pipeline.receiver().params)
    patches = []
    for node in pipeline.chain():
        emitted = get_node_type(node.type).emit(
            node.params, EmitContext(node_id=node.id, enabled_metrics=enabled, critical_policy=policy)
        )
        if emitted.receiver_patch:
            patches.append(emitted.receiver_patch)
            enabled = enabled_metrics(pipeline.receiver().params,
                                      [p.get("metrics", {}) for p in patches])
    return patches


def evaluate(
    pipeline: Pipeline,
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
    problems = validate_graph(pipeline)
    if problems:
        raise ValidationError([f"pipeline {pipeline.name}: {p}" for p in problems])
    started = time.perf_counter()
    frame = data if isinstance(data, ResourceFrame) else from_snapshot(data)
    policy = policy or pipeline.policy()
    ctx = EvalContext(critical_policy=policy, receiver_patches=receiver_patches(pipeline, policy))
    last = frame.n_scrapes - 1
    reports: list[NodeReport] = []
    received = frame
    current = frame
    for node in [pipeline.receiver(), *pipeline.chain()]:
        if node.id == stop_before:
            break
        node_type = get_node_type(node.type)
        ctx.node_id = node.id
        before = current
        current = node_type.kernel(current, node_type.with_defaults(node.params), ctx)
        if node.type == "hostmetrics":
            received = current
        if node_stats:
            reports.append(_node_report(node, before, current, ctx, last, is_receiver=node.type == "hostmetrics"))
    exporters = pipeline.exporters()
    if stop_before is None:
        for node in exporters:
            node_type = get_node_type(node.type)
            ctx.node_id = node.id
            node_type.kernel(current, node_type.with_defaults(node.params), ctx)
    return EvaluationResult(
        pipeline=pipeline, policy=policy, input=frame, received=received, output=current, ctx=ctx,
        nodes=reports, exporters=exporters, seconds=time.perf_counter() - started,
    )


def _node_report(node: Node, before: ResourceFrame, after: ResourceFrame, ctx: EvalContext, last: int,
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
