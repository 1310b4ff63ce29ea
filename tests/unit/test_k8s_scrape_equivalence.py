"""The experiment's scrape config and its PodMonitor select the same pods and ports and label
them the same (core/render/k8s_resources.py).

The PodMonitor is turned into the scrape jobs prometheus-operator would generate for it
(tests/prom_relabel.py), both are applied to the targets kubernetes_sd would discover for a set
of pods, and the kept targets with their final labels must be identical. The pods are the
operator's own DaemonSet template on two nodes for each of the experiment's three pipelines (the
tap and both variants, as the runtime renders them), plus pods either must leave out.
"""

from __future__ import annotations

import copy
from typing import Any

from core.catalog.templates import get_template
from core.render import k8s_resources as res
from tests.kube_pods import collector_daemonset, daemonset_pods, running_status
from tests.prom_relabel import operator_scrape_config, scrape

EXP, NS = "exp-3f9a2c", "team-a"
NOW = "2026-01-01T00:00:00Z"


ROLES = (res.TAP, "baseline", "candidate")
TEMPLATES = {"baseline": "process-baseline-v1", "candidate": "process-topk-v1"}


def _pods(experiment_id: str, namespace: str, first_ip: int) -> list[dict[str, Any]]:
    pipelines = {v: get_template(t) for v, t in TEMPLATES.items()}
    refs = {v: (t, 1) for v, t in TEMPLATES.items()}
    pods = []
    for cr in res.experiment_pipelines(experiment_id, namespace, pipelines, refs, res.default_placement()):
        pods += daemonset_pods(collector_daemonset(cr), ["node-a", "node-b"])
    for i, pod in enumerate(pods):
        pod["status"] = running_status(f"10.0.{first_ip}.{i + 1}", NOW)
    return pods


def _world() -> list[dict[str, Any]]:
    mine = _pods(EXP, NS, 1)
    finished = copy.deepcopy(mine[0])
    finished["metadata"]["name"] += "-old"
    finished["status"] = running_status("10.0.9.9", NOW, phase="Succeeded")
    return [*mine, finished, *_pods("exp-other", NS, 2), *_pods(EXP, "team-b", 3)]


def test_scrape_config_and_pod_monitor_keep_the_same_targets_with_the_same_labels() -> None:
    pods = _world()
    by_config = scrape([res.scrape_config(EXP, NS)], pods)
    by_monitor = scrape(operator_scrape_config(res.pod_monitor(EXP, NS)), pods)
    assert by_config == by_monitor
    # 3 roles (tap, baseline, candidate) x 2 nodes x the two scraped ports; not the health or
    # OTLP port, the finished pod, the other experiment or the same experiment's pods in another namespace
    assert len(by_config) == 12
    labels = [dict(lbl) for _, lbl in by_config]
    assert {(lbl["phoenix_variant"], lbl["node"], lbl["endpoint"]) for lbl in labels} == {
        (v, n, p) for v in ROLES for n in ("node-a", "node-b") for p in res.SCRAPED_PORTS}
    assert {lbl["phoenix_experiment_id"] for lbl in labels} == {EXP}
    assert {lbl["job"] for lbl in labels} == {res.scrape_job(EXP)} and {lbl["namespace"] for lbl in labels} == {NS}
    assert {addr.rsplit(":", 1)[1] for addr, _ in by_config} == {"8889", "8888"}


def test_the_comparison_sees_a_difference() -> None:
    """A PodMonitor that selects another port, or labels differently, no longer matches."""
    pods = _world()
    by_config = scrape([res.scrape_config(EXP, NS)], pods)
    other_port = res.pod_monitor(EXP, NS)
    other_port["spec"]["podMetricsEndpoints"][1]["port"] = "health"
    assert scrape(operator_scrape_config(other_port), pods) != by_config
    no_variant = res.pod_monitor(EXP, NS)
    for ep in no_variant["spec"]["podMetricsEndpoints"]:
        ep["relabelings"] = [r for r in ep["relabelings"] if r.get("targetLabel") != "phoenix_variant"]
    assert scrape(operator_scrape_config(no_variant), pods) != by_config
