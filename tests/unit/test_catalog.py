from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.catalog import registry
from core.catalog.base import EmitContext
from core.domain.errors import NotFoundError

EXPECTED = {
    "hostmetrics", "priority_classifier", "resource_filter", "topk", "adaptive", "intelligent", "rollup",
    "attribute_reduction", "metric_selection", "interval", "memory_limiter", "batch", "resourcedetection",
    "cumulativetodelta", "prometheus", "prometheusremotewrite", "otlphttp", "debug",
}


def test_registry_has_exactly_the_contract_types():
    assert set(registry.REGISTRY) == EXPECTED
    assert {t.type_name for t in registry.by_kind("exporter")} == {
        "prometheus", "prometheusremotewrite", "otlphttp", "debug"}
    assert [t.type_name for t in registry.by_kind("receiver")] == ["hostmetrics"]


def test_unknown_type_lookup_is_a_clear_error():
    with pytest.raises(NotFoundError, match="unknown node type 'nope'"):
        registry.get("nope")


def test_the_catalog_never_imports_the_engine_not_even_inside_a_function():
    # Kernels live with their node types; the engine reaches them through the registry.
    catalog = Path(registry.__file__).parent
    upward = [
        f"{path.name}:{node.lineno}"
        for path in sorted(catalog.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom | ast.Import)
        for name in ([node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names])
        if name == "core.engine" or name.startswith(("core.engine.", "core.render", "core.runtime", "core.services"))
    ]
    assert upward == []


@pytest.mark.parametrize("t", registry.all_types(), ids=lambda t: t.type_name)
def test_defaults_are_valid_except_where_a_choice_is_required(t):
    problems = t.validate({})
    if t.type_name == "metric_selection":
        assert problems == ["set exactly one of keep_metrics or drop_metrics"]
    else:
        assert problems == []


@pytest.mark.parametrize(
    ("type_name", "params", "fragment"),
    [
        ("hostmetrics", {"collection_interval": "10 seconds"}, "Go duration"),
        ("hostmetrics", {"metrics": {"process.cpu.tme": True}}, "unknown process metric"),
        ("hostmetrics", {"include_names": ["(?<=x)"]}, "lookbehind"),
        ("hostmetrics", {"bogus": 1}, "unknown parameter 'bogus'"),
        ("topk", {"k": -1}, "at least 0"),
        ("topk", {"k": "ten"}, "must be an integer"),
        ("topk", {"by": "disk"}, "must be one of cpu, memory, combined"),
        ("topk", {"computed": {"cpu_utilization": -2}}, "computed.cpu_utilization"),
        ("rollup", {"group_by": "category"}, "needs at least one entry"),
        ("rollup", {"categories": {"db": "(?!x)"}}, "lookahead"),
        ("priority_classifier", {"drop_priorities": ["critical"]}, "unknown value(s) 'critical'"),
        ("priority_classifier", {"keep_priorities": ["high"], "drop_priorities": ["high"]}, "both kept and dropped"),
        ("attribute_reduction", {"delete_keys": ["process.pid"], "apply_to": "all"}, "critical processes' identity"),
        ("memory_limiter", {"limit_percentage": 20, "spike_limit_percentage": 30}, "lower than"),
        ("prometheus", {"endpoint": "nowhere"}, "host:port"),
        ("prometheusremotewrite", {"headers_env": {"Authorization": "Bearer abc"}}, "environment variable"),
        ("otlphttp", {"api_key_env": "my key"}, "environment variable"),
        ("intelligent", {"learned": {"names": [1]}}, "learned.names"),
        ("metric_selection", {"keep_metrics": ["process.cpu.time"], "drop_metrics": ["process.disk.io"]},
         "exactly one"),
    ],
)
def test_bad_params_get_specific_messages(type_name, params, fragment):
    problems = registry.get(type_name).validate(params)
    assert any(fragment in p for p in problems), problems


def test_component_ids_carry_the_node_id():
    em = registry.get("rollup").emit({}, EmitContext(node_id="agg"))
    assert list(em.processors) == ["transform/agg_group", "groupbyattrs/agg", "transform/agg_sum"]


def test_rollup_sums_keep_each_metrics_data_point_keys():
    em = registry.get("rollup").emit({}, EmitContext(node_id="r"))
    statements = em.processors["transform/r_sum"]["metric_statements"][0]["statements"]
    assert ('aggregate_on_attributes("sum", ["state"]) where resource.attributes["phoenix.rollup"] == "true" '
            'and metric.name == "process.cpu.time"') in statements


