"""Catalogue, cost explorer and settings pages in AppTest."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.widgets import backend
from core.catalog.templates import TEMPLATE_NAMES, get_template
from tests.actors import admin
from tests.app.conftest import page


def test_catalogue_lists_templates_and_saved_versions_with_diff(app_env: Path) -> None:
    at = AppTest.from_file(page("catalogue.py"), default_timeout=60).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert all(name in text for name in TEMPLATE_NAMES)
    assert any("No saved pipelines yet" in i.value for i in at.info)

    p = get_template("process-topk-v1")
    p.name = "team-topk"
    backend.save_pipeline_version(p, "first cut")
    p.node("topk").params["k"] = 25
    saved = backend.save_pipeline_version(p, "keep more")
    assert saved.number == 2 and len(saved.commit_id) >= 7
    at = AppTest.from_file(page("catalogue.py"), default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="cat.pipeline").value == "team-topk"
    assert at.dataframe[0].value["latest"].tolist() == [2]
    assert any("-    k: 10" in c.value and "+    k: 25" in c.value for c in at.code)


def test_cost_explorer_restores_state_from_query_params(app_env: Path) -> None:
    at = AppTest.from_file(page("cost_explorer.py"), default_timeout=60)
    at.query_params.update({"hosts": "250", "procs": "120", "interval": "30", "pipeline": "process-aggregated-v1",
                            "card": "datadog-pro"})
    at.run()
    assert not at.exception
    assert at.number_input(key="ce.hosts").value == 250
    assert at.number_input(key="ce.procs").value == 120
    assert at.select_slider(key="ce.interval").value == 30
    assert at.selectbox(key="ce.pipeline").value == "process-aggregated-v1"
    assert at.selectbox(key="ce.card").value == "datadog-pro"
    assert len(at.dataframe[0].value) == 1  # one price card chosen
    at.number_input(key="ce.hosts").set_value(500).run()
    assert at.query_params["hosts"] == "500"


def test_settings_policy_test_and_invalid_edit(app_env: Path) -> None:
    at = AppTest.from_file(page("settings.py"), default_timeout=60).run()
    assert not at.exception
    at.text_input(key="settings.test_name").input("postgres").run()
    assert any(i.value.startswith("**critical**") for i in at.info)
    at.text_input(key="settings.test_name").input("my-batch-job").run()
    assert not any(i.value.startswith("**critical**") for i in at.info)
    at.text_area(key="settings.policy").input("rules:\n- match: executable_name\n  pattern: '(?=x)'\n"
                                              "  priority: critical\n")
    at.button(key="settings.save_policy").click().run()
    assert any("Not saved" in e.value and "RE2" in e.value for e in at.error)
    assert backend.configuration().get("critical_policy").source == "default"  # nothing stored
    at.text_area(key="settings.policy").input("rules:\n- match: executable_name\n  pattern: ^my-batch-job$\n"
                                              "  priority: critical\n")
    at.button(key="settings.save_policy").click().run()
    saved = backend.configuration().get("critical_policy")
    assert saved.source == "database" and [r.pattern for r in saved.value.rules] == ["^my-batch-job$"]
    with backend.services().uow() as uow:
        (entry,) = [a for a in uow.audit.list(subject="settings.critical_policy") if a.action == "settings.edit"]
    assert "^my-batch-job$" in entry.details["new"] and entry.details["old"] is None
    sources = {r["setting"]: r["source"] for r in at.dataframe[0].value.to_dict("records")}
    assert sources["critical policy"] == "database" and sources["price cards"] == "default"
    statuses = {r["component"]: r["status"] for r in at.dataframe[-1].value.to_dict("records")}
    assert statuses["Database"] == "connected"
    assert "PHOENIX_PROMETHEUS_URL" not in str(statuses)


def test_settings_services_tab_saves_masks_and_shows_the_env_override(app_env: Path, monkeypatch) -> None:
    secret = "hunter2-s3cret"
    at = AppTest.from_file(page("settings.py"), default_timeout=60).run()
    assert not at.exception
    at.text_input(key="settings.prometheus_url").input("ftp://nope").run()
    at.button(key="settings.save_services").click().run()
    assert any("Not saved" in e.value and "http(s) URL" in e.value for e in at.error)
    at.text_input(key="settings.prometheus_url").input(f"http://admin:{secret}@127.0.0.1:9").run()
    at.number_input(key="settings.retention").set_value(90)
    at.button(key="settings.save_services").click().run()
    assert any("Saved." in s.value for s in at.success)
    conf = backend.configuration()
    assert conf.get("prometheus_url").source == "database" and conf.retention_days() == 90
    texts = [str(df.value.to_dict()) for df in at.dataframe] + [t.value for t in at.text_input]
    assert all(secret not in t for t in texts)  # shown masked, never sent back into an input
    monkeypatch.setenv("PHOENIX_RETENTION_DAYS", "7")
    at = AppTest.from_file(page("settings.py"), default_timeout=60).run()
    assert any("PHOENIX_RETENTION_DAYS is set" in w.value for w in at.warning)
    sources = {r["setting"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert sources["retention days"]["source"] == "environment" and sources["retention days"]["overrides"] == "database"
    assert sources["retention days"]["value"] == "7"


def test_cost_explorer_prices_with_the_cards_saved_in_settings(app_env: Path) -> None:
    from app.widgets import settings_tools

    rows = [r for r in settings_tools.cards_as_rows(None) if r["id"] == "datadog-pro"]
    rows[0]["vendor"] = "Datadog (negotiated)"
    backend.configuration().set_price_cards(settings_tools.rows_to_cards(rows), admin("admin"))
    at = AppTest.from_file(page("cost_explorer.py"), default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="ce.card").options == ["all vendors", "Datadog (negotiated) — Infrastructure Pro"]
    assert at.dataframe[0].value["vendor"].tolist() == ["Datadog (negotiated) — Infrastructure Pro"]


def test_catalogue_lists_every_node_it_counts_and_missing_links_are_named() -> None:
    from app.widgets.pipeline_tools import node_types
    from app.widgets.share import missing_note
    from core.catalog.templates import TEMPLATE_NAMES, get_template

    for name in TEMPLATE_NAMES:
        p = get_template(name)
        listed = node_types(p)
        assert sorted(listed) == sorted(n.type for n in p.nodes), name  # the exporter too
        assert listed[0] == p.receiver().type and listed[-1] == p.exporters()[-1].type
    known = ["process-topk-v1", "process-baseline-v1"]
    assert missing_note({"pipeline": "process-topk-v1"}, "pipeline", known, "pipeline") is None
    assert missing_note({}, "pipeline", known, "pipeline") is None
    assert missing_note({"pipeline": " nope\x00 "}, "pipeline", known, "pipeline", "process-topk-v1") == (
        "This link asks for pipeline 'nope?', which does not exist here. Showing process-topk-v1 instead.")
