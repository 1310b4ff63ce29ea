"""Kubernetes runtime (``PHOENIX_RUNTIME=kubernetes``): an experiment as custom resources.

``KubernetesDeployer`` implements the ``Deployer`` port (and ``SampleSource``) by asking the
cluster, through ``core.runtime.kube_api.KubeApi``, for what the Phoenix operator reconciles:

- ``deploy``: in the experiment's namespace (its target's, else ``PHOENIX_K8S_NAMESPACE``)
  three ``PhoenixProcessPipeline`` resources, the local tap construction
  (``core.render.tap``, built by ``core.render.k8s_resources.experiment_pipelines``): the
  **tap**, the only collector reading the host (root at ``/hostfs``), exporting every batch
  over OTLP to the node-local Service of each variant; **baseline** and **candidate**, an OTLP
  receiver then the variant's own pipeline, unprivileged (secrets stay ``${env:NAME}``); a
  ``LoadSimulationJob`` unless the load profile is ``none``; and the measurement wiring:
  a PodMonitor when the cluster serves that kind (Prometheus Operator), else a ConfigMap
  holding a Prometheus scrape config. Server-side apply, so a second deploy is a no-op.
- ``is_ready``: all three pipelines Running with readyNodes == totalNodes > 0.
- ``healthy``: all three still exist, none Failed, neither Degraded for longer than
  ``degraded_grace_s``, and the load job (if any) has not Failed; otherwise a
  ``PermanentError`` that names the variant and the operator's conditions. How long a
  pipeline has been Degraded is read from its ``Ready`` condition's ``lastTransitionTime``
  (the operator moves it only when Ready changes), so a restarted scheduler keeps counting.
- ``teardown``: delete every object ``deploy`` may have created (absent ones are fine),
  then wait up to ``teardown_wait_s`` for the pipelines to disappear, i.e. for the
  operator's finalizer to have removed their DaemonSets; still there → ``TemporaryError``
  (the scheduler tries again next tick).
- ``collect``: with a Prometheus URL, one row per variant per tick from what Prometheus
  scraped of the experiment's pods; without one, nothing (runtime info says so, and the
  analysis is then inconclusive: docs/kubernetes.md).

Every decision is read back from the cluster (or derived from the experiment), so a
restarted scheduler carries on where a killed one stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.analysis.analyzer import ExperimentAnalyzer
from core.domain.errors import PermanentError, PhoenixError, TemporaryError, ValidationError
from core.domain.experiment import Experiment
from core.domain.pipeline import Pipeline
from core.domain.samples import VARIANTS, MeasurementSample
from core.render import k8s_resources as res
from core.runtime.kube_api import KubeApi, Ref

log = logging.getLogger(__name__)

#: The pipeline phases (CRD status.phase) that end an experiment at once.
FAILED_PHASES = frozenset({"Failed"})
DEGRADED = "Degraded"
_POLL_S = 0.2


# ---------------------------------------------------------------- placement from settings


def parse_quantities(text: str, what: str) -> dict[str, str]:
    """``cpu=100m,memory=128Mi`` → ``{"cpu": "100m", "memory": "128Mi"}``."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValidationError(f"{what} must be NAME=QUANTITY pairs separated by commas, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def parse_tolerations(text: str) -> list[dict[str, Any]]:
    """``key=value:Effect`` (Equal), ``key:Effect`` or ``key`` (Exists), comma-separated."""
    effects = ("NoSchedule", "PreferNoSchedule", "NoExecute")
    out: list[dict[str, Any]] = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        body, _, effect = item.partition(":")
        if effect and effect not in effects:
            raise ValidationError(f"PHOENIX_K8S_TOLERATIONS: effect must be one of {', '.join(effects)}, got {effect!r}")
        key, sep, value = body.partition("=")
        tol: dict[str, Any] = {"key": key, "operator": "Equal" if sep else "Exists"}
        if sep:
            tol["value"] = value
        if effect:
            tol["effect"] = effect
        out.append(tol)
    return out


def check_image(image: str) -> str:
    """A pinned image: a tag that is not ``latest`` (or a digest)."""
    name, _, tag = image.rpartition(":")
    if "@sha256:" in image:
        return image
    if not name or "/" in tag or not tag or tag == "latest":
        raise PermanentError(f"PHOENIX_K8S_COLLECTOR_IMAGE must be pinned to a version tag, got {image!r}")
    return image


