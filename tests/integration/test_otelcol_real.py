"""Every config Phoenix renders is accepted by the real Phoenix collector (``<bin> validate``).

The binary is the pinned distribution (collector/builder-config.yaml) from the build cache;
``make test`` builds it first (``make collector``), and this module builds it when absent, so a
missing binary fails here instead of being skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.domain.pipeline import Pipeline
from core.otelcol import distribution
from core.otelcol.validate import validate_with_binary
from core.render.bundle import render_bundle
from core.render.collector import COLLECTOR_VERSION, RenderOptions
from tests.unit.test_graph_properties import valid_chain

GOLDEN = Path(__file__).resolve().parents[1] / "unit" / "testdata" / "golden"


@pytest.fixture(scope="module")
def otelcol_bin() -> Path:
    return Path(distribution.build().path)


def _assert_accepted(config_yaml: str, binary: Path) -> None:
    verdict = validate_with_binary(config_yaml, binary)
    assert verdict is not None
    assert verdict.ok, "\n".join(verdict.problems) + "\n---\n" + config_yaml


def test_the_binary_is_the_pinned_release(otelcol_bin: Path) -> None:
    assert distribution.pinned_release() == COLLECTOR_VERSION
    assert f"version {COLLECTOR_VERSION}" in distribution.binary_version(otelcol_bin)


@pytest.mark.parametrize("variant", [None, "baseline", "candidate"])
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_render_is_accepted(otelcol_bin: Path, name: str, variant: str | None) -> None:
    opts = RenderOptions(experiment_id="exp-real" if variant else None, variant=variant)
    _assert_accepted(render_bundle(get_template(name), opts).collector_yaml, otelcol_bin)


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*/collector.yaml")), ids=lambda p: p.parent.name)
def test_every_golden_file_is_accepted(otelcol_bin: Path, path: Path) -> None:
    _assert_accepted(path.read_text(encoding="utf-8"), otelcol_bin)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(valid_chain(), st.sampled_from([None, "baseline", "candidate"]))
def test_generated_valid_graphs_are_accepted(otelcol_bin: Path, data: dict, variant: str | None) -> None:
    opts = RenderOptions(experiment_id="exp-gen" if variant else None, variant=variant)
    _assert_accepted(render_bundle(Pipeline.from_dict(data), opts).collector_yaml, otelcol_bin)


def test_the_binary_refuses_what_pyyaml_lets_through(otelcol_bin: Path) -> None:
    """Duplicate keys: PyYAML keeps the last, the collector refuses the file."""
    text = render_bundle(get_template("process-baseline-v1")).collector_yaml
    dup = text.replace("processors:\n", "processors:\n  batch: {}\n  batch: {}\n", 1)
    verdict = validate_with_binary(dup, otelcol_bin)
    assert verdict is not None and not verdict.ok
    assert any("already defined" in p for p in verdict.problems)


def test_an_unknown_key_is_refused_with_the_collectors_words(otelcol_bin: Path) -> None:
    text = render_bundle(get_template("process-baseline-v1")).collector_yaml
    bad = text.replace("send_batch_size:", "send_batch_sizes:", 1)
    verdict = validate_with_binary(bad, otelcol_bin)
    assert verdict is not None and not verdict.ok
    assert any("invalid keys: send_batch_sizes" in p for p in verdict.problems)


def test_the_schema_pass_catches_what_the_receiver_tolerates(otelcol_bin: Path) -> None:
    """At v0.159.0 the hostmetrics receiver's own unmarshalling ignores an unknown receiver-level
    key; the vendored-schema first pass is what refuses it (docs/real-collector.md)."""
    from core.render.schema_validate import validate_collector_yaml

    text = render_bundle(get_template("process-baseline-v1")).collector_yaml
    bad = text.replace("collection_interval:", "collection_intervall:", 1)
    verdict = validate_with_binary(bad, otelcol_bin)
    assert verdict is not None and verdict.ok
    assert any("collection_intervall" in p for p in validate_collector_yaml(bad))


def test_cli_validate_says_which_validators_ran(otelcol_bin: Path, tmp_path: Path, capsys) -> None:
    from core.cli import main

    path = tmp_path / "collector.yaml"
    path.write_text(render_bundle(get_template("process-topk-v1")).collector_yaml)
    assert main(["pipeline", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"schemas v{COLLECTOR_VERSION} + phoenix-otelcol v{COLLECTOR_VERSION} validate" in out

    path.write_text(path.read_text().replace("processors:\n", "processors:\n  batch: {}\n  batch: {}\n", 1))
    assert main(["pipeline", "validate", str(path)]) == 1
    assert "duplicate key" in capsys.readouterr().out


def test_the_builder_shows_the_real_collectors_verdict(otelcol_bin: Path) -> None:
    from app.widgets.pipeline_tools import render

    rendered = render(get_template("process-aggregated-v1"))
    assert rendered.collector_problems == []
    assert "phoenix-otelcol" in rendered.validated_by
