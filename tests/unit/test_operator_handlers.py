"""kopf wiring: which errors retry and which are permanent, the registry, and the command's start-up errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import kopf
import pytest

from core.operator import handlers as h
from core.operator.cluster import ClusterError
from core.operator.desired import InvalidSpec
from tests.unit.operator_fixtures import FakeCluster, pipeline_cr

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture
def warned(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """kopf.warn posts through the running operator's queue; here it is recorded instead."""
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(kopf, "warn", lambda body, *, reason, message: seen.append((reason, message)))
    return seen


def ctx(cluster: FakeCluster) -> h.Context:
    return h.Context(cluster=cluster, loadsim_image="phoenix:dev", now=lambda: NOW)


def test_an_invalid_spec_is_permanent_with_its_reason_in_status_and_an_event(warned):
    cluster = FakeCluster()
    cr = cluster.add_custom("phoenixprocesspipelines", pipeline_cr())
    with pytest.raises(kopf.PermanentError, match="InvalidConfig: spec.config has no"), \
            h.outcome(ctx(cluster), "PhoenixProcessPipeline", "phoenixprocesspipelines", cr):
        raise InvalidSpec("InvalidConfig", "spec.config has no service.pipelines")
    assert warned == [("InvalidConfig", "spec.config has no service.pipelines")]
    assert cluster.customs[("phoenixprocesspipelines", "team-a", cr["metadata"]["name"])]["status"]["phase"] == "Failed"


@pytest.mark.parametrize(("status", "delay"), [(503, 10.0), (409, 2.0), (429, 10.0), (403, 30.0), (None, 10.0)])
def test_api_trouble_is_temporary_with_a_delay(warned, status, delay):
    cluster = FakeCluster()
    cr = cluster.add_custom("phoenixprocesspipelines", pipeline_cr())
    with pytest.raises(kopf.TemporaryError) as err, \
            h.outcome(ctx(cluster), "PhoenixProcessPipeline", "phoenixprocesspipelines", cr):
        raise ClusterError("API server answered", retryable=True, delay=delay, status=status)
    assert err.value.delay == delay and warned == []
    assert "status" not in cluster.customs[("phoenixprocesspipelines", "team-a", cr["metadata"]["name"])]


def test_an_object_the_server_refuses_is_permanent(warned):
    cluster = FakeCluster()
    cr = cluster.add_custom("phoenixprocesspipelines", pipeline_cr())
    with pytest.raises(kopf.PermanentError, match="Rejected"), \
            h.outcome(ctx(cluster), "PhoenixProcessPipeline", "phoenixprocesspipelines", cr):
        raise ClusterError("API server answered 422: spec.template.spec.containers[0].image: Required value",
                           retryable=False, status=422)
    assert warned[0][0] == "Rejected"


def test_the_client_errors_are_classified():
    from kubernetes.client.exceptions import ApiException

    from core.operator.cluster import _describe

    def api(status: int) -> ClusterError:
        exc = ApiException(status=status, reason="x")
        exc.body = '{"kind": "Status", "message": "daemonsets.apps \\"a\\" is forbidden"}'
        return _describe(exc)

    assert api(500).retryable and api(409).retryable and api(403).retryable
    assert not api(422).retryable and not api(400).retryable
    assert str(api(403)) == 'API server answered 403: daemonsets.apps "a" is forbidden'
    assert _describe(TimeoutError()).retryable


def test_the_registry_serves_both_resources_and_watches_the_children():
    registry = h.build_registry(ctx(FakeCluster()))
    changing = {(s.group, s.any_name or s.plural) for s in registry._changing.get_all_selectors()}
    assert changing == {("phoenix.io", "phoenixprocesspipelines"), ("phoenix.io", "loadsimulationjobs")}
    watching = {(s.group, s.any_name or s.plural) for s in registry._watching.get_all_selectors()}
    assert watching == {("apps", "daemonsets"), ("batch", "jobs")}
    assert {(s.group, s.any_name or s.plural) for s in registry._spawning.get_all_selectors()} == changing  # the resync timers


def run_cli(*args: str) -> int:
    from core.cli import main

    return main(["operator", *args])


def test_no_credentials_is_one_line_not_a_traceback(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert run_cli() == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no Kubernetes credentials") and "Traceback" not in err
    assert run_cli("--kubeconfig", str(tmp_path / "nope.yaml")) == 1
    assert capsys.readouterr().err.strip() == f"error: kubeconfig {tmp_path / 'nope.yaml'} does not exist"


def test_an_unreachable_server_is_one_line_without_the_token(tmp_path: Path, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: "s3cr3t-static-token"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    assert run_cli("--kubeconfig", str(kubeconfig)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Kubernetes API server at https://127.0.0.1:1")
    assert "s3cr3t" not in err and err.count("\n") == 1


def test_namespace_flags_are_checked():
    from core.domain.errors import ValidationError
    from core.operator.runner import namespaces_from

    assert namespaces_from(["a", "b", "a"], False) == ("a", "b")
    assert namespaces_from(None, True) == ()
    with pytest.raises(ValidationError, match="not both"):
        namespaces_from(["a"], True)
    with pytest.raises(ValidationError, match="not a namespace name"):
        namespaces_from(["Team_A"], False)
