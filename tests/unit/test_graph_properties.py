"""Random graphs: valid ones render and validate; invalid ones get messages, never a crash."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.catalog.compiler import validate_graph
from core.catalog.registry import REGISTRY
from core.domain.errors import PhoenixError, ValidationError
from core.domain.pipeline import Pipeline
from core.render.collector import build
from core.render.schema_validate import validate_collector_config

TYPES = sorted(REGISTRY)
PROCESSORS = ["interval", "resourcedetection", "cumulativetodelta", "topk", "rollup", "intelligent",
              "attribute_reduction", "metric_selection", "resource_filter", "adaptive"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12))
junk_params = st.dictionaries(st.sampled_from(["k", "by", "interval", "timeout", "endpoint", "x", "metrics"]),
                              scalars, max_size=3)


@st.composite
def random_graph(draw):
    n = draw(st.integers(0, 8))
    nodes = [{"id": f"n{i}", "type": draw(st.sampled_from([*TYPES, "bogus"])), "params": draw(junk_params)}
             for i in range(n)]
    edges = draw(st.lists(st.tuples(st.integers(0, max(n, 1)), st.integers(0, max(n, 1))), max_size=12))
    return {"name": "rnd", "nodes": nodes,
            "edges": [{"source": f"n{a}", "target": f"n{b}"} for a, b in edges]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph())
def test_random_graphs_never_crash(data):
    try:
        p = Pipeline.from_dict(data)
    except ValidationError as exc:
        assert exc.problems and all(isinstance(m, str) and m for m in exc.problems)
        return
    problems = validate_graph(p)
    if problems:
        assert all(isinstance(m, str) and m for m in problems)
        try:
            build(p)
        except PhoenixError as exc:
            assert str(exc)
        else:
            raise AssertionError("an invalid graph rendered")
    else:
        assert validate_collector_config(build(p).config) == []


@st.composite
def valid_chain(draw):
    middle = draw(st.lists(st.sampled_from(PROCESSORS), max_size=5))
    receiver: dict = {"collection_interval": draw(st.sampled_from(["5s", "10s", "1m"]))}
    if draw(st.booleans()):
        receiver["metrics"] = {"process.cpu.utilization": True}
    types = ["memory_limiter", "priority_classifier", *middle, "batch"] if draw(st.booleans()) else \
        ["priority_classifier", *middle]
    params: dict[str, dict] = {
        "metric_selection": {"mode": draw(st.sampled_from(["receiver", "filter"])),
                             "drop_metrics": ["process.disk.io"]},
        "topk": {"k": draw(st.integers(0, 50)), "by": "memory"},
        "adaptive": {"by": "memory"},
        "resource_filter": {"by": "memory", "action": draw(st.sampled_from(["drop", "mark"]))},
        "intelligent": {"learned": {"names": draw(st.lists(st.sampled_from(["java", "node", "a.b"]), max_size=3))}},
        "attribute_reduction": {"delete_keys": ["process.command_line"]},
    }
    nodes = [{"id": "recv", "type": "hostmetrics", "params": receiver}]
    nodes += [{"id": f"p{i}", "type": t, "params": params.get(t, {})} for i, t in enumerate(types)]
    exps = draw(st.lists(st.sampled_from(["prometheus", "debug", "otlphttp", "prometheusremotewrite"]),
                         min_size=1, max_size=3, unique=True))
    edges = [{"source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:], strict=False)]
    last = nodes[-1]["id"]
    for e in exps:
        nodes.append({"id": f"x_{e}", "type": e, "params": {}})
        edges.append({"source": last, "target": f"x_{e}"})
    return {"name": "chain", "nodes": nodes, "edges": edges}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_chain(), st.sampled_from([None, "baseline", "candidate"]))
def test_valid_chains_render_to_schema_valid_configs(data, variant):
    from core.render.collector import RenderOptions

    p = Pipeline.from_dict(data)
    assert validate_graph(p) == []
    opts = RenderOptions(experiment_id="exp-1" if variant else None, variant=variant)
    assert validate_collector_config(build(p, opts).config) == []
