"""The operator's port to the API server, and its adapter over the official kubernetes client.

Objects are plain dicts in and out (as the API serves them), so the reconcile steps and their
tests never see client model classes. Every API failure becomes a ``ClusterError`` that says
whether retrying can help (5xx, 429, 409 conflicts, timeouts, a missing permission that an
administrator may still grant) or not (the server refused the object as invalid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final, Protocol

from core.operator.desired import GROUP, MANAGER, VERSION

KINDS: Final = ("ConfigMap", "DaemonSet", "Job", "Service")
#: (connect, read) seconds for one API call: a hung server must not hang a handler.
TIMEOUT: Final = (5.0, 30.0)


class ClusterError(Exception):
    """An API call failed. ``retryable``: a later try may succeed; ``delay``: when to retry."""

    def __init__(self, message: str, *, retryable: bool, delay: float = 5.0, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.delay = delay
        self.status = status


class Cluster(Protocol):
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def create_if_absent(self, obj: dict[str, Any]) -> bool: ...

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def delete(self, kind: str, namespace: str, name: str) -> None: ...

    def list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    def node_names(self, selector: str) -> list[str]: ...

    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None: ...


def _describe(exc: Exception) -> ClusterError:
    """A ClusterError for a client exception, with the server's own message (never credentials)."""
    import json

    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        message = exc.reason or ""
        with suppress(ValueError, AttributeError):  # a body that is not a Status object
            message = json.loads(exc.body or "{}").get("message") or message
        text = f"API server answered {status}: {message}"
        if status in (409, 429) or status >= 500:
            return ClusterError(text, retryable=True, delay=2.0 if status == 409 else 10.0, status=status)
        if status in (401, 403):  # RBAC or credentials may be fixed without touching the resource
            return ClusterError(text, retryable=True, delay=30.0, status=status)
        return ClusterError(text, retryable=False, status=status)
    # urllib3 timeouts, refused connections, TLS errors: the server may come back.
    return ClusterError(f"API server unreachable: {type(exc).__name__}", retryable=True, delay=10.0)


@contextmanager
def api_errors() -> Iterator[None]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except (ApiException, HTTPError, OSError) as exc:
        raise _describe(exc) from None


class KubeCluster:
    """``Cluster`` over kubernetes.client (server-side apply with the operator's field manager)."""

    def __init__(self, api_client: Any):
        from kubernetes import client

        self._client = api_client
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    def _plain(self, obj: Any) -> dict[str, Any]:
        data: dict[str, Any] = self._client.sanitize_for_serialization(obj)
        return data

    def _ops(self, kind: str) -> tuple[Callable[..., Any], ...]:
        """(read, create, patch, delete, list) for a kind the operator owns."""
        if kind == "ConfigMap":
            a: Any = self._core
            return (a.read_namespaced_config_map, a.create_namespaced_config_map, a.patch_namespaced_config_map,
                    a.delete_namespaced_config_map, a.list_namespaced_config_map)
        if kind == "DaemonSet":
            a = self._apps
            return (a.read_namespaced_daemon_set, a.create_namespaced_daemon_set, a.patch_namespaced_daemon_set,
                    a.delete_namespaced_daemon_set, a.list_namespaced_daemon_set)
        if kind == "Service":
            a = self._core
            return (a.read_namespaced_service, a.create_namespaced_service, a.patch_namespaced_service,
                    a.delete_namespaced_service, a.list_namespaced_service)
        if kind == "Job":
            a = self._batch
            return (a.read_namespaced_job, a.create_namespaced_job, a.patch_namespaced_job,
                    a.delete_namespaced_job, a.list_namespaced_job)
        raise ValueError(f"the operator does not manage {kind}")

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        _, _, patch, _, _ = self._ops(obj["kind"])
        meta = obj["metadata"]
        with api_errors():
            # Server-side apply: the whole desired object, idempotent, and the operator owns
            # exactly the fields it sets (force: it takes them over from an earlier kubectl apply).
            out = patch(meta["name"], meta["namespace"], obj, field_manager=MANAGER, force=True,
                        _content_type="application/apply-patch+yaml", _request_timeout=TIMEOUT)
        return self._plain(out)

    def create_if_absent(self, obj: dict[str, Any]) -> bool:
        _, create, _, _, _ = self._ops(obj["kind"])
        try:
            with api_errors():
                create(obj["metadata"]["namespace"], obj, field_manager=MANAGER, _request_timeout=TIMEOUT)
        except ClusterError as exc:
            if exc.status == 409:  # already there: a Job's template is immutable, leave it be
                return False
            raise
        return True

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        read, _, _, _, _ = self._ops(kind)
        try:
            with api_errors():
                return self._plain(read(name, namespace, _request_timeout=TIMEOUT))
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def delete(self, kind: str, namespace: str, name: str) -> None:
        _, _, _, delete, _ = self._ops(kind)
        try:
            with api_errors():
                # Background: the object goes now; its own dependents (a Job's pods) are the
                # garbage collector's. Foreground would wait on a collector that may not run.
                delete(name, namespace, propagation_policy="Background", _request_timeout=TIMEOUT)
        except ClusterError as exc:
            if exc.status != 404:
                raise

    def list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        _, _, _, _, list_ = self._ops(kind)
        with api_errors():
            items = list_(namespace, label_selector=selector, _request_timeout=TIMEOUT).items
        return [self._plain(i) for i in items]

    def node_names(self, selector: str) -> list[str]:
        with api_errors():
            nodes = self._core.list_node(label_selector=selector, _request_timeout=TIMEOUT).items
        return sorted(n.metadata.name for n in nodes)

    def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            with api_errors():
                obj: dict[str, Any] = self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, name, _request_timeout=TIMEOUT)
                return obj
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            with api_errors():
                self._custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, plural, name, {"status": status},
                    _content_type="application/merge-patch+json", _request_timeout=TIMEOUT)
        except ClusterError as exc:
            if exc.status != 404:  # a resource deleted meanwhile has no status to keep
                raise
