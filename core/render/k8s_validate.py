"""Validate Kubernetes manifests: built-in kinds with ``kubernetes-validate`` (strict),
Phoenix custom resources against their CRD's ``openAPIV3Schema`` with jsonschema."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import yaml

from core.resources import CRD_DIR

KUBERNETES_VERSION = "1.33"


@cache
def crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) → openAPIV3Schema, from core/k8s/crds/*.yaml."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.phoenix.io.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = crd["spec"]
        for v in spec["versions"]:
            out[(spec["group"], v["name"], spec["names"]["kind"])] = closed(v["schema"]["openAPIV3Schema"])
    return out


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every object that lists its properties closed to others.

    A structural CRD schema may not say ``additionalProperties: false`` beside ``properties``
    (the API server refuses the CRD); it prunes unknown fields instead, and refuses them under
    strict field validation. Checking a manifest here, an unknown field is an error too.
    """
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: closed(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = closed(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = closed(out["additionalProperties"])
    return out


def validate_custom_resource(doc: dict[str, Any]) -> list[str]:
    group, _, version = str(doc.get("apiVersion", "")).partition("/")
    schema = crd_schemas().get((group, version, str(doc.get("kind"))))
    if schema is None:
        return [f"{doc.get('kind')} {doc.get('apiVersion')}: no CRD in core/k8s/crds defines it"]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}: "
        f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def validate_manifest(doc: Any) -> list[str]:
    import kubernetes_validate

    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return ["a manifest must be a mapping with apiVersion and kind"]
    if str(doc["apiVersion"]).startswith("phoenix.io/"):
        return validate_custom_resource(doc)
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(map(str, exc.absolute_path)) or "(root)"
        return [f"{doc['kind']}/{(doc.get('metadata') or {}).get('name')}: {where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{doc['kind']} {doc['apiVersion']}: unknown to Kubernetes {KUBERNETES_VERSION}"]
    return []


def validate_manifests_text(files: dict[str, str]) -> list[str]:
    problems: list[str] = []
    for name, text in files.items():
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            problems.append(f"{name}: not valid YAML: {exc}")
            continue
        for doc in docs:
            problems.extend(f"{name}: {p}" for p in validate_manifest(doc))
    return problems
