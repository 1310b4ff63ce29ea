"""The settings service (core.services.settings): edits reach estimates, experiments and the
analysis; the environment wins and says so; every change is audited; hostile values are refused
and broken ones are reported with their source, never dropped."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from core.analysis.analyzer import ExperimentAnalyzer
from core.bootstrap import bootstrap, open_configuration
from core.catalog.templates import get_template
from core.cost import bundled_price_card_text
from core.domain.errors import ValidationError
from core.engine.fleet import generate_fleet
from core.runtime.memory import InMemoryDeployer
from core.services.estimate import estimate_pipeline
from core.services.experiments import ExperimentService
from core.services.settings import SettingsService, price_functions
from core.settings import Settings
from core.store.memory import MemoryDatabase
from tests.actors import ADMIN, admin

SECRET = "hunter2-s3cret"
POLICY = "rules:\n- match: executable_name\n  pattern: ^my-batch-job$\n  priority: critical\n"


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PHOENIX_CRITICAL_POLICY_FILE", "PHOENIX_PRICE_CARD_FILE", "PHOENIX_PROMETHEUS_URL",
                "PHOENIX_RETENTION_DAYS", "PHOENIX_PUBLIC_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def snapshot():
    return generate_fleet(3, 40, seed=5, scrapes=2)


def _cards_doc(**grafana_params: float) -> dict:
    doc = yaml.safe_load(bundled_price_card_text())
    for card in doc["cards"]:
        if card["id"] == "grafana-cloud-pro":
            card["params"].update(grafana_params)
    return doc


def _grafana(report: dict) -> dict:
    return next(c for c in report["cost"]["cards"] if c["card_id"] == "grafana-cloud-pro")


def _create(service: ExperimentService, name: str):
    return service.create(ADMIN, name=name, baseline="process-baseline-v1", candidate="process-topk-v1")


def test_an_edit_changes_the_next_estimate_cost(snapshot) -> None:
    db = MemoryDatabase()
    conf = SettingsService(db.uow, env={})
    pipeline = get_template("process-topk-v1")
    before = _grafana(estimate_pipeline(pipeline, snapshot, conf).report)
    assert before["after_usd"] == 0.0  # a small fleet stays inside the free tier of the bundled card
    conf.set_price_cards(_cards_doc(free_series=0, usd_per_1000_series=13.0), ADMIN)
    after = _grafana(estimate_pipeline(pipeline, snapshot, conf).report)
    assert after["after_usd"] == round(after["after_quantity"] / 1000 * 13.0, 2) > 0


def test_an_edit_changes_the_next_experiments_critical_policy() -> None:
    db = MemoryDatabase()
    experiments = ExperimentService(db.uow, dry_run=True)
    assert _create(experiments, "before").critical_rules is None  # the built-in default, as always
    SettingsService(db.uow).set_critical_policy(POLICY, ADMIN)
    exp = _create(experiments, "after")
    assert exp.critical_rules == [{"match": "executable_name", "pattern": "^my-batch-job$", "priority": "critical"}]
    own = [{"match": "owner", "pattern": "^db$", "priority": "critical"}]
    assert experiments.create(ADMIN, name="own", baseline="process-baseline-v1", candidate="process-topk-v1",
                              critical_rules=own).critical_rules == own  # its own policy still wins


def test_the_saved_policy_classifies_estimates_of_pipelines_without_one(snapshot) -> None:
    conf = SettingsService(MemoryDatabase().uow, env={})
    pipeline = get_template("process-topk-v1")
    assert pipeline.critical_policy is None
    default = estimate_pipeline(pipeline, snapshot, conf, with_cost=False).report["critical"]
    conf.set_critical_policy("rules: []\n", ADMIN)  # nothing is critical any more
    none = estimate_pipeline(pipeline, snapshot, conf, with_cost=False).report["critical"]
    assert default["critical_processes"] > 0 and none["critical_processes"] == 0


def test_the_environment_wins_and_is_reported(tmp_path: Path, snapshot, monkeypatch: pytest.MonkeyPatch) -> None:
    db = MemoryDatabase()
    conf = SettingsService(db.uow, env={})
    conf.set_price_cards(_cards_doc(free_series=0), ADMIN)
    conf.set_critical_policy(POLICY, ADMIN)
    conf.set_retention_days(90, ADMIN)
    file_cards = tmp_path / "cards.yaml"
    file_cards.write_text(yaml.safe_dump(_cards_doc(free_series=0, usd_per_1000_series=100.0)))
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("rules:\n- match: owner\n  pattern: ^ops$\n  priority: critical\n")
    env = {"PHOENIX_PRICE_CARD_FILE": str(file_cards), "PHOENIX_RETENTION_DAYS": "7",
           "PHOENIX_CRITICAL_POLICY_FILE": str(policy_file),
           "PHOENIX_PROMETHEUS_URL": f"http://admin:{SECRET}@prom:9090"}
    eff = SettingsService(db.uow, env=env).effective()
    assert eff.price_cards.source == "environment" and eff.price_cards.hidden == ("database",)
    assert eff.price_cards.origin == f"PHOENIX_PRICE_CARD_FILE={file_cards}"
    assert eff.retention_days.value == 7 and eff.retention_days.hidden == ("database",)
    assert eff.prometheus_url.source == "environment" and SECRET not in eff.prometheus_url.origin
    assert eff.public_url.source == "default" and eff.public_url.value == "http://localhost:8501"
    report = estimate_pipeline(get_template("process-topk-v1"), snapshot, SettingsService(db.uow, env=env)).report
    assert _grafana(report)["after_usd"] == round(_grafana(report)["after_quantity"] / 1000 * 100.0, 2)
    # experiment creation reads the process environment: the env policy wins over the saved one
    monkeypatch.setenv("PHOENIX_CRITICAL_POLICY_FILE", str(policy_file))
    exp = _create(ExperimentService(db.uow, dry_run=True), "env")
    assert exp.critical_rules == [{"match": "owner", "pattern": "^ops$", "priority": "critical"}]


def test_every_change_is_audited_without_secrets() -> None:
    db = MemoryDatabase()
    conf = SettingsService(db.uow, env={})
    conf.set_prometheus_url(f"http://admin:{SECRET}@prom:9090/", ADMIN)
    conf.set_prometheus_url(f"http://admin:{SECRET}@prom:9090/", ADMIN)  # unchanged: an entry that says so
    conf.set_retention_days(60, admin("bob"))
    conf.set_retention_days("45", admin("bob"))
    conf.reset("retention_days", admin("carol"))
    with db.uow() as uow:
        entries = list(reversed(uow.audit.list()))
    assert {e.action for e in entries} == {"settings.edit"}
    assert [(e.actor, e.subject, e.details.get("old"), e.details.get("new"), e.details.get("unchanged"))
            for e in entries] == [
        ("alice", "settings.prometheus_url", None, "http://admin:***@prom:9090", None),
        ("alice", "settings.prometheus_url", None, None, True),
        ("bob", "settings.retention_days", None, 60, None),
        ("bob", "settings.retention_days", 60, 45, None),
        ("carol", "settings.retention_days", 45, None, None),
    ]
    assert (entries[2].before, entries[2].after, entries[2].source) == (None, 60, "cli")
    assert SECRET not in repr(entries)
    assert conf.get("prometheus_url").value == f"http://admin:{SECRET}@prom:9090"  # stored whole, shown masked
    assert conf.get("retention_days").source == "default"


@pytest.mark.parametrize("setter, value, expected", [
    ("set_critical_policy", "rules: [unclosed", "YAML"),
    ("set_critical_policy", "rules:\n- match: executable_name\n  pattern: '(?=x)'\n  priority: critical\n", "RE2"),
    ("set_critical_policy", "rules:\n- match: pid\n  pattern: x\n  priority: critical\n", "match must be one of"),
    ("set_critical_policy", "default_priority: critical\nrules: []\n", "default_priority"),
    ("set_prometheus_url", "javascript:alert(1)", "http(s) URL"),
    ("set_prometheus_url", "ftp://prom:9090", "http(s) URL"),
    ("set_prometheus_url", "http://prom:99999", "http(s) URL"),
    ("set_prometheus_url", "http://pr om:9090", "http(s) URL"),
    ("set_prometheus_url", "http://prom:9090/\x00", "http(s) URL"),
    ("set_public_url", "http://", "http(s) URL"),
    ("set_public_url", "x" * 5000, "http(s) URL"),
    ("set_retention_days", 0, "from 1 to 3650"),
    ("set_retention_days", -3, "from 1 to 3650"),
    ("set_retention_days", "abc", "whole number"),
    ("set_retention_days", 10**12, "from 1 to 3650"),
    ("set_retention_days", True, "whole number"),
    ("set_retention_days", math.nan, "whole number"),
    ("set_retention_days", 1.5, "whole number"),
    ("set_price_cards", {"cards": []}, "non-empty"),
    ("set_price_cards", "cards", "mapping"),
])
def test_hostile_values_are_refused_and_nothing_is_stored(setter: str, value: object, expected: str) -> None:
    db = MemoryDatabase()
    conf = SettingsService(db.uow, env={})
    with pytest.raises(ValidationError) as exc:
        getattr(conf, setter)(value, admin("mallory"))
    assert expected in str(exc.value)
    with db.uow() as uow:
        assert uow.settings.all() == {} and uow.audit.list() == []


def test_hostile_price_card_values_are_refused() -> None:
    conf = SettingsService(MemoryDatabase().uow, env={})
    for bad in (-1.0, math.nan, math.inf, "cheap", None):
        with pytest.raises(ValidationError, match="usd_per_1000_series"):
            conf.set_price_cards(_cards_doc(usd_per_1000_series=bad), admin("mallory"))
    assert conf.get("price_cards").source == "default"


def test_broken_overrides_name_their_source_and_lose_nothing(tmp_path: Path, snapshot) -> None:
    db = MemoryDatabase()
    SettingsService(db.uow, env={}).set_price_cards(_cards_doc(free_series=0), ADMIN)
    bad_yaml = tmp_path / "cards.yaml"
    bad_yaml.write_text("cards: [unclosed")
    env = {"PHOENIX_PRICE_CARD_FILE": str(bad_yaml), "PHOENIX_RETENTION_DAYS": "ten",
           "PHOENIX_PUBLIC_URL": "not a url", "PHOENIX_CRITICAL_POLICY_FILE": str(tmp_path / "missing.yaml")}
    conf = SettingsService(db.uow, env=env)
    eff = conf.effective()  # the Settings page still renders: every problem is reported, none raised
    assert {n for n, s in eff.items() if s.error} == {"price_cards", "retention_days", "public_url", "critical_policy"}
    assert "PHOENIX_PRICE_CARD_FILE" in eff.price_cards.error and "YAML" in eff.price_cards.error
    assert "PHOENIX_RETENTION_DAYS" in eff.retention_days.error
    with pytest.raises(ValidationError, match="PHOENIX_PRICE_CARD_FILE"):
        estimate_pipeline(get_template("process-topk-v1"), snapshot,
                          SettingsService(db.uow, env={"PHOENIX_PRICE_CARD_FILE": str(bad_yaml)}))
    with pytest.raises(ValidationError, match="PHOENIX_CRITICAL_POLICY_FILE"):
        conf.critical_policy()
    # the saved cards are still there, used again once the variable is gone
    assert SettingsService(db.uow, env={}).get("price_cards").source == "database"
    with db.uow() as uow:  # a row broken by hand is reported, and kept
        uow.settings.set("settings.critical_policy", "rules: [{match: pid}]")
        uow.commit()
    broken = SettingsService(db.uow, env={}).effective().critical_policy
    assert broken.source == "database" and "database setting settings.critical_policy" in broken.error
    with pytest.raises(ValidationError, match="settings.critical_policy"):
        _create(ExperimentService(db.uow, dry_run=True), "refused")
    with db.uow() as uow:
        assert uow.settings.get("settings.critical_policy") == "rules: [{match: pid}]"


@pytest.mark.parametrize("var, raw", [("PHOENIX_SCHEDULER_INTERVAL", "fast"), ("PHOENIX_SCHEDULER_LEASE", "nan"),
                                      ("PHOENIX_COLLECTOR_PORT_BASE", "19000.5")])
def test_a_bad_numeric_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, var: str, raw: str) -> None:
    monkeypatch.setenv(var, raw)
    with pytest.raises(ValidationError, match=var):
        Settings.from_env()


def test_bootstrap_wires_the_analysis_and_adopts_legacy_files(tmp_path: Path) -> None:
    (tmp_path / "price_cards.yaml").write_text(yaml.safe_dump(_cards_doc(free_series=0)))
    (tmp_path / "critical_policy.yaml").write_text("rules: [unclosed")  # broken: left where it is
    analyzer = ExperimentAnalyzer()
    svc = bootstrap(Settings(data_dir=tmp_path, database_url="memory://", runtime="memory"), InMemoryDeployer(),
                    analyzer, database=MemoryDatabase())
    assert svc.configuration is not None
    assert svc.configuration.get("price_cards").source == "database"
    assert (tmp_path / "price_cards.yaml.adopted").is_file() and not (tmp_path / "price_cards.yaml").exists()
    assert (tmp_path / "critical_policy.yaml").is_file() and svc.configuration.get("critical_policy").source == "default"
    assert callable(analyzer.prometheus_url) and analyzer.prometheus_url() is None
    svc.configuration.set_prometheus_url("http://prom:9090", ADMIN)
    assert analyzer.prometheus_url() == "http://prom:9090"
    prices = analyzer._prices()
    assert prices is not None and prices["grafana-cloud-pro"](1000.0, 1000.0, None) == 6.5
    doc = _cards_doc(free_series=0, usd_per_1000_series=20.0)
    svc.configuration.set_price_cards(copy.deepcopy(doc), ADMIN)
    assert analyzer._prices()["grafana-cloud-pro"](1000.0, 1000.0, None) == 20.0  # the next analysis


def test_sqlite_persists_and_phoenix_estimate_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from core.cli import main
    from core.engine.snapshot import write_snapshot
    from core.store.migrate import upgrade

    url = f"sqlite:///{tmp_path}/phoenix.db"
    upgrade(url)
    with open_configuration(url) as conf:
        conf.set_price_cards(_cards_doc(free_series=0, usd_per_1000_series=13.0), ADMIN)
    with open_configuration(url) as conf:  # a new connection: it was stored, with its audit entry
        assert conf.get("price_cards").source == "database"
        assert conf.uow_factory is not None
        with conf.uow_factory() as uow:
            assert [(a.action, a.subject) for a in uow.audit.list()] == [("settings.edit", "settings.price_cards")]
    csv = tmp_path / "snap.csv"
    write_snapshot(generate_fleet(3, 40, seed=5, scrapes=2), csv)
    monkeypatch.setenv("PHOENIX_DATABASE_URL", url)
    assert main(["estimate", "--pipeline", "process-topk-v1", "--snapshot", str(csv), "--json"]) == 0
    card = _grafana(json.loads(capsys.readouterr().out))
    assert card["after_usd"] == round(card["after_quantity"] / 1000 * 13.0, 2) > 0
    (tmp_path / "bad.yaml").write_text("cards: [unclosed")
    monkeypatch.setenv("PHOENIX_PRICE_CARD_FILE", str(tmp_path / "bad.yaml"))
    assert main(["estimate", "--pipeline", "process-topk-v1", "--snapshot", str(csv)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: PHOENIX_PRICE_CARD_FILE") and "Traceback" not in err
    monkeypatch.delenv("PHOENIX_PRICE_CARD_FILE")
    monkeypatch.setenv("PHOENIX_SCHEDULER_INTERVAL", "fast")
    assert main(["estimate", "--pipeline", "process-topk-v1", "--snapshot", str(csv)]) == 1
    assert "PHOENIX_SCHEDULER_INTERVAL must be a number" in capsys.readouterr().err


def test_broken_price_cards_or_prometheus_url_do_not_throw_away_a_finished_run(tmp_path: Path) -> None:
    from core.domain.criteria import SuccessCriteria
    from core.domain.experiment import Experiment
    from tests.unit.test_analysis_verdict import make_samples

    bad = tmp_path / "cards.yaml"
    bad.write_text("cards: [unclosed")
    conf = SettingsService(MemoryDatabase().uow, env={"PHOENIX_PRICE_CARD_FILE": str(bad),
                                                      "PHOENIX_PROMETHEUS_URL": "ftp://prom"})
    analyzer = ExperimentAnalyzer(prices=lambda: price_functions(conf.price_cards()),
                                  prometheus_url=conf.prometheus_url)
    exp = Experiment.create(name="e", baseline="process-baseline-v1", candidate="process-topk-v1",
                            criteria=SuccessCriteria(min_cost_reduction_pct=10.0))
    result = analyzer.analyze(exp, make_samples())
    assert result["source"] == "database" and result["verdict"]
    assert result["price_cards_error"].startswith("PHOENIX_PRICE_CARD_FILE")
    assert result["prometheus_error"].startswith("PHOENIX_PROMETHEUS_URL")
    cost = next(c for c in result["criteria"] if c["criterion"] == "min_cost_reduction_pct")
    assert cost["status"] == "uncertain" and result["verdict"] == "INCONCLUSIVE"  # unpriced: never a pass
