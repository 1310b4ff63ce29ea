"""``phoenix experiment render``: an experiment's Kubernetes objects, written to files.

The same construction ``PHOENIX_RUNTIME=kubernetes`` applies
(``core.render.k8s_resources.experiment_objects``): three ``PhoenixProcessPipeline``
resources (the tap reading the host, baseline and candidate receiving its batches over OTLP
through their node-local Services), the ``LoadSimulationJob`` unless the load is ``none``,
and the scrape-config ConfigMap. The Phoenix operator turns the pipelines into ConfigMaps,
DaemonSets and Services (docs/operator.md). The three collector configs are also written
on their own, for review and ``otelcol validate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.domain.errors import ValidationError
from core.domain.experiment import Experiment
from core.domain.pipeline import Pipeline
from core.outputs import write_tree
from core.render import k8s_resources as res
from core.render.jinja import to_yaml

#: The namespace when the experiment's target names none (the Kubernetes runtime's default).
DEFAULT_NAMESPACE = "phoenix-experiments"
_FILE = {res.LOAD_KIND: "loadsimulationjob.yaml", "ConfigMap": "scrape-configmap.yaml"}


@dataclass
class ExperimentBundle:
    configs: dict[str, str]  # role → collector YAML (as in each pipeline's spec.config)
    manifests: dict[str, str]  # file name → YAML, in apply order
    notes: list[str]

    def files(self) -> dict[str, str]:
        """Relative path → content: ``<role>.yaml`` and ``k8s/*.yaml``."""
        out = {f"{role}.yaml": text for role, text in self.configs.items()}
        out.update({f"k8s/{name}": text for name, text in self.manifests.items()})
        return out


def render_experiment_manifests(exp: Experiment, pipelines: Mapping[str, Pipeline],
                                placement: res.CollectorPlacement | None = None,
                                namespace: str | None = None) -> ExperimentBundle:
    """The experiment's objects as files; ``pipelines`` is ``{"baseline": ..., "candidate": ...}``."""
    if set(pipelines) != set(res.VARIANTS):
        raise ValidationError(f"an experiment needs exactly a baseline and a candidate pipeline, got {sorted(pipelines)}")
    placement = placement or res.default_placement(exp.target.node_selector)
    ns = namespace or exp.target.namespace or DEFAULT_NAMESPACE
    # A PodMonitor needs the Prometheus Operator; the scrape config works with any Prometheus.
    objs = res.experiment_objects(exp, ns, pipelines, placement, use_pod_monitor=False)
    manifests: dict[str, str] = {}
    configs: dict[str, str] = {}
    for obj in objs:
        if obj["kind"] == res.PIPELINE_KIND:
            role = obj["spec"]["variant"]
            configs[role] = obj["spec"]["config"]
            name = f"pipeline-{role}.yaml"
        else:
            name = _FILE[obj["kind"]]
        manifests[name] = to_yaml(obj) + "\n"  # spec.config as a literal block: reviewable
    # The render's notes are the configs' own "# NOTE:" header lines (core/templates/collector).
    notes = [f"{role}: {line.removeprefix('# NOTE: ')}" for role, text in configs.items()
             for line in text.splitlines() if line.startswith("# NOTE: ")]  # fmt: skip
    return ExperimentBundle(configs=configs, manifests=manifests, notes=notes)


def write_experiment_bundle(bundle: ExperimentBundle, out_dir: Any, *, flag: str = "--out") -> list[Any]:
    """``out_dir/<role>.yaml`` and ``out_dir/k8s/*.yaml``, all or nothing (core.outputs.write_tree)."""
    return write_tree(out_dir, bundle.files(), flag=flag, owned=("k8s",))
