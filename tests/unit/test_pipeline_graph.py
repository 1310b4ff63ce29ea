from __future__ import annotations

import copy
import json

import pytest
import yaml

from core.catalog.compiler import validate_graph
from core.catalog.templates import get_template
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline


def chain(*types_params, name="p1", exporters=(("prom", "prometheus", {}),), receiver=None):
    nodes = [{"id": "recv", "type": "hostmetrics", "params": receiver or {}, "position": {"x": 0, "y": 0}}]
    for i, (nid, t, params) in enumerate(types_params):
        nodes.append({"id": nid, "type": t, "params": params, "position": {"x": 100 * (i + 1), "y": 0}})
    ids = [n["id"] for n in nodes]
    edges = [{"source": a, "target": b} for a, b in zip(ids, ids[1:], strict=False)]
    for eid, t, params in exporters:
        nodes.append({"id": eid, "type": t, "params": params, "position": {"x": 0, "y": 100}})
        edges.append({"source": ids[-1], "target": eid})
    return {"name": name, "description": "", "nodes": nodes, "edges": edges}


def problems_of(data):
    return validate_graph(Pipeline.from_dict(data))


def test_json_and_yaml_round_trip_preserves_everything():
    p = get_template("process-topk-v1")
    p.critical_policy = [{"match": "owner", "pattern": "^db$", "priority": "critical"}]
    assert Pipeline.from_text(p.to_json()).to_dict() == p.to_dict()
    assert Pipeline.from_text(p.to_yaml()).to_dict() == p.to_dict()
    assert json.loads(p.to_json()) == yaml.safe_load(p.to_yaml())


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "must be a mapping"),
        ({"nodes": []}, "name must be"),
        ({"name": "Bad Name", "nodes": []}, "name must be"),
        ({"name": "p", "nodes": "x"}, "nodes must be a list"),
        ({"name": "p", "nodes": [{"type": "batch"}]}, "nodes[0].id"),
        ({"name": "p", "nodes": [{"id": "a"}]}, "type must be"),
        ({"name": "p", "nodes": [{"id": "a", "type": "batch", "params": []}]}, "params must be a mapping"),
        ({"name": "p", "nodes": [{"id": "a", "type": "batch", "position": {"x": "left"}}]}, "position"),
        ({"name": "p", "nodes": [{"id": "a", "type": "batch"}, {"id": "a", "type": "batch"}]}, "duplicate"),
        ({"name": "p", "nodes": [], "edges": [{"from": "a"}]}, "edges[0]"),
        ({"name": "p", "nodes": [], "surprise": 1}, "unknown top-level key"),
        ({"name": "p", "nodes": [], "critical_policy": [{"match": "x"}]}, "critical_policy[0]"),
        ({"name": "p", "nodes": [{"id": f"n{i}", "type": "batch"} for i in range(101)]}, "too many nodes"),
    ],
)
def test_malformed_input_is_refused_with_specific_problems_never_keyerror(data, fragment):
    with pytest.raises(ValidationError) as err:
        Pipeline.from_dict(data)
    assert any(fragment in p for p in err.value.problems), err.value.problems


def test_valid_chain_passes():
    assert problems_of(chain(("ml", "memory_limiter", {}), ("b", "batch", {}))) == []


def test_exactly_one_receiver_and_an_exporter():
    data = chain(exporters=())
    assert "at least one exporter" in problems_of(data)[0]
    data = chain()
    data["nodes"].append({"id": "recv2", "type": "hostmetrics", "params": {}})
    assert any("exactly one hostmetrics receiver, found 2" in p for p in problems_of(data))


def test_unknown_type_and_bad_params_name_the_node():
    probs = problems_of(chain(("x", "sampler", {}), ("t", "batch", {"timeout": "soon"})))
    assert any(p.startswith("node 'x': unknown node type 'sampler'") for p in probs)
    assert any(p.startswith("node 't' (batch): timeout:") for p in probs)


def test_dangling_and_self_edges():
    data = chain(("b", "batch", {}))
    data["edges"] += [{"source": "b", "target": "ghost"}, {"source": "b", "target": "b"}]
    probs = problems_of(data)
    assert any("unknown node(s): ghost" in p for p in probs)
    assert any("connects a node to itself" in p for p in probs)


def test_cycles_are_refused():
    data = chain(("a", "batch", {}), ("c", "interval", {}))
    data["edges"].append({"source": "c", "target": "a"})
    assert any("cycle" in p for p in problems_of(data))


def test_unreachable_and_dead_end_nodes():
    data = chain(("b", "batch", {}))
    data["nodes"].append({"id": "orphan", "type": "interval", "params": {}})
    probs = problems_of(data)
    assert any("'orphan' (interval) is not reachable" in p for p in probs)
    assert any("'orphan' (interval) does not lead to any exporter" in p for p in probs)


def test_processors_must_form_one_chain():
    data = chain(("a", "interval", {}))
    data["nodes"].append({"id": "b", "type": "batch", "params": {}})
    data["edges"] += [{"source": "recv", "target": "b"}, {"source": "b", "target": "prom"}]
    probs = problems_of(data)
    assert any("branches into several processors" in p and "one chain" in p for p in probs)


