"""The real collector's closed loop without processes: tuning steps, deadband, the restart
handshake between measurer and deployer, and the achieved-vs-budget rows."""

from __future__ import annotations

import pytest
import yaml

from core.catalog.templates import get_template
from core.domain.budget import from_estimate, from_retunes, latest, text_table
from core.engine.fleet import generate_fleet
from core.runtime.closed_loop import (
    ClosedLoop,
    host_row,
    next_config_path,
    request_path,
    request_restart,
    take_restart_request,
)


def _render(p) -> str:
    """Stand-in for the collector config: the adaptive node's thresholds (a comment that always moves)."""
    c = p.node("adaptive").params.get("computed") or {}
    hosts = {h: {k: v.get(k) for k in ("cpu_utilization", "memory_bytes")} for h, v in (c.get("hosts") or {}).items()}
    return f"# tuned at {c.get('computed_at')}\n" + yaml.safe_dump({"hosts": hosts, "fleet": c.get("memory_bytes")})


@pytest.fixture(scope="module")
def snap():
    s = generate_fleet(1, 300, seed=5, scrapes=1)
    return s.assign(host_name="h1")


def _loop(by="memory") -> ClosedLoop:
    p = get_template("process-adaptive-v1")
    p.node("adaptive").params["by"] = by
    return ClosedLoop(p, _render, num_cpus=2, running=_render(p))


def test_first_step_tunes_from_the_input_and_asks_for_a_restart(snap):
    loop = _loop()
    step = loop.step(snap, achieved={"h1": 40.0}, baseline={"h1": 2000.0})
    assert step.restart and step.config == loop.running
    row = step.hosts["adaptive"]["h1"]
    assert row["achieved"] == 40.0 and row["baseline_series"] == 2000.0 and row["budget"] > 0
    assert row["deviation_pct"] == pytest.approx(100 * (40.0 / row["budget"] - 1), abs=1e-3)
    assert row["k"] > 0 and row["memory_bytes"] > 0


def test_inside_the_deadband_nothing_is_retuned_or_restarted(snap):
    loop = _loop()
    loop.step(snap, achieved=None)
    budget = loop.rows(None, None)["adaptive"]["h1"]["budget"]
    before = loop.pipeline.node("adaptive").params["computed"]
    step = loop.step(snap, achieved={"h1": budget * 1.04})
    assert not step.restart and step.config is None
    assert loop.pipeline.node("adaptive").params["computed"] == before  # no integration in the band
    # Outside it, the correction moves K (fewer series wanted: a higher threshold) and the config changes.
    step = loop.step(snap, achieved={"h1": budget * 1.5})
    after = loop.pipeline.node("adaptive").params["computed"]["hosts"]["h1"]
    assert step.restart and after["k"] < before["hosts"]["h1"]["k"]
    assert after["memory_bytes"] > before["hosts"]["h1"]["memory_bytes"]


def test_only_a_changed_config_restarts_not_a_changed_comment(snap):
    loop = _loop()
    loop.step(snap, achieved=None)
    loop.running = "# another time\n" + loop.running.split("\n", 1)[1]
    assert not loop.step(snap, achieved=None).restart  # same thresholds, new tuning time


def test_restart_handshake(tmp_path):
    live = tmp_path / "otelcol-e1-candidate.yaml"
    live.write_text("old")
    assert take_restart_request(tmp_path, "e1", "candidate", live) is None
    request_restart(tmp_path, "e1", "candidate", "new: 1\n", {"reason": "retune", "interval": 3})
    got = take_restart_request(tmp_path, "e1", "candidate", live)
    assert got == {"reason": "retune", "interval": 3} and live.read_text() == "new: 1\n"
    assert not request_path(tmp_path, "e1", "candidate").exists()
    assert not next_config_path(tmp_path, "e1", "candidate").exists()
    assert take_restart_request(tmp_path, "e1", "candidate", live) is None  # taken once


def test_rows_from_both_record_shapes_and_the_cli_table():
    real = {"interval": 2, "restart": True,
            "nodes": {"adaptive": {"h1": {**host_row(200.0, 210.0, 800.0), "k": 12}}}}
    emulated = {"variant": "candidate", "interval": 3, "after": {
        "adaptive": {"k": 4, "hosts": {"h1": {"budget": 200.0, "achieved": 190.0, "k": 11}}}}}
    rows = from_retunes([real, emulated])
    assert [(r.interval, r.baseline_series, r.achieved, r.deviation_pct) for r in rows] == [
        (2, 800.0, 210.0, 5.0), (3, None, 190.0, -5.0)]
    assert latest(rows) == [rows[1]]
    est = from_estimate({"adaptive": {"hosts": {"h2": {"baseline_series": 1000.0, "budget": 250.0,
                                                        "achieved": 240.0, "deviation_pct": -4.0}}}})
    lines = text_table(est)
    assert lines[1].split() == ["adaptive", "h2", "1,000", "250", "240", "-4.0%"]
    assert from_retunes([{"interval": 1, "nodes": "garbage"}, {"after": None}]) == []  # bad shapes: no rows
