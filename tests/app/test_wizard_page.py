"""Experiment wizard in AppTest: per-step validation, back/next, create end to end."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.widgets import backend, wizard
from core.bootstrap import bootstrap
from core.settings import Settings
from tests.actors import ADMIN, admin
from tests.app.conftest import page


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_wizard_creates_an_experiment(app_env: Path) -> None:
    # The default critical policy saved in Settings is what "default" means in the wizard.
    backend.configuration().set_critical_policy(
        "rules:\n- match: executable_name\n  pattern: ^my-batch-job$\n  priority: critical\n", admin("admin"))
    at = AppTest.from_file(page("wizard.py"), default_timeout=60).run()
    assert not at.exception
    at.button(key="wiz.next").click().run()
    assert any("Give the experiment a name" in e for e in _errors(at))
    assert at.session_state["wiz.step"] == 0

    at.text_input(key="wiz.0.name").input("topk vs baseline")
    at.text_input(key="wiz.0.owner").input("sre-team")
    at.button(key="wiz.next").click().run()
    assert at.session_state["wiz.step"] == 1
    at.selectbox(key="wiz.1.candidate").select("process-baseline-v1")
    at.button(key="wiz.next").click().run()
    assert any("must be different" in e for e in _errors(at))
    at.selectbox(key="wiz.1.candidate").select("process-aggregated-v1")
    at.checkbox(key="wiz.1.preview").check().run()
    previews = [m for m in at.metric if m.label == "Series out"]
    assert len(previews) == 2 and previews[0].value != previews[1].value  # side by side, different pipelines
    at.button(key="wiz.next").click().run()
    assert at.session_state["wiz.step"] == 2
    assert not at.radio(key="wiz.2.target").options[1:]  # no cluster configured: this host only

    at.text_input(key="wiz.2.interval").input("2 minutes")
    at.button(key="wiz.next").click().run()
    assert any("interval must be a duration" in e for e in _errors(at))
    at.text_input(key="wiz.2.duration").input("20s")
    at.text_input(key="wiz.2.interval").input("2s")
    at.button(key="wiz.next").click().run()
    assert at.session_state["wiz.step"] == 3

    # Back keeps what was typed.
    at.button(key="wiz.back").click().run()
    assert at.text_input(key="wiz.2.duration").value == "20s"
    at.button(key="wiz.next").click().run()

    at.number_input(key="wiz.3.samples").set_value(50)
    at.button(key="wiz.next").click().run()
    assert any("more than the run collects" in e for e in _errors(at))
    at.number_input(key="wiz.3.samples").set_value(5)
    at.run()
    assert "Review" in " ".join(m.value for m in at.markdown)
    review = dict(zip(at.table[0].value.iloc[:, 0], at.table[0].value["value"], strict=True))
    assert review["Critical policy"] == "default: 1 rules (database (edited in Settings))"
    at.button(key="wiz.next").click().run()
    assert not at.exception
    created = at.session_state["wiz.created"]

    svc = bootstrap(Settings.from_env())
    exp = svc.experiments.get(ADMIN, created)
    assert (exp.name, exp.owner, str(exp.baseline), str(exp.candidate)) == (
        "topk vs baseline", "sre-team", "process-baseline-v1", "process-aggregated-v1")
    assert (exp.timing.duration_s, exp.timing.interval_s, exp.state.value) == (20.0, 2.0, "Pending")
    assert exp.critical_rules == [{"match": "executable_name", "pattern": "^my-batch-job$", "priority": "critical"}]
    svc.close()


def test_step_problems_cover_custom_load_and_policy() -> None:
    d = wizard.new_draft()
    d.update(load="custom", custom_patterns="patterns: [", policy_mode="custom", policy_yaml="rules: 3")
    problems = wizard.step_problems(2, d)
    assert any("not valid YAML" in p for p in problems)
    assert any("rules" in p for p in problems)
    d.update(target_kind="kubernetes")
    assert any("No Kubernetes cluster" in p for p in wizard.step_problems(2, d, cluster_configured=False))


def test_kubernetes_target_only_when_a_cluster_is_configured(app_env: Path, monkeypatch) -> None:
    monkeypatch.setenv("PHOENIX_KUBE_CONTEXT", "kind-phoenix")
    at = AppTest.from_file(page("wizard.py"), default_timeout=60).run()
    at.text_input(key="wiz.0.name").input("k8s trial")
    at.button(key="wiz.next").click().run()
    at.button(key="wiz.next").click().run()
    assert at.radio(key="wiz.2.target").options == ["This host", "Kubernetes"]
    at.radio(key="wiz.2.target").set_value("kubernetes").run()
    at.text_input(key="wiz.2.ns").input("Bad_NS")
    at.text_input(key="wiz.2.sel").input("role=web").run()
    at.button(key="wiz.next").click().run()
    assert any("not a valid Kubernetes name" in e for e in _errors(at))
    at.text_input(key="wiz.2.ns").input("observability").run()
    at.button(key="wiz.next").click().run()
    assert at.session_state["wiz.step"] == 3
    assert ("Target", "kubernetes ns/observability [role=web]") in wizard.review(at.session_state["wiz.draft"])
