"""Limits of the one JSON/YAML reader every pipeline and critical-policy file goes through.

One test per limit, each with the exact message a user sees (CLI ``error: …``, st.error).
"""

from __future__ import annotations

import json
import time

import pytest

from core.domain.documents import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_STRING_CHARS,
    MAX_VALUES,
    load_mapping,
    read_bounded,
)
from core.domain.errors import ValidationError


def refusal(raw: bytes | str, source: str = "p.yaml") -> str:
    with pytest.raises(ValidationError) as err:
        load_mapping(raw, source)
    return str(err.value)


def nested_yaml(levels: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "leaf"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- size and bytes


def test_file_size_is_limited_before_parsing():
    raw = b"a: " + b"x" * MAX_FILE_BYTES
    assert refusal(raw) == f"p.yaml is {len(raw)} bytes; files larger than 1048576 bytes (1 MiB) are refused"


def test_read_bounded_refuses_a_large_file_by_its_size(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ValidationError) as err:
        read_bounded(big, what="pipeline file")
    assert str(err.value) == f"{big} is 1048577 bytes; files larger than 1048576 bytes (1 MiB) are refused"


def test_read_bounded_names_a_missing_file(tmp_path):
    with pytest.raises(ValidationError) as err:
        read_bounded(tmp_path / "nope.yaml", what="critical file")
    assert str(err.value) == f"cannot read critical file {tmp_path / 'nope.yaml'}: no such file"


def test_non_utf8_bytes_are_refused_with_their_offset():
    assert refusal(b"name: caf\xe9\n") == "p.yaml is not UTF-8 text (byte 0xe9 at offset 9)"


def test_binary_junk_is_refused():
    assert refusal(b"\x00\x01\x02PK\x03\x04") == \
        "p.yaml looks binary (it contains NUL bytes), not JSON or YAML text"


@pytest.mark.parametrize("raw", ["", "   \n\n", "# only a comment\n", "---\n", b""])
def test_empty_files_are_refused(raw):
    assert refusal(raw) == "p.yaml is empty"


@pytest.mark.parametrize(("raw", "kind"), [("- a\n- b\n", "a list"), ("just text\n", "a string"),
                                           ("42\n", "a number"), ("[1, 2]", "a list")])
def test_the_top_level_must_be_a_mapping(raw, kind):
    assert refusal(raw) == f"p.yaml must be a mapping at the top level, got {kind}"


# ---------------------------------------------------------------- structure


def test_yaml_nesting_depth_is_limited():
    assert refusal(nested_yaml(MAX_DEPTH + 5)) == f"p.yaml line {MAX_DEPTH + 1}: nesting deeper than 32 levels"
    assert load_mapping(nested_yaml(MAX_DEPTH - 1), "p.yaml")  # 31 mappings inside the top level: fine


def test_deep_flow_yaml_is_refused_not_a_recursion_error():
    assert refusal("a: " + "[" * 500 + "]" * 500) == "p.yaml line 1: nesting deeper than 32 levels"
    # libyaml's own scanner stops at 1,000 flow levels, before any event reaches the check
    assert "exceeded maximum nesting depth" in refusal("a: " + "[" * 5000 + "]" * 5000)


def test_json_nesting_depth_is_limited():
    assert refusal('{"a": ' + "[" * 10_000 + "]" * 10_000 + "}", "p.json") == \
        "p.json line 1: nesting deeper than 32 levels"


def test_alias_expansion_is_limited_before_objects_are_built():
    started = time.perf_counter()
    assert refusal(alias_bomb()) == \
        f"p.yaml line 5: alias *l3 expands the document beyond {MAX_VALUES} values (a YAML alias bomb?)"
    assert time.perf_counter() - started < 2


def test_alias_depth_counts_the_aliased_structure():
    text = "deep: &d " + "[" * 20 + "]" * 20 + "\nuse: [[[[[[[[[[[[[[*d]]]]]]]]]]]]]]\n"
    assert refusal(text) == "p.yaml line 2: alias *d nests deeper than 32 levels"


def test_recursive_aliases_are_refused():
    assert refusal("a: &a [1, *a]\n") == \
        "p.yaml line 1: alias *a refers to a collection that contains it (a recursive structure)"


def test_small_aliases_and_merge_keys_load_as_independent_copies():
    data = load_mapping("base: &b {x: [1, 2]}\none:\n  <<: *b\n  y: 3\ntwo: *b\n", "p.yaml")
    assert data == {"base": {"x": [1, 2]}, "one": {"x": [1, 2], "y": 3}, "two": {"x": [1, 2]}}
    data["two"]["x"].append(9)
    assert data["base"]["x"] == [1, 2]  # editing one place never changes another


def test_string_length_is_limited():
    long = "x" * (MAX_STRING_CHARS + 1)
    assert refusal(f"name: {long}\n") == \
        f"p.yaml line 1: a string of {MAX_STRING_CHARS + 1} characters is longer than the limit of 16384"
    assert refusal(json.dumps({"name": long}), "p.json") == \
        f"p.json: name: a string of {MAX_STRING_CHARS + 1} characters is longer than the limit of 16384"


def test_value_count_is_limited():
    text = "a: [" + ", ".join(["1"] * MAX_VALUES) + "]\n"
    assert refusal(text) == f"p.yaml line 1: more than {MAX_VALUES} values"
    assert refusal(json.dumps({"a": [1] * MAX_VALUES}), "p.json") == f"p.json: more than {MAX_VALUES} values"


def test_duplicate_keys_are_refused_like_the_collector_does():
    assert refusal("name: a\nnodes: []\nname: b\n") == "p.yaml line 3: duplicate key 'name' (first at line 1)"
    assert refusal('{"name": "a", "name": "b"}', "p.json") == "p.json: duplicate key 'name' in one JSON object"


def test_keys_must_be_strings():
    assert refusal("1: a\n") == "p.yaml line 1: mapping keys must be strings, got 1 (a number); quote it"
    assert refusal("on: a\n") == "p.yaml line 1: mapping keys must be strings, got True (a boolean); quote it"


def test_numbers_must_be_finite():
    assert refusal("x: .inf\n") == "p.yaml: x: numbers must be finite, got inf"
    assert refusal('{"x": NaN}', "p.json") == "p.json: numbers must be finite, got NaN"


def test_integers_too_long_to_convert_are_refused():
    assert refusal("x: " + "9" * 5000 + "\n").startswith("p.yaml is not valid YAML: Exceeds the limit")
    assert refusal('{"x": ' + "9" * 5000 + "}", "p.json").startswith("p.json is not valid JSON: Exceeds the limit")


def test_several_documents_are_refused():
    assert refusal("a: 1\n---\nb: 2\n") == "p.yaml line 2: holds several YAML documents; expected one"


def test_yaml_types_json_cannot_hold_are_refused_and_dates_stay_text():
    assert refusal("x: !!binary aGk=\n") == ("p.yaml line 1: YAML type tag:yaml.org,2002:binary is not supported "
                                             "(use strings, numbers, booleans, lists and mappings)")
    assert refusal("x: !!python/name:os.system\n").startswith("p.yaml is not valid YAML: could not determine")
    assert load_mapping("as_of: 2024-05-01\n", "p.yaml") == {"as_of": "2024-05-01"}


def test_syntax_errors_name_the_file_and_position():
    assert refusal("a: [\n") == ("p.yaml is not valid YAML: while parsing a flow node did not find expected node "
                                 "content at line 2, column 1")


def test_yaml_flow_style_starting_like_json_still_loads():
    assert load_mapping("{rules: [{match: owner, pattern: x}]}", "c.yaml") == {
        "rules": [{"match": "owner", "pattern": "x"}]}
