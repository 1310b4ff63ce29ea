"""A real Kubernetes API server for the suite, envtest style: etcd + kube-apiserver, nothing else.

Both are built from their Go modules (``tools/go/etcd``, ``tools/go/kube-apiserver``) by
``scripts/gotool.sh`` into a cache outside the work tree; ``make test`` builds them before
pytest, and this module builds one that is missing (a few minutes), never skips.

What runs and what does not:
  * etcd on loopback (``--unsafe-no-fsync``: a throwaway store) and kube-apiserver with RBAC
    authorization and client-certificate authentication against a CA made per session.
  * No kubelet, scheduler or controller-manager: pods never start, a DaemonSet's or Job's
    status changes only when a test patches it (``set_daemonset_ready``, ``set_job_status``,
    as a kubelet and the controllers would), owned objects are not garbage-collected and a
    deleted namespace stays Terminating. Tests therefore verify cleanup through deletes and
    finalizers, and use a fresh namespace each (``namespace()``).

Identities: ``kubeconfig`` is an admin (group ``system:masters``); ``kubeconfig_for(user,
groups)`` signs a client certificate for any user name, so a ServiceAccount's RBAC is
tested as ``system:serviceaccount:NS:NAME`` (the name RBAC matches a ServiceAccount
subject by).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CRD_DIR = REPO / "core" / "k8s" / "crds"
START_TIMEOUT_S = 90.0


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 20.0, poll_s: float = 0.1,
             explain: Callable[[], str] | None = None) -> Any:
    """Poll ``check`` until it returns something truthy (no kubelet or controllers run here, so
    every change a test waits for comes from a process it started); fail naming ``what``, with
    ``explain()`` (the state that was not reached, a log's tail) when given."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = ""
            if explain is not None:
                try:
                    detail = "\n" + explain()
                except Exception as exc:  # noqa: BLE001 (the timeout is the failure to report)
                    detail = f"\n(could not explain: {exc!r})"
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}{detail}")
        time.sleep(poll_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gotool(name: str) -> str:
    """The cached binary's path, building it first when this machine has none yet."""
    out = subprocess.run([str(REPO / "scripts" / "gotool.sh"), name], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"cannot build {name} for the test API server:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class KubeCluster:
    """etcd + kube-apiserver in ``workdir``; ``start()``, then ``stop()``."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.pki = workdir / "pki"
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._clients: dict[str, Any] = {}
        self.kubeconfig = self.dir / "admin.kubeconfig"

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> KubeCluster:
        etcd_bin, apiserver_bin = gotool("etcd"), gotool("kube-apiserver")
        self.pki.mkdir(parents=True, exist_ok=True)
        self._make_pki()
        etcd_port, peer_port = free_port(), free_port()
        etcd_log = open(self.dir / "etcd.log", "wb")  # noqa: SIM115 - closed with the process
        self._procs.append(subprocess.Popen(
            [etcd_bin, "--data-dir", str(self.dir / "etcd"), "--name", "phoenix-test",
             "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
             "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
             "--initial-cluster", f"phoenix-test=http://127.0.0.1:{peer_port}",
             "--unsafe-no-fsync", "--log-level", "warn"],
            stdout=etcd_log, stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
        api_log = open(self.dir / "kube-apiserver.log", "wb")  # noqa: SIM115 - closed with the process
        p = self.pki
        self._procs.append(subprocess.Popen(
            [apiserver_bin, f"--etcd-servers=http://127.0.0.1:{etcd_port}",
             "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
             f"--tls-cert-file={p / 'serving.crt'}", f"--tls-private-key-file={p / 'serving.key'}",
             f"--client-ca-file={p / 'ca.crt'}", "--authorization-mode=RBAC",
             f"--service-account-key-file={p / 'sa.key'}", f"--service-account-signing-key-file={p / 'sa.key'}",
             "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
             "--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
             "--enable-priority-and-fairness=false", "--profiling=false", "-v=1",
             # no Endpoints for the kubernetes Service: its reconciler refuses a loopback address
             "--endpoint-reconciler-type=none",
             # as on clusters that enforce it: setting blockOwnerDeletion needs `update` on the
             # owner's finalizers, so the operator's RBAC is tested for it
             "--enable-admission-plugins=OwnerReferencesPermissionEnforcement"],
            stdout=api_log, stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip
        self._write_kubeconfig(self.kubeconfig, "admin", ["system:masters"])
        self._wait_ready()
        return self

    def stop(self) -> None:
        # Throwaway state: SIGKILL rather than the API server's graceful shutdown (~10 s).
        for proc in reversed(self._procs):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        self._procs.clear()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        tls = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        stem = self.kubeconfig.with_suffix("")
        tls.load_cert_chain(f"{stem}.crt", f"{stem}.key")
        last = "no answer"
        while time.monotonic() < deadline:
            for proc in self._procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", context=tls, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.HTTPError) as exc:  # still starting; reported on timeout
                last = str(exc)[:300]
            time.sleep(0.3)
        raise RuntimeError(f"kube-apiserver not ready after {START_TIMEOUT_S:.0f} s ({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("etcd.log", "kube-apiserver.log"):
            path = self.dir / name
            if path.exists():
                text += f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    # ---- identities ------------------------------------------------------------------------
    def _make_pki(self) -> None:
        p = self.pki
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(p / "ca.key"), "-out", str(p / "ca.crt"),
                 "-days", "2", "-subj", "/CN=phoenix-test-ca")  # fmt: skip
        (p / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(p / "serving.key"), "-out", str(p / "serving.csr"),
                 "-subj", "/CN=kube-apiserver")  # fmt: skip
        _openssl("x509", "-req", "-in", str(p / "serving.csr"), "-CA", str(p / "ca.crt"), "-CAkey", str(p / "ca.key"),
                 "-CAcreateserial", "-days", "2", "-extfile", str(p / "san.ext"), "-out", str(p / "serving.crt"))  # fmt: skip
        _openssl("genrsa", "-out", str(p / "sa.key"), "2048")

    def kubeconfig_for(self, username: str, groups: list[str] | None = None) -> Path:
        """A kubeconfig whose client certificate names ``username`` (CN) and ``groups`` (O)."""
        slug = "".join(c if c.isalnum() else "-" for c in username)[:60] + "-" + uuid.uuid4().hex[:6]
        path = self.dir / f"{slug}.kubeconfig"
        self._write_kubeconfig(path, username, groups or [])
        return path

    def _write_kubeconfig(self, path: Path, username: str, groups: list[str]) -> None:
        stem = path.with_suffix("")
        key, csr, crt = (Path(f"{stem}.{ext}") for ext in ("key", "csr", "crt"))
        subject = f"/CN={username}" + "".join(f"/O={g}" for g in groups)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subject)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.pki / "ca.crt"), "-CAkey", str(self.pki / "ca.key"),
                 "-CAcreateserial", "-days", "2", "-out", str(crt))  # fmt: skip
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url,
                                                      "certificate-authority": str(self.pki / "ca.crt")}}],
            "users": [{"name": username, "user": {"client-certificate": str(crt), "client-key": str(key)}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": username}}],
        }  # fmt: skip
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for a kubeconfig (the admin's by default)."""
        from kubernetes import config

        path = str(kubeconfig or self.kubeconfig)
        if path not in self._clients:
            self._clients[path] = config.new_client_from_config(config_file=path)
        return self._clients[path]

    def bind_role_file(self, path: Path, namespace: str) -> Path:
        """Create the Role and RoleBinding of a shipped RBAC file in ``namespace``; return a
        kubeconfig of the ServiceAccount the binding names (its groups included), so a test
        acts with exactly the rights the file grants."""
        from kubernetes import client

        rbac = client.RbacAuthorizationV1Api(self.api_client())
        subject = None
        for doc in yaml.safe_load_all(path.read_text()):
            doc["metadata"]["namespace"] = namespace
            if doc["kind"] == "Role":
                rbac.create_namespaced_role(namespace, doc)
            else:
                (subject,) = doc["subjects"]
                rbac.create_namespaced_role_binding(namespace, doc)
        assert subject is not None and subject["kind"] == "ServiceAccount", f"{path}: no ServiceAccount bound"
        sa_ns = subject["namespace"]
        return Path(self.kubeconfig_for(f"system:serviceaccount:{sa_ns}:{subject['name']}",
                                        ["system:serviceaccounts", f"system:serviceaccounts:{sa_ns}"]))

    def wait_until_allowed(self, kubeconfig: Path, *, verb: str, resource: str, group: str = "",
                           namespace: str | None = None, within_s: float = 15.0) -> None:
        """Block until RBAC grants the kubeconfig's identity the action: the authorizer reads
        bindings from an informer cache, so a new binding takes effect within moments, not at once."""
        from kubernetes import client

        authz = client.AuthorizationV1Api(self.api_client(kubeconfig))
        attributes = {"verb": verb, "resource": resource, "group": group, "namespace": namespace}
        deadline = time.monotonic() + within_s
        while not authz.create_self_subject_access_review({"spec": {"resourceAttributes": attributes}}).status.allowed:
            if time.monotonic() > deadline:
                raise AssertionError(f"RBAC never allowed {verb} {resource} ({group or 'core'}) in {namespace}")
            time.sleep(0.1)

    # ---- objects ---------------------------------------------------------------------------
    def apply_crds(self) -> None:
        """Install (or update) the Phoenix CRDs and wait until each is Established."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        ext = client.ApiextensionsV1Api(self.api_client())
        names = []
        for path in sorted(CRD_DIR.glob("*.yaml")):
            body = yaml.safe_load(path.read_text())
            names.append(body["metadata"]["name"])
            try:
                ext.create_custom_resource_definition(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                current = ext.read_custom_resource_definition(body["metadata"]["name"])
                body["metadata"]["resourceVersion"] = current.metadata.resource_version
                ext.replace_custom_resource_definition(body["metadata"]["name"], body)
        deadline = time.monotonic() + 30
        for name in names:
            while True:
                crd = ext.read_custom_resource_definition(name)
                conditions = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
                if conditions.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} not Established: {conditions}")
                time.sleep(0.1)

    def namespace(self, prefix: str = "t") -> str:
        from kubernetes import client

        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        client.CoreV1Api(self.api_client()).create_namespace({"metadata": {"name": name}})
        return name

    def set_daemonset_ready(self, namespace: str, name: str, ready: int, desired: int) -> None:
        """Patch a DaemonSet's status as its controller and the kubelets would report it."""
        from kubernetes import client

        apps = client.AppsV1Api(self.api_client())
        ds = apps.read_namespaced_daemon_set(name, namespace)
        status = {"currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberMisscheduled": 0,
                  "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": desired,
                  "numberUnavailable": desired - ready, "observedGeneration": ds.metadata.generation}  # fmt: skip
        apps.patch_namespaced_daemon_set_status(name, namespace, {"status": status})

    def set_job_status(self, namespace: str, name: str, *, active: int = 0, succeeded: int = 0,
                       failed: int = 0) -> None:
        """Patch a Job's status as the job controller would (a finished Job gets its condition,
        with the start and completion times the API server requires beside it)."""
        from kubernetes import client

        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status: dict[str, Any] = {"active": active, "succeeded": succeeded, "failed": failed, "startTime": now,
                                  "ready": active, "terminating": 0}  # fmt: skip
        batch = client.BatchV1Api(self.api_client())
        job = batch.read_namespaced_job(name, namespace)
        if job.status and job.status.start_time:  # immutable once set: a second report keeps it
            del status["startTime"]
        completions = job.spec.completions or 1
        if succeeded >= completions:
            status["completionTime"] = now
            status["conditions"] = [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
                {"type": "Complete", "status": "True", "lastTransitionTime": now, "lastProbeTime": now}]
        elif failed and active == 0:
            status["conditions"] = [
                {"type": "FailureTarget", "status": "True", "lastTransitionTime": now, "lastProbeTime": now,
                 "reason": "BackoffLimitExceeded"},
                {"type": "Failed", "status": "True", "lastTransitionTime": now, "lastProbeTime": now,
                 "reason": "BackoffLimitExceeded"}]  # fmt: skip
        batch.patch_namespaced_job_status(name, namespace, {"status": status})


def cluster_env(cluster: KubeCluster, kubeconfig: Path | None = None) -> dict[str, str]:
    """Environment for a Phoenix child process talking to ``cluster`` (never the user's own)."""
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig or cluster.kubeconfig)
    env.pop("KUBERNETES_SERVICE_HOST", None)  # no in-cluster config here
    return env


@contextlib.contextmanager
def running_cluster(workdir: Path) -> Iterator[KubeCluster]:
    cluster = KubeCluster(workdir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
