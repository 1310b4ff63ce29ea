"""Hostile share links opened in the pages (issue 9): a warning or the defaults, never a traceback;
a hostile signed ``?share=`` token (issue 12) gets its one sentence and nothing else.

The parsers themselves are fuzzed in tests/fuzz/test_fuzz_share_links.py; these runs check the
pages use them: /experiment?id=…, /builder?pipeline=…&version=…, /cost_explorer?….
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import page

HOSTILE_IDS = ["'; DROP TABLE experiments; --", "x" * 5000, "exp-\x00", "../../etc/passwd", "exp-١٢٣", " "]


def _run(name: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(page(name), default_timeout=60)
    at.query_params.update(params)
    return at.run()


@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_experiment_page_refuses_a_hostile_id(app_env: Path, value: str) -> None:
    at = _run("experiment.py", {"id": value})
    assert not at.exception and not at.error
    if value.strip():
        (warning,) = at.warning
        assert "does not open an experiment" in warning.value and len(warning.value) < 200
    assert any("No experiments yet" in i.value for i in at.info)  # the picker stands in


@pytest.mark.parametrize("value", [*HOSTILE_IDS, "e30.e30", "A" * 600 + "." + "B" * 43])
def test_shared_view_refuses_a_hostile_token(app_env: Path, value: str) -> None:
    at = _run("shared.py", {"share": value})
    assert not at.exception
    (error,) = at.error
    assert "share link" in error.value and len(error.value) < 200 and (not value.strip() or value.strip()[:20] not in error.value)
    assert len(at.button) == 0 and not at.dataframe and len(at.title) == 1


@pytest.mark.parametrize(("params", "says"), [
    ({"pipeline": "../../etc/passwd"}, "is not a pipeline name"),
    ({"pipeline": "Process-TopK"}, "is not a pipeline name"),
    ({"pipeline": "process-topk-v1", "version": "²"}, "must be a whole number"),
    ({"pipeline": "process-topk-v1", "version": "9" * 5000}, "must be a whole number"),
    ({"pipeline": "process-topk-v1", "version": "-1"}, "must be a whole number"),
    ({"pipeline": "nobody-saved-this"}, "nobody-saved-this"),
    ({"pipeline": "process-topk-v1", "version": "3"}, "process-topk-v1"),
])
def test_builder_warns_about_a_hostile_link(app_env: Path, params: dict[str, str], says: str) -> None:
    at = _run("builder.py", params)
    assert not at.exception
    assert any(says in w.value and "Could not open the shared pipeline" in w.value for w in at.warning), \
        [w.value for w in at.warning]


def test_builder_opens_the_latest_saved_version_without_a_version(app_env: Path) -> None:
    from core.bootstrap import bootstrap
    from core.catalog.templates import get_template
    from core.gitops import InMemoryGitOps
    from core.settings import Settings
    from tests.usecases import save_version

    svc = bootstrap(Settings.from_env())
    p = get_template("process-topk-v1")
    p.name = "team-topk"
    for message in ("one", "two"):
        save_version(svc.uow, InMemoryGitOps(), p, message, "ann")
    svc.close()
    at = _run("builder.py", {"pipeline": "team-topk"})
    assert not at.exception and not at.warning
    assert at.session_state["builder.origin"]["version"] == 2


def test_cost_explorer_falls_back_to_defaults(app_env: Path) -> None:
    at = _run("cost_explorer.py", {"hosts": "1e9", "procs": "9" * 5000, "interval": "-5", "pipeline": "<script>",
                                   "card": "\x00"})
    assert not at.exception and not at.error
    assert at.number_input(key="ce.hosts").value == 1000
    assert at.number_input(key="ce.procs").value == 300
    assert at.select_slider(key="ce.interval").value == 5  # clamped to the smallest interval
    assert at.selectbox(key="ce.pipeline").value == "process-topk-v1"
    assert at.selectbox(key="ce.card").value == "all"
