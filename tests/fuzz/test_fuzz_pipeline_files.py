"""Hostile pipeline files through the entry points users have.

- ``phoenix pipeline validate FILE``: ``core.commands.pipeline.validate_file`` (problems, exit 1);
- ``phoenix pipeline import|render FILE``: ``Pipeline.from_file`` then the graph checks;
- the builder's upload: ``Pipeline.from_text(uploaded bytes)``.

Every input must be accepted or refused with a ``PhoenixError`` (or validate's problem lines)
whose message is not empty; no other exception, and each example within a time budget.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from core.catalog.registry import REGISTRY
from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.commands.pipeline import validate_file
from core.domain.documents import MAX_DEPTH, MAX_VALUES
from tests.fuzz.pipeline_inputs import (
    FILES,
    HOSTILE_TEXT,
    SCALARS,
    VALUES,
    assert_handled,
    schema_pass_only,  # noqa: F401 - fixture
    serialise,
)
from tests.fuzz.profile import FUZZ

pytestmark = pytest.mark.usefixtures("schema_pass_only")

TEMPLATES = {name: get_template(name).to_dict() for name in TEMPLATE_NAMES}


# ------------------------------------------------------------------ strategies


@st.composite
def param_value(draw: st.DrawFn, p: Any) -> Any:
    """Mostly plausible for the parameter's type (to get past the first check), else anything."""
    plausible = {
        "enum": st.sampled_from(list(p.choices or ("x",))),
        "bool": st.booleans(),
        "int": st.integers(-5, 10**6),
        "bytes": st.integers(-5, 10**10),
        "float": st.floats(-1, 200, allow_nan=False),
        "duration": st.sampled_from(["10s", "1m30s", "0s", "5", "-1s", "1h"]),
        "str": HOSTILE_TEXT,
        "list[str]": st.lists(HOSTILE_TEXT, max_size=4),
        "map": st.dictionaries(HOSTILE_TEXT, VALUES, max_size=3),
        "rules": st.lists(VALUES, max_size=3),
    }.get(p.type, VALUES)
    roll = draw(st.integers(0, 9))
    return p.default if roll < 2 else draw(plausible) if roll < 8 else draw(VALUES)


@st.composite
def pipeline_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A built-in template with a few hostile edits: wrong types, random graphs, odd rules."""
    data = TEMPLATES[draw(st.sampled_from(TEMPLATE_NAMES))]
    data = json.loads(json.dumps(data))  # a private copy
    for _ in range(draw(st.integers(1, 4))):
        # Parameter edits most often, so a fair share of graphs stay valid and get rendered.
        edit = draw(st.sampled_from(["param"] * 6 + ["type", "edge", "drop_edge", "node", "drop_node",
                                                      "policy", "position"]))
        nodes = data["nodes"]
        node = draw(st.sampled_from(nodes)) if nodes else None
        if edit == "param" and node is not None:
            t = REGISTRY.get(node["type"]) if isinstance(node["type"], str) else None
            specs = list(t.params) if t else []
            if specs:
                p = draw(st.sampled_from(specs))
                node.setdefault("params", {})[p.name] = draw(param_value(p))
            else:
                node["params"] = draw(VALUES)
        elif edit == "type" and node is not None:
            node["type"] = draw(st.sampled_from([*REGISTRY, "nope", ""]) | VALUES)
        elif edit == "edge":
            ids = [n.get("id") for n in nodes] + ["ghost"]
            data["edges"].append({"source": draw(st.sampled_from(ids)), "target": draw(st.sampled_from(ids))})
        elif edit == "drop_edge" and data["edges"]:
            data["edges"].pop(draw(st.integers(0, len(data["edges"]) - 1)))
        elif edit == "node":
            nid = draw(st.sampled_from(["n1", "n2", "x_9", "Bad id", ""]))
            ntype = draw(st.sampled_from(list(REGISTRY)))
            nodes.insert(draw(st.integers(0, len(nodes))), {"id": nid, "type": ntype, "params": {}})
        elif edit == "drop_node" and nodes:
            nodes.pop(draw(st.integers(0, len(nodes) - 1)))
        elif edit == "policy":
            data["critical_policy"] = draw(st.none() | st.lists(st.fixed_dictionaries({
                "match": st.sampled_from(["executable_name", "command_line", "owner", "pid"]),
                "pattern": st.sampled_from(["^nginx$", "(a+)+$", "(?<=x)", "\\pL", "[", "x" * 1025]) | HOSTILE_TEXT,
                "priority": st.sampled_from(["critical", "high", "low", "urgent"]),
            }), max_size=3)) if draw(st.booleans()) else draw(VALUES)
        elif edit == "position" and node is not None:
            node["position"] = draw(st.fixed_dictionaries({"x": SCALARS, "y": SCALARS}) | VALUES)
    if draw(st.integers(0, 9)) == 0:  # now and then a top-level field of the wrong shape
        data[draw(st.sampled_from(["name", "description", "nodes", "edges", "extra"]))] = draw(VALUES)
    return data


def _nested(depth: int, flow: bool) -> str:
    if flow:
        return "a: " + "[" * depth + "]" * depth + "\n"
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "leaf\n"


def _bomb(levels: int, width: int) -> str:
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


STRUCTURAL = st.one_of(
    st.builds(_nested, st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2) | st.integers(100, 900), st.booleans()),
    st.builds(_bomb, st.integers(2, 10), st.integers(2, 12)),
    st.sampled_from([
        "a: &a [1, *a]\n", "a: *undefined\n", "a: 1\na: 2\n", "a: 1\n---\nb: 2\n", "? [x]\n: 1\n",
        "on: yes\n", "a: !!python/object/apply:os.system [ls]\n", "a: !!binary AAAA\n", "a: !!set {x}\n",
        "a: .nan\n", '{"a": NaN}', '{"a": 1, "a": 2}', "a: " + "9" * 5000 + "\n", "\t- x\n", "- a\n- b\n",
        # at and just over the value limit (rare picks: each costs a 100 KB parse)
        "a: [" + ",".join(["0"] * (MAX_VALUES - 2)) + "]\n", "a: [" + ",".join(["0"] * MAX_VALUES) + "]\n",
    ]),
).map(lambda text: text.encode())

RAW_BYTES = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=200).map(lambda b: b"name: x\nnodes:\n" + b),
    st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
)


# ------------------------------------------------------------------ properties


@FUZZ
@given(data=pipeline_dicts(), fmt=st.sampled_from(["yaml", "json"]))
def test_random_graphs_with_wrong_types_are_validated_or_refused(data: dict[str, Any], fmt: str) -> None:
    try:
        raw = serialise(data, fmt)
    except (UnicodeEncodeError, ValueError, yaml.YAMLError):
        return  # hypothesis text PyYAML cannot write: not a file a user could have
    assert_handled(raw)


@FUZZ
@given(raw=STRUCTURAL)
def test_deep_nesting_alias_bombs_and_odd_yaml_are_refused_quickly(raw: bytes) -> None:
    assert_handled(raw)


@FUZZ
@given(raw=RAW_BYTES)
def test_random_bytes_are_refused_or_parsed(raw: bytes) -> None:
    assert_handled(raw)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_still_passes_the_hardened_reader(name: str) -> None:
    raw = get_template(name).to_yaml().encode()
    path = next(FILES)
    path.write_bytes(raw)
    assert validate_file(str(path)) == ([], "pipeline graph")
    path.unlink()