def placement_from(settings: Any, node_selector: Mapping[str, str] | None = None) -> res.CollectorPlacement:
    """Image, resources and tolerations from ``Settings``; the experiment's node selector on top of Linux nodes."""
    resources = {k: v for k, v in (("requests", parse_quantities(settings.k8s_requests, "PHOENIX_K8S_REQUESTS")),
                                   ("limits", parse_quantities(settings.k8s_limits, "PHOENIX_K8S_LIMITS"))) if v}  # fmt: skip
    return res.CollectorPlacement(
        image=check_image(settings.k8s_collector_image),
        # The process scraper reads /proc: Linux nodes only.
        node_selector={"kubernetes.io/os": "linux", **dict(node_selector or {})},
        tolerations=parse_tolerations(settings.k8s_tolerations),
        resources=resources,
    )


# ---------------------------------------------------------------- the deployer


@dataclass
class KubernetesDeployer:
    api: KubeApi
    #: experiment → {"baseline": Pipeline, "candidate": Pipeline}
    load_pipelines: Callable[[Experiment], dict[str, Pipeline]]
    placement: Callable[[Experiment], res.CollectorPlacement]
    default_namespace: str = "phoenix-experiments"
    #: a str, or a callable read at collection time (the Settings page may change it)
    prometheus_url: str | None | Callable[[], str | None] = None
    degraded_grace_s: float = 120.0
    teardown_wait_s: float = 20.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: the wall clock, compared with the operator's condition timestamps
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    dry_run: bool = False
    #: (experiment id, variant) → when this process first saw it Degraded: only for a pipeline
    #: whose status carries no Ready transition time (an operator that does not write one)
    _degraded_since: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    #: experiment id → the end of the last interval collected
    _collected_until: dict[str, datetime] = field(default_factory=dict, repr=False)
    _warned_no_prometheus: set[str] = field(default_factory=set, repr=False)

    # ------------------------------------------------------------ names

    def namespace(self, exp: Experiment) -> str:
        if exp.target.kind != "kubernetes":
            raise PermanentError(f"experiment {exp.id} targets {exp.target.describe()}; the Kubernetes runtime "
                                 "runs only kubernetes targets (create it with --target kubernetes)")  # fmt: skip
        return str((exp.runtime_info or {}).get("namespace") or exp.target.namespace or self.default_namespace)

    def _pipeline_refs(self, exp: Experiment, ns: str) -> dict[str, Ref]:
        """role (tap, baseline, candidate) → its PhoenixProcessPipeline."""
        return {r: Ref(res.API_VERSION, res.PIPELINE_KIND, res.PIPELINE_PLURAL, ns, res.pipeline_name(exp.id, r))
                for r in res.ROLES}  # fmt: skip

    def _load_ref(self, exp: Experiment, ns: str) -> Ref:
        return Ref(res.API_VERSION, res.LOAD_KIND, res.LOAD_PLURAL, ns, res.load_job_name(exp.id))

    def _all_refs(self, exp: Experiment, ns: str) -> list[Ref]:
        """Everything ``deploy`` may have created, whichever way it went."""
        name = res.scrape_name(exp.id)
        return [*self._pipeline_refs(exp, ns).values(), self._load_ref(exp, ns),
                Ref("v1", "ConfigMap", "configmaps", ns, name),
                Ref(f"{res.MONITORING_GROUP}/{res.MONITORING_VERSION}", "PodMonitor", res.PODMONITOR_PLURAL, ns, name)]

    # ------------------------------------------------------------ the port

    def objects(self, exp: Experiment) -> list[dict[str, Any]]:
        """What ``deploy`` applies, in order (pure apart from the PodMonitor probe)."""
        ns = self.namespace(exp)
        placement = self.placement(exp)
        pipelines = self.load_pipelines(exp)
        monitoring = f"{res.MONITORING_GROUP}/{res.MONITORING_VERSION}"
        try:
            return res.experiment_objects(exp, ns, pipelines, placement,
                                          use_pod_monitor=self.api.serves(monitoring, res.PODMONITOR_PLURAL, ns))
        except ValidationError as exc:
            raise PermanentError(str(exc)) from None

    def deploy(self, experiment: Experiment) -> dict[str, Any]:
        objs = self.objects(experiment)
        for obj in objs:
            self.api.apply(obj)
        ns = self.namespace(experiment)
        by_kind = {o["kind"]: o["metadata"]["name"] for o in objs if o["kind"] != res.PIPELINE_KIND}
        measurement = ("PodMonitor" if "PodMonitor" in by_kind else "ConfigMap")
        info: dict[str, Any] = {
            "runtime": "kubernetes",
            "dry_run": False,
            "namespace": ns,
            "collector": {"kind": "kubernetes", "image": objs[0]["spec"]["collectorImage"]},
            "pipelines": {r: res.pipeline_name(experiment.id, r) for r in res.ROLES},
            "load_job": by_kind.get(res.LOAD_KIND),
            "measurement": {"kind": measurement, "name": by_kind[measurement]},
            "created": [f"{o['kind']}/{o['metadata']['name']}" for o in objs],
        }
        if not self._prometheus_url():
            info["samples"] = ("none: no Prometheus URL is configured (PHOENIX_PROMETHEUS_URL or Settings), so "
                               "Phoenix records no measurements and the verdict will be inconclusive")  # fmt: skip
        return info

    def _pipelines(self, exp: Experiment) -> dict[str, dict[str, Any] | None]:
        ns = self.namespace(exp)
        return {v: self.api.get(ref) for v, ref in self._pipeline_refs(exp, ns).items()}

    @staticmethod
    def _ready(obj: dict[str, Any] | None) -> bool:
        status = (obj or {}).get("status") or {}
        ready, total = status.get("readyNodes"), status.get("totalNodes")
        return status.get("phase") == "Running" and isinstance(total, int) and total > 0 and ready == total

    def is_ready(self, experiment: Experiment) -> bool:
        return all(self._ready(obj) for obj in self._pipelines(experiment).values())

    def healthy(self, experiment: Experiment) -> bool:
        """True while the tap and both variants run as deployed. One that is gone, Failed, or Degraded
        past the grace, and a load job that Failed, raise ``PermanentError`` saying which and
        why (the scheduler fails the experiment with that reason)."""
        now = self.clock()
        for v, obj in self._pipelines(experiment).items():
            key = (experiment.id, v)
            if obj is None or obj.get("metadata", {}).get("deletionTimestamp"):
                raise PermanentError(f"the {v} PhoenixProcessPipeline {res.pipeline_name(experiment.id, v)} "
                                     "was deleted while the experiment ran")  # fmt: skip
            phase = (obj.get("status") or {}).get("phase")
            if phase in FAILED_PHASES:
                raise PermanentError(f"the {v} collectors failed: {_conditions(obj)}")
            if phase == DEGRADED:
                if self._degraded_for(key, obj, now) > self.degraded_grace_s:
                    raise PermanentError(f"the {v} collectors are degraded for over {self.degraded_grace_s:g}s: "
                                         f"{_conditions(obj)}")  # fmt: skip
            else:
                self._degraded_since.pop(key, None)
        if experiment.load.name != "none":
            ns = self.namespace(experiment)
            job = self.api.get(Ref(res.API_VERSION, res.LOAD_KIND, res.LOAD_PLURAL, ns, res.load_job_name(experiment.id)))
            # Measuring without the load it asked for would compare the wrong thing.
            if job is not None and (job.get("status") or {}).get("phase") == "Failed":
                raise PermanentError(f"the load simulation {res.load_job_name(experiment.id)} failed: {_conditions(job)}")
        return True

    def _degraded_for(self, key: tuple[str, str], obj: dict[str, Any], now: float) -> float:
        """Seconds the pipeline has been Degraded: since its Ready condition turned False (the
        operator's timestamp, which outlives this process), else since this process first saw it."""
        since = _not_ready_since(obj)
        if since is None:
            return now - self._degraded_since.setdefault(key, now)
        self._degraded_since.pop(key, None)
        # Clocks differ a little between the operator and here: a time ahead of ours counts as now.
        return max(0.0, (self.now() - since).total_seconds())

    def teardown(self, experiment: Experiment) -> None:
        ns = self.namespace(experiment)
        for ref in self._all_refs(experiment, ns):
            try:
                self.api.delete(ref)
            except PermanentError as exc:
                # A kind this cluster does not serve (the PodMonitor without the Prometheus
                # Operator) has nothing to delete; any other refusal is real.
                if ref.kind != "PodMonitor":
                    raise
                log.debug("experiment %s: %s", experiment.id, exc)
        for k in [k for k in self._degraded_since if k[0] == experiment.id]:
            del self._degraded_since[k]
        self._collected_until.pop(experiment.id, None)
        waiting = [*self._pipeline_refs(experiment, ns).values(), self._load_ref(experiment, ns)]
        deadline = self.clock() + self.teardown_wait_s
        while True:
            left = [ref for ref in waiting if self.api.get(ref) is not None]
            if not left:
                return
            if self.clock() >= deadline:
                raise TemporaryError(f"still waiting for the operator to finalize {', '.join(map(str, left))}")
            self.sleep(_POLL_S)

    # ------------------------------------------------------------ measurements

    def _prometheus_url(self) -> str | None:
        try:
            url = self.prometheus_url() if callable(self.prometheus_url) else self.prometheus_url
        except PhoenixError as exc:  # a broken saved setting must not stop the collectors' experiment
            log.warning("the Prometheus URL setting cannot be used: %s", exc)
            return None
        return url or None

    def collect(self, experiment: Experiment) -> Sequence[MeasurementSample]:
        url = self._prometheus_url()
        if not url:
            if experiment.id not in self._warned_no_prometheus:
                self._warned_no_prometheus.add(experiment.id)
                log.warning("experiment %s: no Prometheus URL is configured; the Kubernetes runtime records "
                            "no measurements and the verdict will be inconclusive", experiment.id)  # fmt: skip
            return []
        now = datetime.now(UTC)
        last = self._collected_until.get(experiment.id) or experiment.started_at
        if last is not None and (now - last).total_seconds() < experiment.timing.interval_s:
            return []  # one row per variant per interval, whatever the tick rate
        from core.analysis.prometheus_reader import PrometheusReader

        try:
            rows = PrometheusReader(url).read_current(experiment.id, experiment.timing.interval_s, now)
        except PhoenixError as exc:
            log.warning("experiment %s: %s", experiment.id, exc)
            return []
        self._collected_until[experiment.id] = now
        return [MeasurementSample(
            experiment_id=experiment.id, variant=r["variant"], t=now, series=int(r.get("series") or 0),
            datapoints=int(r.get("datapoints") or 0), bytes=0, collector_cpu_pct=r.get("collector_cpu_pct"),
            collector_rss_mb=r.get("collector_rss_mb"),
        ) for r in rows]  # fmt: skip


