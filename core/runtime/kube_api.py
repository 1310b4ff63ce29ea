"""The Kubernetes API as the runtime needs it: get, apply, delete, "is this kind served".

``KubeApi`` is the port (``core.runtime.kubernetes`` sees only it); ``KubeClient`` is the
adapter over the official client (``kubernetes``), and the unit tests use a recorded fake.
Objects are plain dicts (apiVersion, kind, metadata, spec) in and out.

``apply`` is server-side apply (field manager ``phoenix``, forced): one call creates the
object or brings the fields Phoenix owns back to what it asked for, so calling it twice
changes nothing. That is what makes ``deploy`` idempotent.

Errors follow the kopf split (``classify``): the API or the network being away (connection
refused, timeouts, 429, 5xx) is a ``TemporaryError`` the scheduler retries next tick; a
refusal that a retry cannot fix (401, 403, 400/422, a missing namespace) is a
``PermanentError`` whose message says what was refused. No message carries a token,
a kubeconfig's content or a request body.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.domain.errors import PermanentError, PhoenixError, TemporaryError

FIELD_MANAGER = "phoenix"
APPLY_PATCH = "application/apply-patch+yaml"
#: Anything shaped like a credential (bearer tokens, base64 keys) is cut from API messages.
_SECRETISH = re.compile(r"[A-Za-z0-9+/_=.-]{32,}")


@dataclass(frozen=True)
class Ref:
    """Which object: ``api_version`` ``v1`` for ConfigMaps, ``group/version`` for custom resources."""

    api_version: str
    kind: str
    plural: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Ref:
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], plural_of(obj["kind"]), meta["namespace"], meta["name"])

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


_PLURALS = {"ConfigMap": "configmaps", "PhoenixProcessPipeline": "phoenixprocesspipelines",
            "LoadSimulationJob": "loadsimulationjobs", "PodMonitor": "podmonitors"}  # fmt: skip


def plural_of(kind: str) -> str:
    try:
        return _PLURALS[kind]
    except KeyError:
        raise PermanentError(f"the Kubernetes runtime does not manage {kind} objects") from None


class KubeApi(Protocol):
    def get(self, ref: Ref) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        ...

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or update (server-side apply); returns the object (as stored when the API said)."""
        ...

    def delete(self, ref: Ref) -> bool:
        """Ask for deletion; False when it was already gone. Finalizers may keep it a while."""
        ...

    def serves(self, api_version: str, plural: str, namespace: str) -> bool:
        """Whether the cluster serves this kind (e.g. PodMonitor: the Prometheus Operator's CRD)."""
        ...


# ---------------------------------------------------------------- errors


def _api_message(exc: Any) -> str:
    """The API's own one-line reason (its Status ``message``), cut of anything secret-shaped."""
    msg = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            msg = str(json.loads(body).get("message") or "")
        except (ValueError, AttributeError):
            msg = ""
    msg = msg or str(getattr(exc, "reason", "") or "")
    return _SECRETISH.sub("…", msg)[:300]


#: What server-side apply says when the object does not fit the kind's schema (answered as 500).
_TYPED_PATCH = "failed to create typed patch object"


def classify(exc: BaseException, what: str) -> PhoenixError:
    """A client exception as Phoenix's temporary or permanent error; ``what`` names the call."""
    if isinstance(exc, PhoenixError):
        return exc
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason = _api_message(exc)
        if status == 500 and _TYPED_PATCH in reason:
            # Server-side apply answers 500 for an object its schema cannot type (an undeclared
            # field): the same object fails every retry, so it is the API's refusal, not an outage.
            return PermanentError(f"{what}: the Kubernetes API refused it (its schema): {reason}")
        if status == 0 or status in (408, 409, 429) or status >= 500:
            return TemporaryError(f"{what}: the Kubernetes API answered {status or 'nothing'} ({reason}); retrying")
        if status == 401:
            return PermanentError(f"{what}: the Kubernetes API did not accept Phoenix's credentials (401); "
                                  "check PHOENIX_KUBECONFIG or the pod's service account")
        if status == 403:
            return PermanentError(f"{what}: forbidden by RBAC (403): {reason}")
        return PermanentError(f"{what}: the Kubernetes API refused it ({status}): {reason}")
    # urllib3 (refused, reset, timeouts, TLS handshake) and socket errors: the API is away.
    import urllib3.exceptions

    if isinstance(exc, (urllib3.exceptions.HTTPError, OSError, TimeoutError)):
        return TemporaryError(f"{what}: cannot reach the Kubernetes API ({type(exc).__name__}); retrying")
    return PermanentError(f"{what}: {type(exc).__name__}")


