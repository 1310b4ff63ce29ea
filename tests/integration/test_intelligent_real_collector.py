"""The real collector accepts what intelligent emits when it has learned per-host names
(``host.name ==`` statements beside the fleet-wide anchored regex), names with regex
metacharacters included: they are escaped, never expanded."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.catalog.templates import get_template
from core.otelcol import distribution
from core.otelcol.validate import validate_with_binary
from core.render.collector import render_collector


@pytest.fixture(scope="module")
def otelcol_bin() -> Path:
    return Path(distribution.build().path)


def test_per_host_learned_names_are_accepted_by_the_real_collector(otelcol_bin: Path) -> None:
    p = get_template("process-intelligent-v1")
    p.node("intelligent").params["learned"] = {
        "names": ["bash"], "hosts": {"node-0001": ["chronyd", "tmux: server"], "node.0002": ["java", "c++(x)|y"]},
        "source": "test", "computed_at": "2026-12-03T00:00:00Z"}
    text = render_collector(p)
    assert 'resource.attributes["host.name"] == "node.0002"' in text and r"c\\+\\+\\(x\\)\\|y" in text
    verdict = validate_with_binary(text, otelcol_bin)
    assert verdict is not None and verdict.ok, "\n".join(verdict.problems if verdict else []) + "\n" + text
