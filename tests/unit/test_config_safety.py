"""User text never expands or breaks out inside a collector config; secrets only from allowed
environment variables; remote exporters only to https (plain http only to loopback)."""

from __future__ import annotations

import pytest

from core.catalog.compiler import validate_graph
from core.catalog.templates import get_template
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline
from core.render.collector import render_collector


def _with_node(node_type: str, params: dict) -> Pipeline:
    data = get_template("process-baseline-v1").to_dict()
    data["nodes"].append({"id": "x", "type": node_type, "params": params})
    data["edges"].append({"source": "batch", "target": "x"})
    return Pipeline.from_dict(data)


def _with_classifier_rule(pattern: str) -> Pipeline:
    data = get_template("process-priority-filter-v1").to_dict()
    data["critical_policy"] = [{"match": "executable_name", "pattern": pattern, "priority": "critical"}]
    return Pipeline.from_dict(data)


def _with_category(pattern: str) -> Pipeline:
    data = get_template("process-aggregated-v1").to_dict()
    for n in data["nodes"]:
        if n["type"] == "rollup":
            n["params"]["categories"] = {"web": pattern}
    return Pipeline.from_dict(data)


def _problems(build) -> list[str]:
    try:
        return validate_graph(build())
    except ValidationError as exc:
        return exc.problems


@pytest.mark.parametrize("pattern", ["${env:AWS_SECRET_ACCESS_KEY}", "${HOME}", "a$$b", "x${env:PATH}y"])
def test_variable_references_in_user_text_are_refused(pattern: str) -> None:
    for build in (lambda: _with_classifier_rule(pattern), lambda: _with_category(pattern)):
        problems = _problems(build)
        assert any("would expand as a variable reference" in p for p in problems), problems


@pytest.mark.parametrize("pattern", ["nginx\n# injected: true", "a\rb", "tab\there", "nul\x00"])
def test_control_characters_in_user_text_are_refused(pattern: str) -> None:
    for build in (lambda: _with_classifier_rule(pattern), lambda: _with_category(pattern)):
        assert any("control character" in p for p in _problems(build))


def test_quotes_and_backslashes_stay_inside_the_ottl_literal() -> None:
    text = render_collector(_with_classifier_rule(r'ngi"nx\\d+'))
    assert r'ngi\"nx\\\\d+' in text


@pytest.mark.parametrize("endpoint, ok", [
    ("https://otlp.nr-data.net", True),
    ("http://127.0.0.1:4318", True),
    ("http://localhost:4318/v1", True),
    ("http://[::1]:4318", True),
    ("http://otlp.nr-data.net", False),
    ("http://127.0.0.1.evil.example:4318", False),
    ("http://user@10.0.0.1:4318", False),
    ("ftp://example.com", False),
    ("https://", False),
])
def test_remote_endpoints_are_https_or_loopback(endpoint: str, ok: bool) -> None:
    for node_type in ("otlphttp", "prometheusremotewrite"):
        problems = validate_graph(_with_node(node_type, {"endpoint": endpoint}))
        assert (not any("endpoint must be an https URL" in p for p in problems)) is ok, (node_type, problems)


@pytest.mark.parametrize("node_type, params, ok", [
    ("otlphttp", {"api_key_env": "NEW_RELIC_LICENSE_KEY"}, True),
    ("otlphttp", {"api_key_env": "PHOENIX_NR_KEY"}, True),
    ("otlphttp", {"api_key_env": "AWS_SECRET_ACCESS_KEY"}, False),
    ("otlphttp", {"api_key_env": "HOME"}, False),
    ("prometheusremotewrite", {"endpoint": "https://prw.example/push",
                               "headers_env": {"Authorization": "PHOENIX_PRW_AUTH"}}, True),
    ("prometheusremotewrite", {"endpoint": "https://prw.example/push",
                               "headers_env": {"Authorization": "NEW_RELIC_LICENSE_KEY"}}, False),
    ("prometheusremotewrite", {"endpoint": "https://prw.example/push",
                               "headers_env": {"Authorization": "GITHUB_TOKEN"}}, False),
])
def test_header_secrets_come_from_the_allow_list(node_type: str, params: dict, ok: bool) -> None:
    problems = validate_graph(_with_node(node_type, params))
    assert (not any("allowed environment variable" in p for p in problems)) is ok, problems


def test_notes_never_carry_a_raw_newline_into_a_comment() -> None:
    from core.render.collector import comment_safe

    assert comment_safe("file\nname: evil\r") == "file name: evil"
    text = render_collector(get_template("process-topk-v1"))
    for line in text.splitlines():
        if line.startswith("# NOTE:"):
            assert "\r" not in line
