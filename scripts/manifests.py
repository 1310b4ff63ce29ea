"""`make manifests`: render every kustomize overlay into dist/k8s/<overlay>.yaml and validate it.

    python scripts/manifests.py [--out DIR] [--kustomize PATH]

Kustomize is the pinned Go build (tools/go/kustomize, `scripts/gotool.sh kustomize`; built once
when missing). Validation, per object:

- built-in kinds: kubernetes-validate in strict mode (unknown fields are errors), against the
  Kubernetes version the test API server runs (KUBERNETES_VERSION);
- custom resources whose CRD is rendered too (the Phoenix CRDs): jsonschema against the CRD's
  openAPIV3Schema;
- the third-party custom resources listed in NOT_SCHEMA_CHECKED (their CRDs are not part of
  Phoenix): only their shape is checked (apiVersion, kind, metadata.name, a spec mapping), and the
  run says so (tests/integration/test_k8s_deployment_dryrun.py checks their spec against trimmed
  structural copies of their CRDs on a real API server). Any other unknown kind is an error.

Exit status 1 with one line per problem; the output is deterministic (kustomize sorts nothing
away: the same sources give the same bytes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.37.0"

#: name in dist/k8s → kustomization directory
OVERLAYS: dict[str, str] = {
    "dev": "k8s/overlays/dev",
    "production": "k8s/overlays/production",
    "production-full": "k8s/overlays/production-full",
    "argocd": "k8s/argocd",
}

#: (apiVersion, kind) of custom resources whose CRDs belong to other projects: shape-checked only.
NOT_SCHEMA_CHECKED: frozenset[tuple[str, str]] = frozenset({
    ("external-secrets.io/v1", "ExternalSecret"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("argoproj.io/v1alpha1", "Application"),
    ("argoproj.io/v1alpha1", "ApplicationSet"),
})


def kustomize_binary() -> str:
    done = subprocess.run([str(ROOT / "scripts" / "gotool.sh"), "kustomize"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"manifests: cannot build kustomize: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def render(kustomize: str, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, rel in OVERLAYS.items():
        done = subprocess.run([kustomize, "build", str(ROOT / rel)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"manifests: kustomize build {rel} failed: {done.stderr.strip()}")
        path = out / f"{name}.yaml"
        path.write_text(done.stdout, encoding="utf-8")
        written[name] = path
    for stale in sorted(set(out.glob("*.yaml")) - set(written.values())):  # an overlay removed since
        stale.unlink()
    return written


#: libyaml's loader when PyYAML has it: the pure-Python one takes seconds on the CRDs.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(paths: Iterable[Path]) -> dict[Path, list[dict[str, Any]]]:
    return {p: [d for d in yaml.load_all(p.read_text(encoding="utf-8"), Loader=YAML_LOADER) if d is not None]
            for p in paths}


def crd_schemas(docs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → openAPIV3Schema of every CRD among ``docs``."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in docs:
        if doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return out


def _name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def validate(doc: dict[str, Any], schemas: dict[tuple[str, str], dict[str, Any]]) -> tuple[list[str], bool]:
    """Problems of one object, and whether it was checked against a schema."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    if key in schemas:
        validator = jsonschema.Draft7Validator(schemas[key])
        return [f"{_name(doc)}: {'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in validator.iter_errors(doc)], True
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{_name(doc)}: {'.'.join(map(str, exc.absolute_path)) or '(root)'}: {exc.message}"], True
    except kubernetes_validate.SchemaNotFoundError:
        if key not in NOT_SCHEMA_CHECKED:
            return [f"{_name(doc)}: {key[0]} {key[1]} is neither a Kubernetes {KUBERNETES_VERSION} kind "
                    "nor a custom resource with a rendered CRD"], False
        shape = []
        if not (doc.get("metadata") or {}).get("name"):
            shape.append(f"{_name(doc)}: metadata.name is missing")
        if not isinstance(doc.get("spec"), dict):
            shape.append(f"{_name(doc)}: spec must be a mapping")
        return shape, False
    return [], True


def validate_files(files: dict[Path, list[dict[str, Any]]]) -> tuple[list[str], list[str]]:
    """(problems, objects not schema-checked), each line naming its file."""
    problems: list[str] = []
    unchecked: list[str] = []
    # A CRD rendered in any overlay validates its resources in every overlay.
    schemas = crd_schemas(d for docs in files.values() for d in docs)
    for path, docs in files.items():
        for doc in docs:
            found, checked = validate(doc, schemas)
            problems.extend(f"{path.name}: {p}" for p in found)
            if not checked and not found:
                unchecked.append(f"{path.name}: {_name(doc)} ({doc.get('apiVersion')})")
    return problems, unchecked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "k8s")
    parser.add_argument("--kustomize", help="kustomize binary (default: scripts/gotool.sh kustomize)")
    args = parser.parse_args(argv)
    written = render(args.kustomize or kustomize_binary(), args.out)
    files = load(written.values())
    problems, unchecked = validate_files(files)
    for line in problems:
        print(f"manifests: {line}", file=sys.stderr)
    for line in unchecked:
        print(f"manifests: shape only (no schema): {line}")
    if problems:
        return 1
    total = sum(len(d) for d in files.values())
    print(f"manifests: {total} objects in {len(written)} files under {args.out}, valid for Kubernetes "
          f"{KUBERNETES_VERSION} (strict)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
