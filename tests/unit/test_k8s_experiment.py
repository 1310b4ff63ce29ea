"""``phoenix experiment render``: the experiment's custom resources as files, built by the
same construction the Kubernetes runtime applies (core.render.k8s_experiment,
core.render.k8s_resources.experiment_objects), every config judged by the real collector."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from core.catalog.templates import get_template
from core.cli import main
from core.domain.criteria import PipelineRef, Target
from core.domain.experiment import Experiment
from core.otelcol.validate import check_experiment_bundle
from core.render.k8s_experiment import ExperimentBundle, render_experiment_manifests, write_experiment_bundle
from core.render.k8s_validate import validate_manifests_text
from tests.actors import ADMIN, add_account

GOLDEN = Path(__file__).parent / "testdata" / "golden" / "experiment-baseline-vs-topk"
ROLES = ("tap", "baseline", "candidate")


def pair(baseline: str = "process-baseline-v1", candidate: str = "process-topk-v1") -> ExperimentBundle:
    exp = Experiment(id="exp-golden", name="golden", baseline=PipelineRef(baseline, 1),
                     candidate=PipelineRef(candidate, 2), target=Target(kind="kubernetes", namespace="team-a"))
    return render_experiment_manifests(exp, {"baseline": get_template(baseline), "candidate": get_template(candidate)})


def test_golden_files():
    """Rendered output equals the reviewed files (PHOENIX_UPDATE_GOLDEN=1 rewrites them)."""
    bundle = pair()
    if os.environ.get("PHOENIX_UPDATE_GOLDEN") == "1":
        write_experiment_bundle(bundle, GOLDEN)
    expected = {p.relative_to(GOLDEN).as_posix(): p.read_text(encoding="utf-8") for p in sorted(GOLDEN.rglob("*.yaml"))}
    assert expected == bundle.files()


@pytest.mark.parametrize(("baseline", "candidate"), [("process-baseline-v1", "process-topk-v1"),
                                                     ("process-minimal-v1", "process-intelligent-v1")])
def test_resources_validate_against_the_crds_and_configs_pass_the_real_collector(baseline, candidate):
    from core.otelcol.distribution import build
    from core.otelcol.validate import check_collector_yaml

    bundle = pair(baseline, candidate)
    assert validate_manifests_text(bundle.manifests) == []
    build()  # the real collector judges the configs (reused from the cache; make test builds it first)
    for role, text in bundle.configs.items():
        check = check_collector_yaml(text)
        assert check.problems == [], role
        assert "phoenix-otelcol" in check.describe(), role
    assert check_experiment_bundle(bundle) == []


def test_three_pipelines_the_tap_feeding_each_variants_node_local_service():
    bundle = pair()
    docs = {name: yaml.safe_load(text) for name, text in bundle.manifests.items()}
    assert [d["kind"] for d in docs.values()] == ["PhoenixProcessPipeline"] * 3 + ["LoadSimulationJob", "ConfigMap"]
    pipes = {d["spec"]["variant"]: d for d in docs.values() if d["kind"] == "PhoenixProcessPipeline"}
    assert list(pipes) == list(ROLES)
    assert {r: p["spec"]["config"] for r, p in pipes.items()} == bundle.configs
    tap = yaml.safe_load(bundle.configs["tap"])
    for v in ("baseline", "candidate"):
        spec = pipes[v]["spec"]
        assert (spec["otlpPort"], spec["hostAccess"]) == (4317, False)
        assert "hostmetrics" not in yaml.safe_load(bundle.configs[v])["receivers"]
        assert tap["exporters"][f"otlp/{v}"]["endpoint"] == f"phoenix-exp-golden-{v}-otlp.team-a.svc:4317"
    assert "otlpPort" not in pipes["tap"]["spec"] and "hostAccess" not in pipes["tap"]["spec"]  # default: host
    assert tap["receivers"]["hostmetrics"]["root_path"] == "/hostfs"
    # the render's notes are the configs' own, per role
    assert "tap: scrapes once for both variants; every batch goes unprocessed to each of them" in bundle.notes
    assert any(n.startswith("candidate: topk:") for n in bundle.notes)


def test_cli_writes_the_experiment_resources(memory_services, monkeypatch, tmp_path, capsys):
    exp = memory_services.experiments.create(ADMIN,
        name="k", baseline="process-baseline-v1", candidate="process-topk-v1",
        target=Target(kind="kubernetes", namespace="team-a", node_selector={"pool": "x"}))
    monkeypatch.setattr("core.commands.common.services", lambda: memory_services)
    monkeypatch.setattr("core.otelcol.validate.check_experiment_bundle",
                        lambda bundle: validate_manifests_text(bundle.manifests))  # the binary runs above
    out = tmp_path / "out"
    add_account(memory_services, ADMIN)
    assert main(["experiment", "render", exp.id, "--out", str(out), "--as", "alice"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml"))
    assert written == ["baseline.yaml", "candidate.yaml", "k8s/loadsimulationjob.yaml", "k8s/pipeline-baseline.yaml",
                       "k8s/pipeline-candidate.yaml", "k8s/pipeline-tap.yaml", "k8s/scrape-configmap.yaml", "tap.yaml"]
    tap = yaml.safe_load((out / "k8s" / "pipeline-tap.yaml").read_text())
    assert tap["metadata"]["namespace"] == "team-a"
    assert tap["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux", "pool": "x"}
    assert str(out / "k8s" / "pipeline-tap.yaml") in capsys.readouterr().out

    (tmp_path / "file").write_text("x")
    assert main(["experiment", "render", exp.id, "--out", str(tmp_path / "file")]) == 1
    assert "exists and is not a directory" in capsys.readouterr().err
