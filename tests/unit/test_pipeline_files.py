"""Pipeline files through the entry points users have: ``phoenix pipeline validate|import|render``
and the builder's upload (``Pipeline.from_text`` on the uploaded bytes). All share one parser."""

from __future__ import annotations

import json

import pytest

from core.catalog.templates import get_template
from core.cli import main
from core.domain.critical import MAX_RULES
from core.domain.errors import ValidationError
from core.domain.pipeline import MAX_EDGES, MAX_NODES, Pipeline


def template_dict() -> dict:
    return get_template("process-priority-filter-v1").to_dict()


def shape_refusal(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as err:
        Pipeline.from_text(json.dumps(data), "p.json")
    return err.value.problems


def test_node_count_is_limited():
    data = template_dict()
    node = data["nodes"][0]
    data["nodes"] = [dict(node, id=f"n{i}") for i in range(MAX_NODES + 1)]
    assert "too many nodes: 101 (at most 100)" in shape_refusal(data)


def test_edge_count_is_limited():
    data = template_dict()
    data["edges"] = [{"source": "a", "target": "b"}] * (MAX_EDGES + 1)
    assert "too many edges: 401 (at most 400)" in shape_refusal(data)


def test_rule_count_is_limited():
    data = template_dict()
    data["critical_policy"] = [{"match": "owner", "pattern": "x", "priority": "low"}] * (MAX_RULES + 1)
    assert "critical_policy has 201 rules; at most 200 are allowed" in shape_refusal(data)


def test_positions_that_would_overflow_a_float_are_refused():
    data = template_dict()
    data["nodes"][0]["position"] = {"x": 10**400, "y": 0}
    node_id = data["nodes"][0]["id"]
    assert shape_refusal(data) == [f"node {node_id!r}.position must be {{x: number, y: number}} within ±1e+09"]


def test_builder_upload_bytes_go_through_the_same_limits():
    with pytest.raises(ValidationError) as err:
        Pipeline.from_text(b"name: x\nname: y\n", source="upload.yaml")
    assert str(err.value) == "upload.yaml line 2: duplicate key 'name' (first at line 1)"


def test_an_alias_bomb_in_node_params_never_reaches_validation(tmp_path):
    # 9 levels of 9 aliases: 9**9 values once expanded, 1 KiB on disk.
    params = "".join(f"    l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 9) + "]\n" for i in range(9))
    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\nnodes:\n- id: recv\n  type: hostmetrics\n  params:\n" + params + "edges: []\n")
    with pytest.raises(ValidationError) as err:
        Pipeline.from_file(path)
    assert str(err.value).startswith(f"{path} line 10: alias *l3 expands the document beyond")


@pytest.mark.parametrize("command", [["validate"], ["import"], ["render", "--out", "OUT"]])
def test_cli_refuses_hostile_files_with_one_line_naming_the_file(tmp_path, capsys, command):
    path = tmp_path / "deep.yaml"
    path.write_text("name: " + "[" * 100 + "]" * 100 + "\n")
    argv = ["pipeline", command[0], str(path), *[str(tmp_path / a) if a == "OUT" else a for a in command[1:]]]
    assert main(argv) == 1
    out = capsys.readouterr()
    message = f"{path} line 1: nesting deeper than 32 levels"
    if command[0] == "validate":
        assert out.out.strip() == message
    else:
        assert out.err.strip() == f"error: {message}"
    assert not (tmp_path / "OUT").exists()


def test_cli_validate_reads_binary_junk_as_one_clear_line(tmp_path, capsys):
    path = tmp_path / "junk.json"
    path.write_bytes(b"\xff\xd8\xff\xe0JFIF")
    assert main(["pipeline", "validate", str(path)]) == 1
    assert capsys.readouterr().out.strip() == f"{path} is not UTF-8 text (byte 0xff at offset 0)"


def test_builder_param_form_reads_map_and_rules_text_through_the_same_limits():
    from app.widgets.params import parse_text_value
    from core.catalog.registry import REGISTRY

    categories = next(p for p in REGISTRY["rollup"].params if p.name == "categories")
    assert parse_text_value(categories, "web: ^nginx$\n") == ({"web": "^nginx$"}, None)
    bomb = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 9) + "]\n" for i in range(9))
    value, error = parse_text_value(categories, bomb)
    assert value is None and error.startswith("categories line 5: alias *l3 expands the document beyond")
    assert parse_text_value(categories, "web: 1\nweb: 2\n") == (None, "categories line 2: duplicate key 'web' "
                                                                       "(first at line 1)")


def test_cli_validate_reports_service_lists_of_the_wrong_type(tmp_path, capsys):
    path = tmp_path / "collector.yaml"
    path.write_text("receivers: {hostmetrics: {scrapers: {process: {}}}}\nexporters: {debug: {}}\n"
                    "service:\n  extensions: true\n  pipelines:\n"
                    "    metrics: {receivers: [[hostmetrics]], exporters: [debug, {x: 1}]}\n"
                    "  telemetry: {metrics: {readers: 3}}\n")
    assert main(["pipeline", "validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "service.extensions: must be a list of component ids" in lines
    assert "service.pipelines.metrics.receivers: ['hostmetrics'] is not a component id" in lines
    assert "service.pipelines.metrics.exporters: {'x': 1} is not a component id" in lines
    assert "service.telemetry.metrics.readers: must be a list" in lines


def test_cli_validate_refuses_collector_include_patterns_re2_cannot_compile(tmp_path, capsys):
    path = tmp_path / "collector.yaml"
    path.write_text("receivers:\n  hostmetrics:\n    scrapers:\n      process:\n"
                    "        include: {names: ['^nginx$', '(\\w+)-\\1'], match_type: regexp}\n"
                    "exporters: {debug: {}}\n"
                    "service: {pipelines: {metrics: {receivers: [hostmetrics], exporters: [debug]}}}\n")
    assert main(["pipeline", "validate", str(path)]) == 1
    assert ("receivers.hostmetrics.scrapers.process.include.names[1] '(\\\\w+)-\\\\1' backreferences (\\1 …) are "
            "not supported by RE2") in capsys.readouterr().out.splitlines()