# ---------------------------------------------------------------- connection


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """An ``ApiClient``: the given kubeconfig, else in-cluster (in a pod), else $KUBECONFIG or ~/.kube/config.

    Touches no global client configuration (tests and several runtimes may coexist).
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig:
            if not Path(kubeconfig).is_file():
                raise PermanentError(f"PHOENIX_KUBECONFIG {kubeconfig} is not a file")
            return config.new_client_from_config(config_file=kubeconfig, context=context, persist_config=False)
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not context:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
            return client.ApiClient(cfg)
        return config.new_client_from_config(context=context, persist_config=False)
    except PhoenixError:
        raise
    except (ConfigException, OSError, ValueError) as exc:
        # A missing certificate file or a malformed kubeconfig will not fix itself: permanent.
        # The loader's messages name files, contexts and fields; anything secret-shaped is cut.
        detail = _SECRETISH.sub("…", str(exc))[:200] or type(exc).__name__
        raise PermanentError(f"could not load the Kubernetes configuration: {detail}") from None


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


@dataclass
class KubeClient:
    """``KubeApi`` over the official client; the connection is made on first use."""

    connect: Callable[[], Any]
    timeout_s: float = 10.0
    _client: Any = field(default=None, repr=False)

    def _api(self) -> Any:
        if self._client is None:
            self._client = self.connect()
        return self._client

    @property
    def _timeout(self) -> tuple[float, float]:
        return (min(5.0, self.timeout_s), self.timeout_s)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - every client error becomes Phoenix's temporary/permanent one
            raise classify(exc, what) from None

    def get(self, ref: Ref) -> dict[str, Any] | None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        def read() -> dict[str, Any] | None:
            try:
                if ref.api_version == "v1":
                    cm = client.CoreV1Api(self._api()).read_namespaced_config_map(
                        ref.name, ref.namespace, _request_timeout=self._timeout)
                    return dict(self._api().sanitize_for_serialization(cm))
                group, version = _group_version(ref.api_version)
                return dict(client.CustomObjectsApi(self._api()).get_namespaced_custom_object(
                    group, version, ref.namespace, ref.plural, ref.name, _request_timeout=self._timeout))
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        return self._call(f"reading {ref}", read)  # type: ignore[no-any-return]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        from kubernetes import client

        ref = Ref.of(obj)
        kw = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY_PATCH,
              "_request_timeout": self._timeout}  # fmt: skip

        def apply() -> dict[str, Any]:
            if ref.api_version == "v1":
                cm = client.CoreV1Api(self._api()).patch_namespaced_config_map(ref.name, ref.namespace, obj, **kw)
                return dict(self._api().sanitize_for_serialization(cm)) if cm is not None else dict(obj)
            group, version = _group_version(ref.api_version)
            stored = client.CustomObjectsApi(self._api()).patch_namespaced_custom_object(
                group, version, ref.namespace, ref.plural, ref.name, obj, **kw)
            # The generated client decodes only a 200 answer; an apply that creates gets 201
            # (body discarded). Nothing here needs the stored copy, so the request stands in.
            return dict(stored) if isinstance(stored, dict) else dict(obj)

        return self._call(f"applying {ref}", apply)  # type: ignore[no-any-return]

    def delete(self, ref: Ref) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        def delete() -> bool:
            try:
                if ref.api_version == "v1":
                    client.CoreV1Api(self._api()).delete_namespaced_config_map(
                        ref.name, ref.namespace, _request_timeout=self._timeout)
                else:
                    group, version = _group_version(ref.api_version)
                    client.CustomObjectsApi(self._api()).delete_namespaced_custom_object(
                        group, version, ref.namespace, ref.plural, ref.name, _request_timeout=self._timeout)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

        return self._call(f"deleting {ref}", delete)  # type: ignore[no-any-return]

    def serves(self, api_version: str, plural: str, namespace: str) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        group, version = _group_version(api_version)

        def probe() -> bool:
            # A namespaced list (limit 1) rather than reading the CRD: needs no cluster-wide RBAC.
            try:
                client.CustomObjectsApi(self._api()).list_namespaced_custom_object(
                    group, version, namespace, plural, limit=1, _request_timeout=self._timeout)
            except ApiException as exc:
                # 404: not served. 403: Phoenix may not use it here, so it could not create one either.
                if exc.status in (403, 404):
                    return False
                raise
            return True

        return self._call(f"looking for {plural}.{group}", probe)  # type: ignore[no-any-return]