def _not_ready_since(obj: dict[str, Any]) -> datetime | None:
    """When the pipeline's Ready condition last turned False (None: not reported, or not False)."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready" and cond.get("status") == "False":
            try:
                since = datetime.fromisoformat(str(cond.get("lastTransitionTime")))
            except ValueError:
                return None
            return since if since.tzinfo else since.replace(tzinfo=UTC)
    return None


def _conditions(obj: dict[str, Any]) -> str:
    conds = (obj.get("status") or {}).get("conditions") or []
    return "; ".join(f"{c.get('type')}={c.get('status')} {c.get('reason') or ''} {c.get('message') or ''}".strip()
                     for c in conds if isinstance(c, dict)) or "no conditions reported"  # fmt: skip


# ---------------------------------------------------------------- analysis


class KubernetesAnalyzer(ExperimentAnalyzer):
    """The usual analysis; an experiment with no measurements because no Prometheus is
    configured is INCONCLUSIVE with that reason, not a failure (nothing went wrong in it)."""

    def analyze(self, experiment: Experiment, samples: Sequence[MeasurementSample]) -> dict[str, Any]:
        url = self.prometheus_url() if callable(self.prometheus_url) else self.prometheus_url
        if not samples and not url:
            return {"verdict": "INCONCLUSIVE", "source": "none", "samples": {v: 0 for v in VARIANTS},
                    "reasons": ["no measurements: the Kubernetes runtime reads them from Prometheus, and no "
                                "Prometheus URL is configured (PHOENIX_PROMETHEUS_URL or Settings); see "
                                "docs/kubernetes.md"]}  # fmt: skip
        return super().analyze(experiment, samples)


# ---------------------------------------------------------------- wiring


def kubernetes_runtime(settings: Any) -> tuple[KubernetesDeployer, Any]:
    """``(Deployer, Analyzer)`` for ``PHOENIX_RUNTIME=kubernetes`` (registered in ``core.bootstrap``).

    Builds no connection: the kubeconfig (``PHOENIX_KUBECONFIG``, in-cluster, or the
    default) is read on the first API call, so a bad one fails that experiment clearly.
    """
    from core.analysis.analyzer import default_prices
    from core.runtime.kube_api import KubeClient, load_api_client
    from core.store.refs import load_pipeline

    holder: list[Any] = []

    def uow() -> Any:  # the engine is made on first use: building a runtime does no I/O
        if not holder:
            from core.store.uow import Database

            holder.append(Database(settings.database_url))
        return holder[0].uow()

    def pipelines(exp: Experiment) -> dict[str, Pipeline]:
        return {v: load_pipeline(str(getattr(exp, v)), uow()) for v in VARIANTS}

    api = KubeClient(lambda: load_api_client(settings.kubeconfig, settings.kube_context))
    deployer = KubernetesDeployer(
        api=api, load_pipelines=pipelines,
        placement=lambda exp: placement_from(settings, exp.target.node_selector),
        default_namespace=settings.k8s_namespace, prometheus_url=settings.prometheus_url,
        degraded_grace_s=settings.k8s_degraded_grace_s, teardown_wait_s=settings.k8s_teardown_wait_s,
    )  # fmt: skip
    return deployer, KubernetesAnalyzer(prices=default_prices, prometheus_url=settings.prometheus_url)
