"""Everything ``phoenix pipeline render`` writes: collector.yaml and k8s/*.yaml."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from core.domain.pipeline import Pipeline
from core.outputs import write_tree
from core.render.collector import RenderOptions, build
from core.render.k8s import K8sOptions, render_manifests


@dataclass
class Bundle:
    collector_yaml: str
    manifests: dict[str, str]
    notes: list[str]

    def files(self) -> dict[str, str]:
        """Relative path → content."""
        out = {"collector.yaml": self.collector_yaml}
        out.update({f"k8s/{name}": text for name, text in self.manifests.items()})
        return out


def render_bundle(pipeline: Pipeline, opts: RenderOptions | None = None, k8s: K8sOptions | None = None) -> Bundle:
    """The DaemonSet flavour: collector.yaml reads the host through /hostfs."""
    opts = opts or RenderOptions()
    if opts.root_path is None:
        opts = replace(opts, root_path="/hostfs")
    collector = build(pipeline, opts)
    return Bundle(collector.text, render_manifests(pipeline, collector, opts, k8s), collector.notes)


def write_bundle(bundle: Bundle, out_dir: str | Path, *, flag: str = "--out") -> list[Path]:
    """Write ``out_dir/collector.yaml`` and ``out_dir/k8s/*.yaml`` all or nothing.

    ``k8s/`` is the render's own: manifests a previous render left that this one does not
    produce are removed, and a foreign manifest there is refused (``core.outputs.write_tree``).
    """
    return write_tree(out_dir, bundle.files(), flag=flag, owned=("k8s",))
