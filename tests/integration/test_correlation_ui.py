"""The UI through its router (app/main.py, Streamlit's AppTest): each run counts its page, and the
reference an error shows is the run's correlation id, which finds the traceback in the JSON log."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.observability.logs import configure_logging
from core.observability.metrics import UI_ERRORS, UI_PAGE_RUNS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ui_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    for name, value in {"PHOENIX_DATA_DIR": str(tmp_path), "PHOENIX_DATABASE_URL": f"sqlite:///{tmp_path}/phoenix.db",
                        "PHOENIX_GITOPS_REPO": str(tmp_path / "gitops"), "PHOENIX_EMBEDDED_SCHEDULER": "false",
                        "PHOENIX_RUNTIME": "memory", "PHOENIX_AUTH": "off"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PHOENIX_METRICS_PORT", raising=False)
    buf = io.StringIO()
    # installed first: the router's configure_logging(keep_existing=True) keeps it, as on a rerun
    handler = configure_logging("ui", stream=buf, fmt="json", level="INFO", env={})
    try:
        yield buf
    finally:
        logging.getLogger().removeHandler(handler)
        import streamlit as st

        from app.services import close_all

        close_all()
        st.cache_data.clear()


def count(metric: object, *labels: str) -> float:
    return metric.labels(*labels)._value.get()  # type: ignore[attr-defined, no-any-return]


def test_a_page_error_shows_the_runs_id_and_the_log_has_its_traceback(ui_env: io.StringIO,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    overview_runs = count(UI_PAGE_RUNS, "Overview")
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert count(UI_PAGE_RUNS, "Overview") == overview_runs + 1

    from app.widgets import backend

    def broken() -> list[str]:
        raise RuntimeError("forced failure for the reference test")

    monkeypatch.setattr(backend, "list_pipeline_names", broken)
    bugs = count(UI_ERRORS, "Cost Explorer", "bug")
    at.switch_page("../pages/cost_explorer.py").run()
    assert not at.exception, at.exception
    (shown,) = [e.value for e in at.error]
    assert "RuntimeError" in shown and "Traceback" not in shown
    reference = shown.split("reference **")[1].split("**")[0]
    assert count(UI_ERRORS, "Cost Explorer", "bug") == bugs + 1

    lines = [json.loads(x) for x in ui_env.getvalue().splitlines()]
    (logged,) = [x for x in lines if x.get("exc") and x["correlation_id"] == reference]
    assert logged["process"] == "ui" and "forced failure for the reference test" in logged["exc"]
    assert 'raise RuntimeError("forced failure' in logged["exc"]  # the traceback, not just the message

    at.run()  # a rerun is another run: another id, its own traceback under it
    (again,) = [e.value for e in at.error]
    second = again.split("reference **")[1].split("**")[0]
    assert second != reference
    lines = [json.loads(x) for x in ui_env.getvalue().splitlines()]
    assert [x["correlation_id"] for x in lines if x.get("exc")] == [reference, second]


def test_the_ui_serves_its_metrics_on_phoenix_metrics_port(ui_env: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    from tests.conftest import free_port

    port = free_port()
    monkeypatch.setenv("PHOENIX_METRICS_PORT", str(port))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60).run()
    at.run()  # a rerun serves nothing twice (the port is this process's already)
    assert not at.exception, at.exception
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    runs = re.search(r'^phoenix_ui_page_runs_total\{page="Overview"\} (\S+)$', text, re.M)
    assert runs is not None and float(runs.group(1)) >= 2
    assert re.search(r'^phoenix_build_info\{process="ui",version="[^"]+"\} 1\.0$', text, re.M)
