"""Overview page and the app router in AppTest; the cached services and embedded scheduler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.bootstrap import bootstrap
from core.domain.criteria import SuccessCriteria
from core.services.requests import CancelExperiment
from core.settings import Settings
from tests.actors import ADMIN

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "overview.py")
MAIN = str(ROOT / "app" / "main.py")


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("PHOENIX_DATABASE_URL", url)
    monkeypatch.setenv("PHOENIX_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHOENIX_RUNTIME", "memory")
    monkeypatch.setenv("PHOENIX_EMBEDDED_SCHEDULER", "false")
    monkeypatch.setenv("PHOENIX_AUTH", "off")
    yield url
    from app.services import close_all

    close_all()  # no scheduler thread outlives the test
    st.cache_data.clear()


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_empty_state_explains_how_to_start(app_env: str) -> None:
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    assert not at.error
    assert _metrics(at)["Experiments"] == "0"
    assert any("No experiments yet" in i.value for i in at.info)
    assert any("phoenix experiment create" in c.value for c in at.code)
    assert any("Dry-run runtime" in w.value for w in at.warning)


def test_lists_experiments_with_states_and_dry_run_label(app_env: str, tmp_path: Path) -> None:
    svc = bootstrap(Settings.from_env())
    with svc.uow() as uow:  # a saved pipeline with two versions
        for _ in range(2):
            uow.pipelines.add_version("process-rollup-v1", {"name": "process-rollup-v1"}, "")
        uow.commit()
    a = svc.experiments.create(ADMIN, name="topk trial", baseline="process-baseline-v1", candidate="process-topk-v1")
    b = svc.experiments.create(ADMIN, name="rollup trial", baseline="process-baseline-v1", candidate="process-rollup-v1@2")
    svc.experiments.cancel(ADMIN, CancelExperiment(experiment_id=b.id))
    svc.close()

    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception and not at.error
    m = _metrics(at)
    assert (m["Experiments"], m["Active"], m["Cancelled"], m["Completed"]) == ("2", "1", "1", "0")
    (df,) = at.dataframe
    table = df.value
    assert list(table["ID"]) == [b.id, a.id]  # newest first
    assert list(table["Baseline → Candidate"]) == ["process-baseline-v1 → process-rollup-v1@2",
                                                   "process-baseline-v1 → process-topk-v1"]
    assert set(table["Mode"]) == {"dry run"}
    assert list(table["Details"]) == [f"experiment?id={b.id}", f"experiment?id={a.id}"]
    assert list(table["State"]) == ["Cancelled", "Pending"]
    assert all(age.endswith("ago") for age in table["Age"])


def test_database_down_shows_a_message_not_a_traceback(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_DATABASE_URL", "postgresql+psycopg://postgres:pw@127.0.0.1:9/phoenix")
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    assert not at.exception
    (err,) = at.error
    assert "is unavailable" in err.value and "reference" in err.value and "pw@" not in err.value


def test_router_opens_overview_by_default(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_AUTH", "off")  # the routing alone; sign-in is tests/app/test_login.py
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Overview"


def test_cached_services_start_one_embedded_scheduler(app_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import services as app_services

    monkeypatch.setenv("PHOENIX_EMBEDDED_SCHEDULER", "true")
    monkeypatch.setenv("PHOENIX_SCHEDULER_INTERVAL", "0.2")
    first = app_services.get_services()
    assert app_services.get_services() is first  # one bootstrap per process
    assert first.scheduler is not None and first.scheduler.running
    exp = first.experiments.create(ADMIN, name="embedded", baseline="process-baseline-v1", candidate="process-topk-v1", duration_s=1, interval_s=0.5,
                                   criteria=SuccessCriteria(min_samples=2))
    deadline = time.monotonic() + 20
    while first.experiments.get(ADMIN, exp.id).state.value != "Completed":
        assert time.monotonic() < deadline, first.experiments.get(ADMIN, exp.id).state
        time.sleep(0.1)
