"""``phoenix recommend`` on real files: bad input is one line per problem, never a traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from core.cli import main
from core.settings import Settings
from tests.actors import cli_account, viewer

DATA = Path(__file__).resolve().parents[1] / "data" / "recommend"
SNAPSHOT = str(DATA / "snapshot.csv")


@pytest.fixture
def account(monkeypatch):
    return cli_account(Settings.from_env().database_url, monkeypatch, viewer("vera"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_recommend_json_and_pipeline_file(account, capsys, tmp_path):
    out = tmp_path / "p.yaml"
    code = main(["recommend", "--snapshot", SNAPSHOT, "--rules", str(DATA / "rules.yml"),
                 "--dashboards", str(DATA / "dashboards"), "--json", "--pipeline-out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(stdout)
    assert report["counts"]["kept"] >= 8 and report["processes"]["keep_rules"]
    assert report["problems"] == ["dashboard README.txt: not a .json file, skipped"]
    assert "process-recommended-v1" in out.read_text()


def test_bad_inputs_are_one_line_each(account, capsys, tmp_path):
    dash = tmp_path / "dash"
    dash.mkdir()
    (dash / "broken.json").write_text('{"panels": [')
    (dash / "notes.md").write_text("# notes")
    (dash / "good.json").write_text(json.dumps({"panels": [{"title": "p", "targets": [
        {"expr": 'process_memory_usage_bytes{process_executable_name=~"(unclosed"}'}]}]}))
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n  - name: x\n    rules: [ {alert: A, expr: 'sum(' } ]\n  - {name: y\n")
    url = f"http://127.0.0.1:{_closed_port()}"
    code = main(["recommend", "--snapshot", SNAPSHOT, "--rules", str(rules), "--rules", str(tmp_path / "missing.yml"),
                 "--dashboards", str(dash), "--prometheus", url])
    out, err = capsys.readouterr()
    assert code == 0, err
    problems = [line for line in out.splitlines() if line.startswith(("problem", "error"))]
    assert any("broken.json" in p for p in problems)
    assert any("notes.md: not a .json file" in p for p in problems)
    assert any("rules.yml" in p and "YAML" in p for p in problems)
    assert any("missing.yml" in p for p in problems)
    assert any(f"Prometheus at {url} did not answer" in p for p in problems)
    assert any("(unclosed" in p for p in problems)  # the bad regex, reported against its panel
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("argv", "message", "exit_code"), [
    (["--rules", "x.yml", "--snapshot", "/nonexistent.csv"], "snapshot file /nonexistent.csv does not exist", 1),
    (["--snapshot", SNAPSHOT], "give at least one of --rules FILE, --dashboards DIR, --prometheus URL", 1),
    (["--snapshot", SNAPSHOT, "--prometheus", "ftp://x"], "is not an http(s) URL", 0),  # a problem line
])
def test_refusals(account, capsys, argv, message, exit_code):
    assert main(["recommend", *argv]) == exit_code
    out, err = capsys.readouterr()
    assert message in out + err
    assert "Traceback" not in out + err


def test_an_empty_snapshot_is_one_line(account, capsys, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text(Path(SNAPSHOT).read_text().splitlines()[0] + "\n")
    code = main(["recommend", "--snapshot", str(empty), "--rules", str(DATA / "rules.yml")])
    out, err = capsys.readouterr()
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_servers_caller_names_no_url_and_settings_without_prometheus_is_a_problem(memory_services):
    from core.domain.errors import ValidationError
    from core.services.requests import Recommend

    snapshot = Path(SNAPSHOT).read_bytes()
    with pytest.raises(ValidationError, match="reads only the Prometheus configured in Settings"):
        memory_services.recommendations.recommend(viewer(source="api"), Recommend.of(
            prometheus_url="http://169.254.169.254"), snapshot)
    report = memory_services.recommendations.recommend(viewer(source="ui"), Recommend.of(settings_prometheus=True),
                                                        snapshot)
    assert report["problems"] == ["no Prometheus is configured in Settings (PHOENIX_PROMETHEUS_URL): "
                                  "its rules were not read"]
