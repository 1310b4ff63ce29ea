"""The collector YAML rules (docs/pipelines.md, "Rendering and validation"), one test each, plus schema handling."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.catalog.templates import get_template
from core.render.collector import build
from core.render.schema_validate import ottl_functions, validate_collector_config, validate_collector_yaml


@pytest.fixture(scope="module")
def topk_config():
    return build(get_template("process-topk-v1")).config


def with_change(config, change):
    c = copy.deepcopy(config)
    change(c)
    return validate_collector_config(c)


def add_filter(c, condition):
    c["processors"]["filter/extra"] = {"error_mode": "ignore", "metrics": {"metric": [condition]}}
    c["service"]["pipelines"]["metrics"]["processors"].insert(-1, "filter/extra")


# ---- rule: filter conditions drop what they match, so keep-lists are negated --------------
def test_rule_filter_keep_list_must_be_negated(topk_config):
    crit = 'resource.attributes["phoenix.priority"] != "critical"'
    probs = with_change(topk_config, lambda c: add_filter(c, f'resource.attributes["phoenix.keep"] == "true" and {crit}'))
    assert any("keep-list must be negated" in p for p in probs)
    ok = with_change(topk_config, lambda c: add_filter(c, f'resource.attributes["phoenix.keep"] == nil and {crit}'))
    assert ok == []


def test_rule_filter_must_exempt_critical(topk_config):
    probs = with_change(topk_config, lambda c: add_filter(c, 'metric.name == "process.disk.io"'))
    assert any("does not exempt critical processes" in p for p in probs)
    probs = with_change(topk_config, lambda c: add_filter(c, 'resource.attributes["phoenix.priority"] == "critical"'))
    assert any("drops critical processes" in p for p in probs)


# ---- rule: process identity is read from resource attributes ---------------------------------
def test_rule_process_identity_is_read_as_resource_attributes(topk_config):
    def change(c):
        c["processors"]["transform/topk"]["metric_statements"][0]["statements"].append(
            'set(attributes["x"], "1") where attributes["process.executable.name"] == "java"')
    probs = with_change(topk_config, change)
    assert any('read it as resource.attributes["process.' in p for p in probs)


# ---- rule: only real OTTL functions ------------------------------------------------------------
def test_rule_only_real_ottl_functions(topk_config):
    def change(c):
        c["processors"]["transform/topk"]["metric_statements"][0]["statements"].append(
            'keep_top_k(resource.attributes, 10)')
    assert any("keep_top_k is not an OTTL function" in p for p in with_change(topk_config, change))


def test_rule_editors_are_not_allowed_in_filter(topk_config):
    probs = with_change(topk_config, lambda c: add_filter(
        c, 'set(resource.attributes["a"], "b") and resource.attributes["phoenix.priority"] != "critical"'))
    assert any("set is an editor" in p for p in probs)


def test_ottl_function_list_comes_from_the_vendored_reference():
    f = ottl_functions()
    assert {"set", "delete_key", "keep_keys"} <= f.editors
    assert {"IsMatch", "Concat"} <= f.converters
    assert "aggregate_on_attributes" in f.transform_extras
    assert f.filter_extras == {"HasAttrOnDatapoint", "HasAttrKeyOnDatapoint", "IsRootSpan"}


# ---- rule: no processor without metrics support --------------------------------------------------
def test_rule_no_processor_without_metrics_support(topk_config):
    def change(c):
        c["processors"]["probabilistic_sampler"] = {"sampling_percentage": 10}
        c["service"]["pipelines"]["metrics"]["processors"].insert(0, "probabilistic_sampler")
    assert any("no place in a metrics pipeline" in p for p in with_change(topk_config, change))


# ---- rule: every defined component is used (and every used one defined) --------------------------
def test_rule_every_defined_component_is_used(topk_config):
    probs = with_change(topk_config, lambda c: c["exporters"].update({"debug/unused": {}}))
    assert probs == ["exporters.debug/unused: defined but never used in service"]
    probs = with_change(topk_config, lambda c: c["service"]["pipelines"]["metrics"]["exporters"].append("debug"))
    assert any("'debug' is not defined under exporters" in p for p in probs)
    probs = with_change(topk_config, lambda c: c["service"]["extensions"].append("pprof"))
    assert any("'pprof' is not configured" in p for p in probs)


# ---- rule: ${env:NAME} only, no literal secrets --------------------------------------------------
def test_rule_env_substitution_form_only(topk_config):
    def change(c):
        c["exporters"]["otlphttp/nr"] = {"endpoint": "https://otlp.nr-data.net",
                                         "headers": {"api-key": "${NEW_RELIC_LICENSE_KEY}"}}
        c["service"]["pipelines"]["metrics"]["exporters"].append("otlphttp/nr")
    assert any("must be written ${env:NAME}" in p for p in with_change(topk_config, change))


def test_rule_no_literal_secrets(topk_config):
    def change(c):
        c["exporters"]["prometheusremotewrite/g"] = {"endpoint": "https://x/api/prom/push",
                                                     "headers": {"Authorization": "Bearer abc123"}}
        c["service"]["pipelines"]["metrics"]["exporters"].append("prometheusremotewrite/g")
    assert any("literal secret" in p for p in with_change(topk_config, change))


# ---- rule: upstream schemas with unknown keys as errors --------------------------------------------
@pytest.mark.parametrize(
    ("path", "key", "fragment"),
    [
        (("exporters", "prometheus/prometheus"), "endpiont", "did you mean 'endpoint'"),
        (("processors", "batch/batch"), "send_batch", "unknown key 'send_batch'"),
        (("receivers", "hostmetrics"), "colection_interval", "did you mean 'collection_interval'"),
        (("receivers", "hostmetrics", "scrapers", "process"), "mute_all", "unknown key 'mute_all'"),
        (("extensions", "health_check"), "endpont", "unknown key"),
        (("processors", "memory_limiter/memory_limiter"), "limit_mb", "did you mean 'limit_mib'"),
    ],
)
def test_rule_unknown_keys_are_errors(topk_config, path, key, fragment):
    def change(c):
        node = c
        for p in path:
            node = node[p]
        node[key] = 1
    assert any(fragment in p for p in with_change(topk_config, change))


def test_allof_squashing_allows_embedded_struct_keys(topk_config):
    def change(c):
        c["exporters"]["otlphttp/nr"] = {"endpoint": "https://otlp.nr-data.net", "timeout": "10s",
                                         "tls": {"insecure": False}, "retry_on_failure": {"enabled": True},
                                         "sending_queue": None, "headers": {"api-key": "${env:K}"}}
        c["service"]["pipelines"]["metrics"]["exporters"].append("otlphttp/nr")
    assert with_change(topk_config, change) == []


def test_schemas_are_the_pinned_release(topk_config):
    """v0.159.0 keys: resourcedetection has ``retry`` (checked through refmap) and no ``env`` block;
    prometheus has no ``resource_constant_labels``; OTTL has no ``clear`` editor."""
    rd = "resourcedetection/resourcedetection"
    assert with_change(topk_config, lambda c: c["processors"][rd].update(retry={"enabled": False})) == []
    probs = with_change(topk_config, lambda c: c["processors"][rd].update(retry={"enabled": "no"}))
    assert any(f"processors.{rd}.retry.enabled: must be true or false" in p for p in probs)
    probs = with_change(topk_config, lambda c: c["processors"][rd].update(env={"allow_list": ["a"]}))
    assert any("unknown key 'env'" in p for p in probs)
    probs = with_change(topk_config, lambda c: c["exporters"]["prometheus/prometheus"].update(
        resource_constant_labels={"enabled": True}))
    assert any("unknown key 'resource_constant_labels'" in p for p in probs)
    assert "clear" not in ottl_functions().editors


def test_unknown_metric_names_and_types_are_errors(topk_config):
    def change(c):
        c["receivers"]["hostmetrics"]["scrapers"]["process"]["metrics"] = {"process.cpu.tme": {"enabled": True}}
    assert any("unknown key 'process.cpu.tme'" in p for p in with_change(topk_config, change))
    probs = with_change(topk_config, lambda c: c["processors"]["batch/batch"].update(send_batch_size="many"))
    assert any("must be an integer" in p for p in probs)


def test_go_durations_not_iso8601(topk_config):
    probs = with_change(topk_config, lambda c: c["processors"]["batch/batch"].update(timeout="PT5S"))
    assert any("Go duration" in p for p in probs)
    assert with_change(topk_config, lambda c: c["processors"]["batch/batch"].update(timeout="1m30s")) == []


def test_lenient_types_from_the_reference_gotchas(topk_config):
    def change(c):
        c["exporters"]["debug"] = {"verbosity": "detailed"}
        c["processors"]["cumulativetodelta"] = {"initial_value": "auto"}
        c["service"]["pipelines"]["metrics"]["exporters"].append("debug")
        c["service"]["pipelines"]["metrics"]["processors"].insert(-1, "cumulativetodelta")
    assert with_change(topk_config, change) == []
    probs = with_change(topk_config, lambda c: c["processors"]["transform/topk"].update(error_mode="loud"))
    assert any("ignore, silent or propagate" in p for p in probs)


def test_unknown_component_types_and_structure(topk_config):
    probs = with_change(topk_config, lambda c: c["receivers"].update({"hostmetric": {}}))
    assert any("unknown receiver type 'hostmetric'" in p for p in probs)
    assert validate_collector_yaml("receivers: [") [0].startswith("not valid YAML")
    assert "service: missing" in validate_collector_config({"receivers": {}})[0]


def test_otlphttp_alias_validates_against_the_otlp_http_schema(topk_config):
    def change(c):
        c["exporters"]["otlphttp"] = {"endpoint": "https://x", "bogus": 1}
        c["service"]["pipelines"]["metrics"]["exporters"].append("otlphttp")
    assert with_change(topk_config, change) == ["exporters.otlphttp: unknown key 'bogus'"]


def test_two_listeners_on_one_port_are_refused(topk_config):
    probs = with_change(topk_config, lambda c: c["exporters"]["prometheus/prometheus"].update(endpoint="0.0.0.0:8888"))
    assert probs == ["service.telemetry.metrics.readers[0]: port 8888 is already used by "
                     "exporters.prometheus/prometheus.endpoint"]


# ---- robustness: arbitrary YAML never crashes the validator --------------------------------------

_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.floats(allow_nan=False))
_keys = st.sampled_from(["receivers", "processors", "exporters", "extensions", "service", "pipelines", "metrics",
                         "hostmetrics", "transform", "filter/x", "prometheus", "endpoint", "scrapers", "process",
                         "metric_statements", "statements", "headers", "readers", "x"])
_tree = st.recursive(_leaf, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                   st.dictionaries(_keys, kids, max_size=4)), max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(_tree)
def test_arbitrary_yaml_gets_messages_never_a_crash(doc):
    problems = validate_collector_config(doc)
    assert isinstance(problems, list) and all(isinstance(p, str) and p for p in problems)


# ---- the compiled JSON Schema (core.render.otelcol_schema) -----------------------------------------
def test_component_schemas_compile_once_into_valid_closed_json_schema():
    from core.render.otelcol_schema import Validator, component_key, validator

    key = component_key("processors", "batch")
    assert validator(key) is validator(key)  # compiled once per process
    schema = validator(key).schema
    Validator.check_schema(schema)
    assert schema["additionalProperties"] is False and "timeout" in schema["properties"]
    # allOf parts squashed into one level (Go's embedded structs), still closed
    otlp = validator(component_key("exporters", "otlphttp")).schema
    assert {"endpoint", "tls", "headers", "retry_on_failure"} <= set(otlp["properties"])
    assert otlp["additionalProperties"] is False


def test_yaml_floats_are_not_integers_and_match_blocks_need_names(topk_config):
    probs = with_change(topk_config, lambda c: c["processors"]["batch/batch"].update(send_batch_size=1.0))
    assert probs == ["processors.batch/batch.send_batch_size: must be an integer, got 1.0"]
    probs = with_change(topk_config, lambda c: c["receivers"]["hostmetrics"]["scrapers"]["process"].update(
        include={"match_type": "strict"}))
    assert probs == ["receivers.hostmetrics.scrapers.process.include.names: is required"]
