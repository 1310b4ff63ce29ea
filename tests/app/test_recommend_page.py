"""The Recommend page in AppTest: the form refuses missing input; a report renders in full."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.widgets import backend
from tests.app.conftest import page

DATA = Path(__file__).resolve().parents[1] / "data" / "recommend"


def test_recommend_page_renders_the_report_of_uploaded_files(app_env: Path) -> None:
    at = AppTest.from_file(page("recommend.py"), default_timeout=60).run()
    assert not at.exception
    at.button[0].click().run()  # submit with nothing uploaded
    assert any("Upload a snapshot" in e.value for e in at.error)

    # what the uploads hand the backend (AppTest cannot upload files), through the same door
    report = backend.recommend((DATA / "snapshot.csv").read_bytes(), [("rules.yml", (DATA / "rules.yml").read_bytes())],
                               [("d.json", (DATA / "dashboards" / "processes.json").read_bytes()),
                                ("junk.json", b"{not json")], False)
    at.session_state["rec.report"] = report
    at.run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert set(frame["status"]) == {"kept", "not kept", "ignored", "error"}
    assert any("junk.json" in w.value for w in at.warning)
    assert any("process-recommended-v1" in c.value for c in at.code)
    assert at.metric[0].value == str(report["counts"]["kept"])


def test_recommend_page_with_no_usable_query_says_so_and_proposes_nothing(app_env: Path) -> None:
    report = backend.recommend((DATA / "snapshot.csv").read_bytes(), [("alerts.yml", b"groups: [ {name: x\n")], [],
                               False)
    assert report["queries"] == [] and report["problems"]  # the service still proposes its rollup
    at = AppTest.from_file(page("recommend.py"), default_timeout=60)
    at.session_state["rec.report"] = report
    at.run()
    assert not at.exception
    assert any("alerts.yml is not valid YAML" in e.value for e in at.error)
    assert any("nothing to recommend from" in e.value for e in at.error)
    assert not at.metric and not at.code


def test_a_failed_submit_does_not_leave_the_previous_report_standing(app_env: Path) -> None:
    report = backend.recommend((DATA / "snapshot.csv").read_bytes(), [("rules.yml", (DATA / "rules.yml").read_bytes())],
                               [], False)
    at = AppTest.from_file(page("recommend.py"), default_timeout=60)
    at.session_state["rec.report"] = report
    at.run()
    assert at.metric  # the earlier report is shown until the next submit
    at.button[0].click().run()  # a new submit, this time with nothing uploaded: refused
    assert not at.exception
    assert any("Upload a snapshot" in e.value for e in at.error)
    assert not at.metric and not at.code and "rec.report" not in at.session_state
