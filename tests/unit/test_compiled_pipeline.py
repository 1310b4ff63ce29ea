"""The compiled pipeline, and node types that bring their own rules.

A node type defined here, in the test, and put into the registry flows through
validation, compilation, rendering, evaluation, tuning and the estimate without any
other edit: what the rest of Phoenix needs to know about it, it asks its attributes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.catalog._common import GUARD, attr, check_params, component_id, ottl_str
from core.catalog.base import EmitContext, Emitted, NodeType, Param
from core.catalog.compiler import compile_pipeline, validate_graph
from core.catalog.eval_context import EvalContext
from core.catalog.frame import ResourceFrame
from core.catalog.registry import REGISTRY
from core.catalog.templates import get_template
from core.domain.errors import ValidationError
from core.engine.estimate import estimate
from core.engine.evaluate import evaluate
from core.engine.tuning import needs_tuning, tunable_nodes, tune
from core.render.collector import CLEANUP_ID, build
from tests.unit.engine_data import GiB, MiB, frame, pipeline, proc, two_scrapes

CLASSIFY = ("classify", "priority_classifier", {})
BATCH = ("batch", "batch", {})
# noisy processes of the db owner are critical: the new node must leave them alone.
POLICY = [{"match": "owner", "pattern": "^db$", "priority": "critical"}]


class DropNames(NodeType):
    """Drops the non-critical, non-kept processes of some executables."""

    type_name = "test_drop_names"
    title = "Drop names (test)"
    description = "Drops processes by executable name."
    reduces_processes = True
    params = (Param("names", "list[str]", ["noisy"], "Executables to drop."),)

    def validate(self, params: dict[str, Any]) -> list[str]:
        return check_params(self.params, params)

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        pattern = "^(?:" + "|".join(re.escape(n) for n in self.with_defaults(params)["names"]) + ")$"
        cond = f"IsMatch({attr('process.executable.name')}, {ottl_str(pattern)}) and {GUARD}"
        return Emitted(processors={component_id("filter", ctx.node_id): {
            "error_mode": "ignore", "metrics": {"metric": [cond]}}})

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        df = frame.df
        hit = df["process.executable.name"].astype(str).isin(params["names"]).to_numpy()
        keep = ~(hit & frame.reducible_mask())
        ctx.report(dropped=int((~keep).sum()))
        return frame.replace(df[keep].reset_index(drop=True))


class LearnNames(NodeType):
    """Learns executable names from data (the engine's ``learned_names`` tuning) and reports them."""

    type_name = "test_learn_names"
    title = "Learn names (test)"
    description = "Reports the names Phoenix learned."
    tuning = "learned_names"
    params = (
        Param("resource_share_pct", "float", 20.0, "Share of a host that makes a name worth learning.", "%"),
        Param("learned", "map", {}, "names, source, computed_at (filled by the engine).", advanced=True),
    )

    def validate(self, params: dict[str, Any]) -> list[str]:
        return check_params(self.params, params)

    def emit(self, params: dict[str, Any], ctx: EmitContext) -> Emitted:
        names = self.with_defaults(params)["learned"].get("names") or []
        return Emitted(notes=[f"{ctx.node_id}: learned {', '.join(names) or 'nothing'}"])

    def kernel(self, frame: ResourceFrame, params: dict[str, Any], ctx: EvalContext) -> ResourceFrame:
        ctx.report(learned_names=len(params["learned"].get("names") or []))
        return frame


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registering is the one edit outside a node type's module.
    monkeypatch.setitem(REGISTRY, DropNames.type_name, DropNames())
    monkeypatch.setitem(REGISTRY, LearnNames.type_name, LearnNames())


def rows() -> list[dict[str, Any]]:
    return two_scrapes([
        proc("h1", 1, "noisy"), proc("h1", 2, "noisy"), proc("h1", 3, "noisy", owner="db"),
        proc("h1", 4, "big", rss=4 * GiB), proc("h1", 5, "small", rss=10 * MiB),
    ])


def test_a_new_node_type_validates_compiles_renders_and_evaluates(registered: None) -> None:
    p = pipeline(CLASSIFY, ("drop", "test_drop_names", {}), BATCH, policy=POLICY)
    assert validate_graph(p) == []

    compiled = compile_pipeline(p)
    assert [n.type for n in compiled.chain] == ["priority_classifier", "test_drop_names", "batch"]
    assert compiled.node("drop").params == {"names": ["noisy"]}  # the default, filled in once
    with pytest.raises(TypeError):
        compiled.node("drop").params["names"] = []  # type: ignore[index]

    config = build(compiled).config
    assert config["service"]["pipelines"]["metrics"]["processors"] == [
        "transform/classify", "filter/drop", "batch/batch"]
    assert "noisy" in config["processors"]["filter/drop"]["metrics"]["metric"][0]

    result = evaluate(compiled, frame(rows()))
    last = result.output.df[result.output.df["scrape"] == 1]
    # Two non-critical noisy processes dropped; the critical one (owner db) stays.
    assert sorted(last["process.pid"].tolist()) == [3, 4, 5]
    assert result.ctx.reports["drop"]["dropped"] == 4  # two processes × two scrapes
    report = estimate(p, frame(rows()), with_cost=False).report
    assert report["series_out"] < report["series_in"]
    assert [n["type"] for n in report["nodes"]][2] == "test_drop_names"


def test_a_new_node_type_is_held_to_the_rules_its_attributes_declare(registered: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # It reduces processes: without a classifier before it, critical ones are unknown.
    unguarded = validate_graph(pipeline(("drop", "test_drop_names", {}), BATCH, policy=POLICY))
    assert unguarded == ["node 'drop' (test_drop_names) needs a priority_classifier before it, so critical "
                         "processes are known and exempted"]
    # Declaring an order constraint is enough for validation to enforce it.
    monkeypatch.setattr(DropNames, "position", "first")
    misplaced = pipeline(CLASSIFY, ("drop", "test_drop_names", {}), BATCH, policy=POLICY)
    assert validate_graph(misplaced) == ["node 'drop' (test_drop_names) must be the first processor"]
    with pytest.raises(ValidationError, match="must be the first processor"):
        compile_pipeline(misplaced)
    # Its params are checked by its own schema.
    bad = validate_graph(pipeline(CLASSIFY, ("drop", "test_drop_names", {"names": "noisy"}), BATCH))
    assert bad == ["node 'drop' (test_drop_names): names: must be a list of strings"]


def test_a_new_tunable_node_type_is_tuned_and_reported(registered: None) -> None:
    p = pipeline(("learn", "test_learn_names", {}), BATCH)
    assert [n.id for n in tunable_nodes(p)] == ["learn"]
    assert needs_tuning(p)

    tuned = tune(p, frame(rows()), source="test")
    assert tuned.node("learn").params["learned"]["names"] == ["big"]  # the one process holding most memory
    assert not needs_tuning(tuned)
    assert p.node("learn").params == {}  # tuning returns a copy
    assert "learn: learned big" in build(tuned).notes

    report = estimate(p, frame(rows()), with_cost=False).report
    assert report["tuned"] is True
    assert report["k"]["learn"]["learned_names"] == 1
    assert report["tuned_params"]["learn"]["names"] == ["big"]


def test_compiling_resolves_order_defaults_policy_and_receiver_patches() -> None:
    p = get_template("process-minimal-v1")
    compiled = compile_pipeline(p)
    assert compiled.name == "process-minimal-v1"
    assert compiled.receiver.type == "hostmetrics"
    assert [n.id for n in compiled.chain] == [n.id for n in p.chain()]
    assert [n.id for n in compiled.exporters] == [n.id for n in p.exporters()]
    # Every param of every node is present (the schema's defaults), whatever the file sets.
    for n in compiled.nodes:
        assert set(n.params) == {q.name for q in n.node_type.params}
    # Receiver-mode metric selection: the compiled enabled set is what the rendered receiver exports.
    rendered = build(compiled).config["receivers"]["hostmetrics"]["scrapers"]["process"]["metrics"]
    assert compiled.receiver_patches
    assert all(on["enabled"] == (m in compiled.enabled_metrics) for m, on in rendered.items())
    # Compiling copies: editing the source afterwards leaves the compiled form alone.
    p.chain()[0].params["limit_percentage"] = 1
    assert compiled.chain[0].params["limit_percentage"] != 1


def test_cleanup_goes_before_the_processor_declared_last() -> None:
    compiled = compile_pipeline(get_template("process-topk-v1"))
    processors = build(compiled).config["service"]["pipelines"]["metrics"]["processors"]
    assert processors[-2:] == [CLEANUP_ID, "batch/batch"]


def test_compile_lists_every_problem_at_once() -> None:
    p = pipeline(("topk", "topk", {"k": -1}), ("ml", "memory_limiter", {}), BATCH)
    with pytest.raises(ValidationError) as err:
        compile_pipeline(p)
    assert err.value.problems == validate_graph(p)
    assert len(err.value.problems) == 1  # params first: order rules need valid params
    p = pipeline(("topk", "topk", {}), ("ml", "memory_limiter", {}), BATCH)
    with pytest.raises(ValidationError) as err:
        compile_pipeline(p)
    assert {"node 'ml' (memory_limiter) must be the first processor",
            "node 'topk' (topk) needs a priority_classifier before it, so critical processes are known and "
            "exempted"} <= set(err.value.problems)


def test_threshold_metrics_are_checked_against_what_the_receiver_really_exports() -> None:
    # Receiver-mode metric selection keeping only memory switches cpu.utilization off again:
    # a cpu-ranked top-K after it could never match (validation used to miss this).
    p = pipeline(("select", "metric_selection", {"mode": "receiver", "keep_metrics": ["process.memory.usage"]}),
                 CLASSIFY, ("topk", "topk", {"by": "cpu"}), BATCH,
                 receiver={"metrics": {"process.cpu.utilization": True}})
    assert validate_graph(p) == ["node 'topk' (topk) ranks by cpu but the receiver does not enable "
                                 "process.cpu.utilization; enable it in the hostmetrics metrics toggles"]
    p.node("topk").params["by"] = "memory"
    assert validate_graph(p) == []
    assert compile_pipeline(p).enabled_metrics == {"process.memory.usage"}


def test_compiled_params_are_typed_by_the_schema() -> None:
    p = pipeline(CLASSIFY, ("rf", "resource_filter", {"by": "cpu", "cpu_utilization": 1}), BATCH,
                 receiver={"metrics": {"process.cpu.utilization": True}})
    params = compile_pipeline(p).node("rf").params
    assert params["cpu_utilization"] == 1.0 and isinstance(params["cpu_utilization"], float)
    assert isinstance(params["memory_bytes"], int)  # the default, an integer byte count
