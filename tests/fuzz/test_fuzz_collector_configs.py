"""Hostile collector configurations through ``phoenix pipeline validate FILE`` (which reads a
pipeline graph *or* a collector.yaml): rendered configs of the built-in templates with values
replaced at random depths by values of the wrong type. Accepted or refused with problem lines,
never another exception, each example within the time budget of ``assert_handled``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.render.bundle import render_bundle
from tests.fuzz.pipeline_inputs import (
    VALUES,
    assert_handled,
    schema_pass_only,  # noqa: F401 - fixture
    serialise,
)
from tests.fuzz.profile import FUZZ

pytestmark = pytest.mark.usefixtures("schema_pass_only")

CONFIGS = {name: yaml.safe_load(render_bundle(get_template(name)).collector_yaml) for name in TEMPLATE_NAMES}
ODD = st.sampled_from(["", "nope/x", "${env:X}", "IsMatch(", "0.0.0.0:8888", "metrics/2", "debug"])


@st.composite
def collector_configs(draw: st.DrawFn) -> dict[str, Any]:
    cfg = json.loads(json.dumps(CONFIGS[draw(st.sampled_from(TEMPLATE_NAMES))]))  # a private copy
    for _ in range(draw(st.integers(1, 3))):
        node: Any = cfg
        parent: Any = None
        key: Any = None
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)):  # walk down a random path
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = node[key]
        if parent is None:
            section = draw(st.sampled_from(["receivers", "processors", "exporters", "extensions", "service",
                                            "connectors", "extra"]))
            cfg[section] = draw(VALUES)
        else:
            parent[key] = draw(VALUES | ODD)
    return cfg


@FUZZ
@given(config=collector_configs(), fmt=st.sampled_from(["yaml", "json"]))
def test_collector_configs_with_wrong_types_are_validated_or_refused(config: dict[str, Any], fmt: str) -> None:
    try:
        raw = serialise(config, fmt)
    except (UnicodeEncodeError, ValueError, yaml.YAMLError):
        return  # hypothesis text PyYAML cannot write: not a file a user could have
    assert_handled(raw)