def test_topk_uses_computed_thresholds_when_present_and_says_so():
    computed = {"memory_bytes": 123456, "source": "snapshot fleet.csv", "computed_at": "2026-01-01T00:00:00Z"}
    em = registry.get("topk").emit({"computed": computed}, EmitContext(node_id="t"))
    stmt = em.processors["transform/t"]["metric_statements"][0]["statements"][0]
    assert stmt.endswith("value_int >= 123456")
    assert "computed by Phoenix from snapshot fleet.csv" in em.notes[0]
    default = registry.get("topk").emit({}, EmitContext(node_id="t"))
    assert "DEFAULT thresholds" in default.notes[0]


def test_intelligent_compiles_learned_names_into_an_anchored_regex():
    em = registry.get("intelligent").emit({"learned": {"names": ["java", "a.b"]}}, EmitContext(node_id="i"))
    stmt = em.processors["transform/i"]["metric_statements"][0]["statements"][0]
    assert '"^(?:a\\\\.b|java)$"' in stmt


def test_prometheus_exporter_carries_experiment_labels_and_resource_conversion():
    em = registry.get("prometheus").emit({}, EmitContext(node_id="p", experiment_id="e1", variant="baseline"))
    cfg = em.exporters["prometheus/p"]
    assert cfg["const_labels"] == {"phoenix_experiment_id": "e1", "phoenix_variant": "baseline"}
    assert cfg["resource_to_telemetry_conversion"] == {"enabled": True}


def test_otlphttp_defaults_to_new_relic_with_env_license_key():
    cfg = registry.get("otlphttp").emit({}, EmitContext(node_id="nr")).exporters["otlphttp/nr"]
    assert cfg["endpoint"] == "https://otlp.nr-data.net"
    assert cfg["headers"] == {"api-key": "${env:NEW_RELIC_LICENSE_KEY}"}


def test_rollup_strip_after_cuts_names_only_for_executable_name_grouping():
    em = registry.get("rollup").emit({"group_by": "executable_name", "strip_after": "/"}, EmitContext(node_id="r"))
    statements = em.processors["transform/r_group"]["metric_statements"][0]["statements"]
    assert ('replace_pattern(resource.attributes["process.executable.name"], "/.*$", "") '
            'where resource.attributes["phoenix.group"] != nil') in statements
    other = registry.get("rollup").emit({"strip_after": "/"}, EmitContext(node_id="r"))
    assert not any("replace_pattern" in s for s in other.processors["transform/r_group"]["metric_statements"][0]["statements"])
    assert "at most 16" in registry.get("rollup").validate({"strip_after": "x" * 17})[0]


def _unquote(ottl: str) -> str:
    assert ottl[0] == ottl[-1] == '"'
    return ottl[1:-1].replace('\\"', '"').replace("\\\\", "\\")


def test_classifier_yaml_encodes_exactly_the_policy_rules_in_order():
    import re

    from core.domain.critical import DEFAULT_POLICY, FIELD_ATTRIBUTE

    em = registry.get("priority_classifier").emit({}, EmitContext(node_id="c", critical_policy=DEFAULT_POLICY))
    statements = em.processors["transform/c"]["metric_statements"][0]["statements"]
    rx = re.compile(r'^set\(resource\.attributes\["phoenix\.priority"\], ("\w+")\) where '
                    r'resource\.attributes\["phoenix\.priority"\] == nil and '
                    r'IsMatch\(resource\.attributes\["([\w.]+)"\], (".*")\)$')
    decoded = []
    for s in statements[:-1]:
        m = rx.match(s)
        assert m, s
        decoded.append((_unquote(m.group(1)), m.group(2), _unquote(m.group(3))))
    assert decoded == [(r.priority, FIELD_ATTRIBUTE[r.match], r.pattern) for r in DEFAULT_POLICY.rules]
    assert statements[-1].endswith('"low") where resource.attributes["phoenix.priority"] == nil')


def test_intelligent_regex_matches_exactly_the_learned_names():
    import re

    names = ["php-fpm8.2", "java", "a+b", "kworker/0:1"]
    em = registry.get("intelligent").emit({"learned": {"names": names}}, EmitContext(node_id="i"))
    stmt = em.processors["transform/i"]["metric_statements"][0]["statements"][0]
    pattern = _unquote(stmt[stmt.rindex(", ") + 2:-1])
    for n in names:
        assert re.search(pattern, n)
    for other in ["php-fpm8x2", "javascript", "aab", "kworker/0:10"]:
        assert not re.search(pattern, other)
