"""Prometheus target relabeling, and the Prometheus Operator's PodMonitor translation, as models.

Used to prove that the experiment's scrape config and its PodMonitor select the same pods and
ports and give them the same labels (tests/unit/test_k8s_scrape_equivalence.py). The models are
checked against the real thing where the suite has it: tests/integration/test_k8s_prometheus.py
feeds the labels a real Prometheus discovered from the real API server through ``relabel`` and
compares the result with the labels that Prometheus gave its targets.

- ``relabel``: Prometheus' ``relabel_config`` for the actions Phoenix uses (replace, keep,
  drop), with its defaults: separator ``;``, regex ``(.*)`` anchored at both ends, replacement
  ``$1``; a replace whose result is empty removes the label.
- ``operator_scrape_config``: what prometheus-operator generates for a PodMonitor
  (``generatePodMonitorConfig``): drop finished pods (``filterRunning``, default true), keep by
  each ``matchLabels`` pair (label value and label presence), keep by the endpoint's port name,
  add ``namespace``, ``container``, ``pod``, ``job`` (``<namespace>/<name>``) and ``endpoint``,
  then the endpoint's own ``relabelings``. One scrape job per endpoint. Any PodMonitor field it
  does not model is refused, so a new field cannot slip past the comparison.
- ``pod_targets``: kubernetes_sd's ``role: pod``: one target per declared container port, with
  the ``__meta_kubernetes_*`` labels Prometheus sets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_SNAKE = {"sourceLabels": "source_labels", "targetLabel": "target_label", "separator": "separator",
          "regex": "regex", "replacement": "replacement", "action": "action"}  # fmt: skip
_MODELLED_SPEC = {"selector", "podMetricsEndpoints"}
_MODELLED_ENDPOINT = {"port", "relabelings"}


def _name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


def _expand(replacement: str, match: re.Match[str]) -> str:
    """Prometheus' ``$1`` / ``${1}`` / ``${name}`` in a replacement (Go's Regexp.Expand)."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: match.group(int(m.group(1)) if m.group(1).isdigit() else m.group(1))
                  or "", replacement)  # fmt: skip


def relabel(labels: Mapping[str, str], rules: Iterable[Mapping[str, Any]]) -> dict[str, str] | None:
    """The labels after ``rules`` (snake_case, as in a scrape config); None when a rule dropped the target."""
    out = dict(labels)
    for rule in rules:
        action = str(rule.get("action", "replace")).lower()
        value = str(rule.get("separator", ";")).join(out.get(s, "") for s in rule.get("source_labels", []))
        match = re.fullmatch(str(rule.get("regex", "(.*)")), value)
        if action == "keep":
            if match is None:
                return None
        elif action == "drop":
            if match is not None:
                return None
        elif action == "replace":
            if match is None:
                continue
            result = _expand(str(rule.get("replacement", "$1")), match)
            target = _expand(str(rule["target_label"]), match)
            if result:
                out[target] = result
            else:
                out.pop(target, None)
        else:
            raise NotImplementedError(f"relabel action {action!r} is not modelled")
    return out


def target_labels(discovered: Mapping[str, str], scrape: Mapping[str, Any]) -> dict[str, str] | None:
    """A discovered target's final labels under a scrape job, as Prometheus computes them:
    ``job`` from the job name, the relabeling, ``instance`` from the address, ``__*`` dropped."""
    labels = relabel({"job": scrape["job_name"], **discovered}, scrape.get("relabel_configs", []))
    if labels is None:
        return None
    labels.setdefault("instance", labels["__address__"])
    return {k: v for k, v in labels.items() if not k.startswith("__")}


def operator_scrape_config(pod_monitor: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The scrape jobs prometheus-operator generates for ``pod_monitor`` (one per endpoint)."""
    meta, spec = pod_monitor["metadata"], pod_monitor["spec"]
    unknown = set(spec) - _MODELLED_SPEC
    selector = spec["selector"]
    if unknown or set(selector) - {"matchLabels"}:
        raise NotImplementedError(f"PodMonitor fields not modelled: {sorted(unknown) or sorted(selector)}")
    jobs = []
    for i, ep in enumerate(spec["podMetricsEndpoints"]):
        if set(ep) - _MODELLED_ENDPOINT:
            raise NotImplementedError(f"podMetricsEndpoints fields not modelled: {sorted(set(ep) - _MODELLED_ENDPOINT)}")
        rules: list[dict[str, Any]] = [
            {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
            {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)", "action": "drop"},
        ]
        for key, value in sorted(selector.get("matchLabels", {}).items()):
            rules.append({"source_labels": [f"__meta_kubernetes_pod_label_{_name(key)}",
                                            f"__meta_kubernetes_pod_labelpresent_{_name(key)}"],
                          "regex": f"({value});true", "action": "keep"})  # fmt: skip
        rules += [
            {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": ep["port"], "action": "keep"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"target_label": "job", "replacement": f"{meta['namespace']}/{meta['name']}"},
            {"target_label": "endpoint", "replacement": ep["port"]},
            *({_SNAKE[k]: v for k, v in r.items()} for r in ep.get("relabelings", [])),
        ]
        jobs.append({"job_name": f"podMonitor/{meta['namespace']}/{meta['name']}/{i}",
                     "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [meta["namespace"]]}}],
                     "relabel_configs": rules})  # fmt: skip
    return jobs


def pod_targets(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    """kubernetes_sd ``role: pod``: one target per declared container port of ``pod``."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    ip = status.get("podIP", "")
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    common = {"__meta_kubernetes_namespace": meta["namespace"], "__meta_kubernetes_pod_name": meta["name"],
              "__meta_kubernetes_pod_ip": ip, "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
              "__meta_kubernetes_pod_phase": status.get("phase", ""),
              "__meta_kubernetes_pod_ready": str(ready).lower()}  # fmt: skip
    for key, value in (meta.get("labels") or {}).items():
        common[f"__meta_kubernetes_pod_label_{_name(key)}"] = value
        common[f"__meta_kubernetes_pod_labelpresent_{_name(key)}"] = "true"
    out = []
    for c in spec["containers"]:
        for port in c.get("ports") or []:
            out.append({**common, "__address__": f"{ip}:{port['containerPort']}",
                        "__meta_kubernetes_pod_container_name": c["name"],
                        "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                        "__meta_kubernetes_pod_container_port_number": str(port["containerPort"])})  # fmt: skip
    return out


def scrape(jobs: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> set[tuple[str, tuple]]:
    """Every target ``jobs`` keep among ``pods`` (each job discovers its namespaces only), as
    hashable (address, sorted labels) pairs."""
    out: set[tuple[str, tuple]] = set()
    for job in jobs:
        names = set(job["kubernetes_sd_configs"][0]["namespaces"]["names"])
        for pod in pods:
            if pod["metadata"]["namespace"] not in names:
                continue
            for discovered in pod_targets(pod):
                labels = target_labels(discovered, job)
                if labels is not None:
                    out.add((discovered["__address__"], tuple(sorted(labels.items()))))
    return out
