"""Start the operator: credentials, a reachability check, kopf's settings, then kopf itself.

Credentials: ``--kubeconfig PATH`` when given; otherwise the pod's service account when in a
cluster, then ``KUBECONFIG`` / ``~/.kube/config`` (what kubectl does). One loader serves both
the kubernetes client the handlers use and kopf's own watch connections (its login handler),
so they always act as the same identity; a kubeconfig with a static bearer token works like
any other. Problems at start are one clear line (``OperatorStartError``), never a traceback.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.domain.errors import PhoenixError

log = logging.getLogger(__name__)

#: kopf's finalizer and annotation prefix on the custom resources.
FINALIZER = "phoenix.io/operator"
ANNOTATION_PREFIX = "phoenix.io"


class OperatorStartError(PhoenixError):
    """The operator cannot start: no credentials, an unreadable kubeconfig, an unreachable server."""


@dataclass(frozen=True)
class Options:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    kubeconfig: str | None = None
    loadsim_image: str = "phoenix:dev"
    liveness_endpoint: str | None = None


def load_configuration(kubeconfig: str | None) -> tuple[Any, str]:
    """A kubernetes client ``Configuration`` and where it came from."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if kubeconfig:
        if not os.path.isfile(kubeconfig):
            raise OperatorStartError(f"kubeconfig {kubeconfig} does not exist")
        try:
            config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        except OSError as exc:
            raise OperatorStartError(f"cannot read kubeconfig {kubeconfig}: {exc.strerror or exc}") from None
        except (config.ConfigException, ValueError, TypeError, KeyError) as exc:
            raise OperatorStartError(f"kubeconfig {kubeconfig} is not usable: {_first_line(exc)}") from None
        return cfg, f"kubeconfig {kubeconfig}"
    try:
        config.load_incluster_config(client_configuration=cfg)
        return cfg, "the pod's service account"
    except config.ConfigException:
        pass
    try:
        config.load_kube_config(client_configuration=cfg)
    except (config.ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        raise OperatorStartError(
            "no Kubernetes credentials: not running in a cluster, and no usable kubeconfig "
            f"(--kubeconfig PATH, $KUBECONFIG or ~/.kube/config): {_first_line(exc)}") from None
    return cfg, "the default kubeconfig"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def connection_info(cfg: Any) -> Any:
    """kopf's ``ConnectionInfo`` for a kubernetes client ``Configuration`` (as kopf's own
    ``login_via_client`` derives it, but from our configuration rather than the global one)."""
    import kopf

    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else ((None, parts[0]) if len(parts) == 1 else (parts[0], parts[1]))
    return kopf.ConnectionInfo(
        server=cfg.host, ca_path=cfg.ssl_ca_cert, insecure=not cfg.verify_ssl,
        username=cfg.username or None, password=cfg.password or None, scheme=scheme, token=token,
        certificate_path=cfg.cert_file, private_key_path=cfg.key_file,
    )


def check_reachable(cfg: Any) -> str:
    """The API server's version; ``OperatorStartError`` when it does not answer or refuses us."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from core.redact import mask_url

    probe = copy.copy(cfg)  # the probe alone gives up quickly
    probe.retries = 0
    where = mask_url(str(cfg.host))
    try:
        with client.ApiClient(probe) as api:
            info = client.VersionApi(api).get_code(_request_timeout=(5.0, 10.0))
    except ApiException as exc:
        raise OperatorStartError(f"the Kubernetes API server at {where} refused the operator: "
                                 f"{exc.status} {exc.reason}") from None
    except (HTTPError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise OperatorStartError(f"cannot reach the Kubernetes API server at {where}: {_first_line(reason)}") from None
    return str(info.git_version)


def check_crds(api_client: Any) -> None:
    """``OperatorStartError`` unless both custom resources are served (kopf serves what exists at start)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from core.operator.desired import GROUP, LOADSIM_PLURAL, PIPELINE_PLURAL, VERSION

    try:
        found = client.CustomObjectsApi(api_client).get_api_resources(GROUP, VERSION, _request_timeout=(5.0, 10.0))
        names = {r.name for r in found.resources}
    except ApiException as exc:
        if exc.status != 404:
            raise OperatorStartError(f"cannot list the {GROUP}/{VERSION} API: {exc.status} {exc.reason}") from None
        names = set()
    except (HTTPError, OSError) as exc:
        raise OperatorStartError(f"cannot list the {GROUP}/{VERSION} API: {_first_line(exc)}") from None
    missing = sorted({PIPELINE_PLURAL, LOADSIM_PLURAL} - names)
    if missing:
        raise OperatorStartError(f"the Phoenix CRDs are not installed ({', '.join(missing)} missing): "
                                 "apply core/k8s/crds (k8s/crds) first")


class KopfLogFields(logging.Filter):
    """kopf's per-object loggers attach their settings object (threads, queues) and a posting flag
    to every record; a JSON line keeps only the object reference (``k8s_ref``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        import kopf

        if isinstance(record.__dict__.get("settings"), kopf.OperatorSettings):
            del record.__dict__["settings"]
        record.__dict__.pop("k8s_skip", None)
        return True


def configure_logs() -> None:
    """Phoenix's log handlers drop kopf's extra fields; library warnings become log lines (once each)."""
    import warnings

    for handler in logging.getLogger().handlers:
        if getattr(handler, "_phoenix", False) and not any(isinstance(f, KopfLogFields) for f in handler.filters):
            handler.addFilter(KopfLogFields())
    logging.captureWarnings(True)
    # e.g. urllib3's InsecureRequestWarning on every call with insecure-skip-tls-verify: once is enough
    warnings.filterwarnings("once", module="urllib3")


def settings() -> Any:
    import kopf

    s = kopf.OperatorSettings()
    s.peering.standalone = True  # one operator replica; no peering resources to install or grant
    # Serve the resources found at start (``check_crds`` makes sure they are there) instead of
    # watching every CRD and namespace in the cluster: that would need list/watch on both.
    s.scanning.disabled = True
    s.posting.level = logging.WARNING  # Events for refusals and failures, not for every success
    s.persistence.finalizer = FINALIZER
    s.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    # The last handled spec carries spec.config (up to 256 KiB): more than the 256 KiB all of an
    # object's annotations may hold together, so it lives in status.kopf (the CRDs allow it).
    s.persistence.diffbase_storage = kopf.StatusDiffBaseStorage()
    s.watching.server_timeout = 300  # re-list every 5 minutes at the latest
    s.watching.client_timeout = 330
    s.networking.request_timeout = 60
    s.execution.max_workers = 8  # sync handlers run in threads; a burst of 100 experiments queues
    return s


def run(opts: Options, *, stop_flag: Any = None) -> None:
    """Run until SIGTERM/SIGINT (kopf handles both) or ``stop_flag``."""
    import kopf
    from kubernetes import client

    from core.operator.cluster import KubeCluster
    from core.operator.handlers import Context, build_registry

    configure_logs()
    cfg, source = load_configuration(opts.kubeconfig)
    version = check_reachable(cfg)
    api_client = client.ApiClient(cfg)
    check_crds(api_client)
    registry = build_registry(Context(cluster=KubeCluster(api_client), loadsim_image=opts.loadsim_image))

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> Any:
        # Read again on every (re-)login: a service account's token file is rotated.
        fresh, _source = load_configuration(opts.kubeconfig)
        return connection_info(fresh)

    scope = ", ".join(opts.namespaces) if opts.namespaces else "all namespaces"
    log.info("operator starting: API server %s (%s), watching %s", version, source, scope)
    try:
        kopf.run(registry=registry, settings=settings(), standalone=True, clusterwide=not opts.namespaces,
                 namespaces=list(opts.namespaces), liveness_endpoint=opts.liveness_endpoint, stop_flag=stop_flag)
    finally:
        api_client.close()


def namespaces_from(flags: Sequence[str] | None, all_namespaces: bool) -> tuple[str, ...]:
    from core.domain.errors import ValidationError
    from core.render.k8s import dns_name

    given = tuple(dict.fromkeys(flags or ()))
    if given and all_namespaces:
        raise ValidationError("give --namespace or --all-namespaces, not both")
    bad = [n for n in given if dns_name(n) != n]
    if bad:
        raise ValidationError(f"not a namespace name: {bad[0][:64]!r}")
    return given
