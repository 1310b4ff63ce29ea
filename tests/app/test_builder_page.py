"""Pipeline Builder page in AppTest: palette, simulated canvas edits, param form, query params."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.widgets import backend, canvas
from core.domain.pipeline import Pipeline
from tests.actors import admin

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "builder.py")
CANVAS = "builder_canvas"


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _pipeline(at: AppTest) -> Pipeline:
    return Pipeline.from_dict(at.session_state["builder.pipeline"])


def _canvas_report(at: AppTest, p: Pipeline, selected: str | None = None) -> None:
    """What the browser component sends back after a user edit on the canvas."""
    nodes, edges = canvas.flow_nodes_edges(p, {})
    at.session_state[CANVAS] = {"nodes": nodes, "edges": edges, "selectedId": selected,
                                "timestamp": int(time.time() * 1000) + 10_000}


def test_empty_builder_explains_what_to_do() -> None:
    at = _app().run()
    assert not at.exception
    assert any("canvas is empty" in e for e in _errors(at))
    assert any("palette" in i.value for i in at.info)


def test_palette_canvas_connect_edit_and_validate() -> None:
    at = _app().run()
    for t in ("hostmetrics", "prometheus"):
        at.button(key=f"palette.{t}").click().run()
    assert not at.exception
    p = _pipeline(at)
    assert [n.type for n in p.nodes] == ["hostmetrics", "prometheus"]
    assert any("not reachable" in e for e in _errors(at))

    # The user drags the exporter and connects receiver → exporter on the canvas.
    p.node("prometheus").position = {"x": 640.0, "y": 33.0}
    wired = canvas.connect(p, "hostmetrics", "prometheus")
    _canvas_report(at, wired, selected="hostmetrics")
    at.run()
    assert not at.exception
    p = _pipeline(at)
    assert [(e.source, e.target) for e in p.edges] == [("hostmetrics", "prometheus")]
    assert p.node("prometheus").position == {"x": 640.0, "y": 33.0}
    assert [s.value for s in at.success] == ["Pipeline is valid."]
    assert at.session_state["builder.selected"] == "hostmetrics"

    # Edit a parameter in the generated form: an invalid interval shows on the node.
    at.text_input(key="form.hostmetrics.collection_interval").input("ten seconds")
    at.button(key="FormSubmitter:form.hostmetrics-Apply parameters").click().run()
    assert _pipeline(at).node("hostmetrics").params == {"collection_interval": "ten seconds"}
    assert any("Go duration" in e for e in _errors(at))
    at.text_input(key="form.hostmetrics.collection_interval").input("30s")
    at.button(key="FormSubmitter:form.hostmetrics-Apply parameters").click().run()
    assert _pipeline(at).node("hostmetrics").params == {"collection_interval": "30s"}
    assert [s.value for s in at.success] == ["Pipeline is valid."]
    assert "collection_interval: 30s" in at.code[0].value


def test_canvas_deletion_is_merged() -> None:
    at = _app()
    at.query_params["pipeline"] = "process-baseline-v1"
    at.run()
    p = _pipeline(at)
    exporter = p.exporters()[0].id
    _canvas_report(at, canvas.delete_node(p, exporter))
    at.run()
    assert exporter not in {n.id for n in _pipeline(at).nodes}
    assert any("exporter" in e for e in _errors(at))


def test_query_params_open_a_template_and_show_yaml() -> None:
    at = _app()
    at.query_params["pipeline"] = "process-topk-v1"
    at.run()
    assert not at.exception
    assert _pipeline(at).name == "process-topk-v1"
    assert any("hostmetrics:" in c.value for c in at.code)


def test_unknown_shared_pipeline_is_a_warning_not_a_traceback() -> None:
    at = _app()
    at.query_params["pipeline"] = "no-such-template"
    at.run()
    assert not at.exception
    assert any("no-such-template" in w.value for w in at.warning)


def test_estimate_on_simulated_fleet() -> None:
    at = _app()
    at.query_params["pipeline"] = "process-aggregated-v1"
    at.run()
    at.number_input(key="builder.est_hosts").set_value(2)
    at.number_input(key="builder.est_procs").set_value(50)
    at.button(key="builder.estimate").click().run()
    assert not at.exception
    report = at.session_state["builder.estimate_report"]
    assert report["snapshot"]["hosts"] == 2
    assert 0 < report["series_out"] < report["series_in"]
    labels = [m.label for m in at.metric]
    assert "Series out" in labels and "Critical coverage" in labels


def test_estimate_shows_why_intelligent_keeps_what_it_keeps() -> None:
    at = _app()
    at.query_params["pipeline"] = "process-intelligent-v1"
    at.run()
    at.number_input(key="builder.est_hosts").set_value(2)
    at.number_input(key="builder.est_procs").set_value(50)
    at.button(key="builder.estimate").click().run()
    assert not at.exception
    learned = at.session_state["builder.estimate_report"]["learned"]["intelligent"]
    assert learned["mode"] == "snapshot" and "history too short" in learned["note"]  # a simulated fleet is short
    assert "Why intelligent keeps these processes" in [c.value for c in at.caption]
    table = next(d.value for d in at.dataframe if "why" in d.value.columns)
    assert table["why"].str.contains("history too short").any()


def test_save_requires_a_message_and_creates_a_version(app_env: Path) -> None:
    at = _app()
    at.query_params["pipeline"] = "process-topk-v1"
    at.run()
    name_key = next(t.key for t in at.text_input if t.key.startswith("builder.name."))
    at.text_input(key=name_key).input("team-topk").run()
    at.button(key="builder.save").click().run()
    assert any("message is required" in e for e in _errors(at))
    at.text_input(key="builder.save_msg").input("first cut for the web tier")
    at.button(key="builder.save").click().run()
    assert not at.exception
    ok = [s.value for s in at.success if "Saved" in s.value]
    assert ok and "team-topk" in ok[0] and "version **1**" in ok[0]
    assert at.query_params["pipeline"] == "team-topk" and at.query_params["version"] == "1"
    p, rec = backend.load_pipeline_version("team-topk", 1)
    assert rec.message == "first cut for the web tier" and rec.commit_id is not None and len(rec.commit_id) == 40
    assert rec.commit_id[:12] in ok[0] and p.name == "team-topk"

    # The share link opens that exact version in a fresh session.
    fresh = _app()
    fresh.query_params.update({"pipeline": "team-topk", "version": "1"})
    fresh.run()
    assert _pipeline(fresh).to_dict() == p.to_dict()


def test_a_save_after_someone_elses_is_refused_and_keeps_the_edit(app_env: Path) -> None:
    """Version 1 open here; someone saves version 2 meanwhile. Saving would silently revert their
    change: the page refuses, says so, keeps the edit, and saves on top of version 2 when asked."""
    at = _app()
    at.query_params["pipeline"] = "process-topk-v1"
    at.run()
    name_key = next(t.key for t in at.text_input if t.key.startswith("builder.name."))
    at.text_input(key=name_key).input("shared-topk").run()
    at.text_input(key="builder.save_msg").input("v1")
    at.button(key="builder.save").click().run()
    assert not at.exception and at.query_params["version"] == "1"

    theirs, _ = backend.load_pipeline_version("shared-topk", 1)
    theirs.description = "their change"
    backend.save_pipeline_version(theirs, "someone else's v2", expected_version=1)

    desc_key = next(t.key for t in at.text_input if t.key.startswith("builder.desc."))
    at.text_input(key=desc_key).input("my change").run()
    at.text_input(key="builder.save_msg").input("mine")
    at.button(key="builder.save").click().run()
    assert not at.exception
    assert any("at version **2** now" in w.value and "opened version **1**" in w.value for w in at.warning)
    assert _pipeline(at).description == "my change"  # the edit is still in the editor
    assert backend.latest_version_number("shared-topk") == 2  # nothing saved over theirs
    at.button(key="builder.save_over").click().run()
    assert not at.exception
    assert backend.latest_version_number("shared-topk") == 3 and at.query_params["version"] == "3"
    mine, rec = backend.load_pipeline_version("shared-topk", 3)
    assert mine.description == "my change" and rec.message == "mine"
    assert not [w for w in at.warning if "at version" in w.value]


def test_estimate_on_this_host() -> None:
    at = _app()
    at.query_params["pipeline"] = "process-minimal-v1"
    at.run()
    at.radio(key="builder.est_where").set_value("This host")
    at.button(key="builder.estimate").click().run()
    assert not at.exception
    report = at.session_state["builder.estimate_report"]
    assert report["source"] == "this host" and report["snapshot"]["hosts"] == 1
    assert report["snapshot"]["processes"] > 0 and report["series_out"] <= report["series_in"]


def test_form_controls_connect_delete_and_layout() -> None:
    at = _app().run()
    for t in ("hostmetrics", "batch", "debug"):
        at.button(key=f"palette.{t}").click().run()
    at.selectbox(key="builder.edge_src").select("hostmetrics")
    at.selectbox(key="builder.edge_dst").select("batch").run()
    at.button(key="builder.connect").click().run()
    at.selectbox(key="builder.edge_src").select("batch")
    at.selectbox(key="builder.edge_dst").select("debug").run()
    at.button(key="builder.connect").click().run()
    assert [s.value for s in at.success] == ["Pipeline is valid."]
    at.button(key="builder.del_edge.batch.debug").click().run()
    assert [(e.source, e.target) for e in _pipeline(at).edges] == [("hostmetrics", "batch")]
    at.button(key="builder.layout").click().run()
    xs = {n.id: n.position["x"] for n in _pipeline(at).nodes}
    assert xs["hostmetrics"] < xs["batch"]
    sel = next(s for s in at.selectbox if s.label == "Selected node")
    sel.select("batch").run()
    at.button(key="builder.delete_node").click().run()
    assert [n.id for n in _pipeline(at).nodes] == ["hostmetrics", "debug"]
    assert _pipeline(at).edges == []


def test_template_view_has_a_share_link() -> None:
    at = _app()
    at.query_params["pipeline"] = "process-aggregated-v1"
    at.run()
    assert any(c.value.startswith("http") and c.value.endswith("?pipeline=process-aggregated-v1") for c in at.code)


def test_estimate_uses_the_price_cards_edited_in_settings(app_env: Path) -> None:
    from app.widgets import backend, settings_tools

    rows = [r for r in settings_tools.cards_as_rows(None) if r["id"] == "grafana-cloud-pro"]
    rows[0]["vendor"] = "Grafana Cloud (edited)"
    backend.configuration().set_price_cards(settings_tools.rows_to_cards(rows), admin("admin"))
    at = _app()
    at.query_params["pipeline"] = "process-aggregated-v1"
    at.run()
    at.number_input(key="builder.est_hosts").set_value(2)
    at.number_input(key="builder.est_procs").set_value(40)
    at.button(key="builder.estimate").click().run()
    cards = at.session_state["builder.estimate_report"]["cost"]["cards"]
    assert [c["vendor"] for c in cards] == ["Grafana Cloud (edited)"]
