"""Hosts scraped fewer times than others (issue 9): evaluated on their own last scrape, never dropped.

Rules in docs/pipeline-semantics.md ("Hosts with fewer scrapes").
"""

from __future__ import annotations

import json

import numpy as np

from core.catalog.frame import align_scrapes
from core.catalog.templates import get_template
from core.cli import main
from core.engine.estimate import estimate
from core.engine.evaluate import evaluate
from core.engine.snapshot import write_snapshot
from tests.unit.engine_data import POLICY, MiB, frame, pipeline, proc, snapshot, two_scrapes

CLASSIFY = ("classify", "priority_classifier", {})


def fleet() -> list[dict]:
    """Host a: three scrapes; host b: two; host c: one (all its processes on that one)."""
    a = [proc("a", 10, "nginx"), proc("a", 11, "worker")]
    rows = two_scrapes(a, dt=10.0, cpu_delta={10: 2.0})
    rows += [dict(r, timestamp=1020.0, cpu_time_user=r["cpu_time_user"] + 3.0) for r in a]
    rows += two_scrapes([proc("b", 20, "worker", ts=1003.0), proc("b", 21, "postgres", ts=1003.0)], dt=10.0)
    rows += [proc("c", 30, "worker", ts=1007.0), proc("c", 31, "postgres", ts=1007.0), proc("c", 32, "big", ts=1007.0,
                                                                                          rss=900 * MiB)]
    return rows


def test_scrape_indices_are_aligned_at_the_end_per_host():
    f = frame(fleet())
    got = f.df.groupby("host_name", observed=True)["scrape"].agg(["min", "max"])
    assert got.loc["a"].tolist() == [0, 2]
    assert got.loc["b"].tolist() == [1, 2]
    assert got.loc["c"].tolist() == [2, 2]
    assert align_scrapes(np.array([0, 0, 1]), np.array([0, 1, 0])).tolist() == [0, 1, 1]


def test_a_host_with_fewer_scrapes_is_counted_not_dropped():
    rows = fleet()
    whole = estimate(get_template("process-baseline-v1"), snapshot(rows)).report
    assert whole["snapshot"]["hosts"] == 3 and whole["snapshot"]["processes"] == 7
    # Each host alone, on its own last scrape, adds up to the fleet's figures.
    alone = [estimate(get_template("process-baseline-v1"), snapshot([r for r in rows if r["host_name"] == h])).report
             for h in "abc"]
    assert whole["series_in"] == sum(r["series_in"] for r in alone) == 7 * 7
    assert whole["series_out"] == sum(r["series_out"] for r in alone)
    assert whole["host_totals"]["memory_usage_bytes"]["in"] == sum(r["host_totals"]["memory_usage_bytes"]["in"] for r in alone)
    assert whole["critical"]["critical_processes"] == sum(r["critical"]["critical_processes"] for r in alone)


def test_the_estimate_states_how_many_scrapes_each_host_saw():
    report = estimate(get_template("process-topk-v1"), snapshot(fleet())).report
    snap = report["snapshot"]
    assert snap["scrapes"] == 3
    assert snap["scrapes_per_host"] == {"min": 1, "max": 3, "hosts_by_scrapes": {"1": 1, "2": 1, "3": 1}}
    assert snap["hosts_with_fewer_scrapes"] == {"b": 2, "c": 1}
    assert "2 of 3 host(s) saw fewer than 3 scrapes: b (2), c (1); each is evaluated on its own last scrape" in \
        report["warnings"]


def test_equal_scrapes_give_an_empty_list_and_no_warning():
    rows = two_scrapes([proc("a", 1, "x"), proc("b", 2, "y", ts=1004.0)])
    report = estimate(get_template("process-baseline-v1"), snapshot(rows)).report
    assert report["snapshot"]["hosts_with_fewer_scrapes"] == {}
    assert report["snapshot"]["scrapes_per_host"] == {"min": 2, "max": 2, "hosts_by_scrapes": {"2": 2}}
    assert not any("fewer than" in w for w in report["warnings"])


def test_series_out_file_has_every_host():
    result = estimate(get_template("process-baseline-v1"), snapshot(fleet()))
    assert sorted(result.series_out_frame()["host_name"].unique()) == ["a", "b", "c"]


def test_churn_ignores_a_host_without_a_previous_scrape():
    # a and b keep their pids between their last two scrapes: nothing churned; c has no
    # previous scrape, so its 21 series are not "new".
    report = estimate(get_template("process-baseline-v1"), snapshot(fleet())).report
    assert report["churn"] == {"in": 0, "out": 0}


def test_single_scrape_host_has_no_utilisation_so_cpu_thresholds_keep_none_of_its_processes():
    rows = fleet()
    p = pipeline(CLASSIFY, ("filter", "resource_filter", {"by": "combined", "cpu_utilization": 0.0,
                                                          "memory_bytes": 500 * MiB, "action": "drop"}),
                 receiver={"metrics": {"process.cpu.utilization": True}}, policy=POLICY)
    result = evaluate(p, frame(rows))
    last = result.output.df[result.output.df["scrape"].to_numpy() == 2]
    kept = {(h, int(pid)) for h, pid in zip(last["host_name"].astype(str), last["process.pid"], strict=True)}
    # cpu ≥ 0 keeps every process that has a utilisation point (a and b); on c only the
    # critical postgres and the 900 MiB process (memory threshold) stay; worker is dropped.
    assert kept == {("a", 10), ("a", 11), ("b", 20), ("b", 21), ("c", 31), ("c", 32)}
    c_rows = result.input.df[result.input.df["host_name"].astype(str).to_numpy() == "c"]
    assert c_rows["cpu_utilization_user"].isna().all()
    report = estimate(p, snapshot(rows)).report
    assert any("1 host(s) scraped once have no CPU utilisation points yet, so cpu thresholds keep none of "
               "their processes" in w for w in report["warnings"])


def test_cli_json_and_text_state_scrapes_per_host(tmp_path, capsys):
    path = tmp_path / "snap.csv"
    write_snapshot(snapshot(fleet()), path)
    assert main(["estimate", "--pipeline", "process-baseline-v1", "--snapshot", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["snapshot"]["hosts_with_fewer_scrapes"] == {"b": 2, "c": 1}
    assert report["snapshot"]["hosts"] == 3
    assert main(["estimate", "--pipeline", "process-baseline-v1", "--snapshot", str(path)]) == 0
    text = capsys.readouterr().out
    assert ("scrapes      1 host(s) saw 3; 2 saw fewer, each evaluated on its own last scrape: b (2), c (1)"
            in text.splitlines())


def test_cli_text_with_equal_scrapes(tmp_path, capsys):
    path = tmp_path / "snap.csv"
    write_snapshot(snapshot(two_scrapes([proc("a", 1, "x")])), path)
    assert main(["estimate", "--pipeline", "process-baseline-v1", "--snapshot", str(path)]) == 0
    assert "scrapes      every host saw 2" in capsys.readouterr().out.splitlines()


def test_text_summary_caps_the_host_list():
    from core.commands.estimate import _scrapes_line

    fewer = {f"h{i:02d}": 1 for i in range(12)}
    line = _scrapes_line({"scrapes": 2, "hosts": 20, "hosts_with_fewer_scrapes": fewer})
    assert line.startswith("scrapes      8 host(s) saw 2; 12 saw fewer")
    assert line.endswith("h09 (1) … and 2 more")