def test_exporters_fan_out_only_after_the_last_processor():
    ok = chain(("b", "batch", {}), exporters=(("p", "prometheus", {}), ("d", "debug", {})))
    assert problems_of(ok) == []
    bad = chain(("a", "interval", {}), ("b", "batch", {}))
    bad["nodes"].append({"id": "d", "type": "debug", "params": {}})
    bad["edges"].append({"source": "a", "target": "d"})
    assert any("must be fed only by the last processor 'b'" in p for p in problems_of(bad))


def test_memory_limiter_first_and_batch_last():
    probs = problems_of(chain(("b", "batch", {}), ("ml", "memory_limiter", {})))
    assert any("'ml' (memory_limiter) must be the first processor" in p for p in probs)
    assert any("'b' (batch) must be the last processor" in p for p in probs)


def test_reducing_nodes_need_a_classifier_upstream():
    probs = problems_of(chain(("r", "rollup", {}), ("c", "priority_classifier", {})))
    assert any("'r' (rollup) needs a priority_classifier before it" in p for p in probs)
    assert problems_of(chain(("c", "priority_classifier", {}), ("r", "rollup", {}))) == []


def test_deleting_pid_needs_a_rollup_after_it():
    red = ("ar", "attribute_reduction", {"delete_keys": ["process.pid"]})
    probs = problems_of(chain(("c", "priority_classifier", {}), red))
    assert any("deletes process.pid without a rollup" in p for p in probs)
    assert problems_of(chain(("c", "priority_classifier", {}), red, ("r", "rollup", {}))) == []


def test_cpu_thresholds_need_cpu_utilization_enabled():
    nodes = (("c", "priority_classifier", {}), ("t", "topk", {"by": "cpu"}), ("r", "rollup", {}))
    probs = problems_of(chain(*nodes))
    assert any("does not enable process.cpu.utilization" in p for p in probs)
    assert problems_of(chain(*nodes, receiver={"metrics": {"process.cpu.utilization": True}})) == []


def test_excluding_a_critical_executable_is_refused():
    probs = problems_of(chain(receiver={"exclude_names": ["postgres"], "match_type": "strict"}))
    assert any("would never scrape 'postgres'" in p for p in probs)
    probs = problems_of(chain(receiver={"exclude_names": ["^post"], "match_type": "regexp"}))
    assert any("would never scrape 'postgres'" in p for p in probs)
    assert problems_of(chain(receiver={"exclude_names": ["^kworker"], "match_type": "regexp"})) == []


def test_an_include_list_must_cover_the_critical_executables():
    probs = problems_of(chain(receiver={"include_names": ["java"], "match_type": "strict"}))
    assert any("would never scrape 'nginx'" in p for p in probs)
    data = chain(receiver={"include_names": ["java", "mydb"], "match_type": "strict"})
    data["critical_policy"] = [{"match": "executable_name", "pattern": "^mydb$", "priority": "critical"}]
    assert problems_of(data) == []


def test_pipeline_policy_overrides_the_default():
    data = chain()
    data["critical_policy"] = [{"match": "executable_name", "pattern": "^mine$", "priority": "critical"}]
    assert [r.pattern for r in Pipeline.from_dict(data).policy().rules] == ["^mine$"]


def test_all_templates_are_valid_and_described():
    for name in ("process-baseline-v1", "process-priority-filter-v1", "process-topk-v1", "process-aggregated-v1",
                 "process-adaptive-v1", "process-intelligent-v1", "process-minimal-v1"):
        p = get_template(name)
        assert validate_graph(p) == []
        assert "reduction" in p.description.lower() and "trade-off" in p.description.lower()


def test_from_dict_does_not_alias_the_input():
    data = chain(("t", "topk", {"computed": {"memory_bytes": 1}}))
    p = Pipeline.from_dict(data)
    before = copy.deepcopy(data)
    p.node("t").params["computed"]["memory_bytes"] = 2
    assert data == before


def test_deleting_pid_is_refused_when_kept_processes_would_collide():
    red = ("ar", "attribute_reduction", {"delete_keys": ["process.pid"]})
    nodes = (("c", "priority_classifier", {}), ("t", "topk", {}), red, ("r", "rollup", {}))
    assert any("kept individual by t are not rolled up" in p for p in problems_of(chain(*nodes)))


def test_disabling_pid_in_the_receiver_is_refused():
    probs = problems_of(chain(receiver={"resource_attributes": {"process.pid": False}}))
    assert any("disabling the process.pid resource attribute" in p for p in probs)
    assert problems_of(chain(receiver={"resource_attributes": {"process.command_line": False}})) == []


def test_prometheus_exporters_need_distinct_ports():
    data = chain(("b", "batch", {}), exporters=(("p1", "prometheus", {}), ("p2", "prometheus", {})))
    assert any("exporter 'p2' (prometheus) listens on port 8889, already used by exporter 'p1'" in p
               for p in problems_of(data))
    data = chain(exporters=(("p1", "prometheus", {"endpoint": "0.0.0.0:8888"}),))
    assert any("self-telemetry" in p for p in problems_of(data))
    ok = chain(exporters=(("p1", "prometheus", {}), ("p2", "prometheus", {"endpoint": "0.0.0.0:9464"})))
    assert problems_of(ok) == []
