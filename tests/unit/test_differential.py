"""The differential test's comparison logic (core.differential.compare), without a collector."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from core.differential import compare as d
from core.differential.run import tick_phase
from core.engine.hostsnapshot import PsutilReader

SCOPE = ('otel_scope_name="github.com/x/processscraper",otel_scope_schema_url="",'
         'otel_scope_version="0.159.0"')


def _line(metric: str, pid: int | None, ts_ms: int, value: float = 1.0, name: str = "nginx", **extra: str) -> str:
    labels = {"host_name": "h", "os_type": "linux", "process_executable_name": name, **extra}
    if pid is not None:
        labels |= {"process_pid": str(pid), "process_command": "", "process_owner": "root"}
    body = ",".join([SCOPE, *(f'{k}="{v}"' for k, v in sorted(labels.items()))])
    return f"{metric}{{{body}}} {value} {ts_ms}"


def _p(metric: str, pid: int | None, ts: float | None = None, value: float = 1.0, name: str = "nginx") -> d.Point:
    labels = {"host_name": "h", "process_executable_name": name}
    if pid is not None:
        labels["process_pid"] = str(pid)
    return d.Point(metric, d.identity(labels), value, ts)


def test_parse_collector_reads_what_prometheus_client_reads() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = "\n".join([
        "# HELP process_memory_usage_bytes The amount of physical memory in use.",
        "# TYPE process_memory_usage_bytes gauge",
        _line("process_memory_usage_bytes", 7, 1700000000123, 4096, process_command_line='a \\"b\\" c\\\\d'),
        _line("process_cpu_time_seconds_total", 7, 1700000000123, 0.25, state="user"),
        "target_info{job=\"x\"} 1",
        "otelcol_exporter_sent_metric_points_total 3",
    ]) + "\n"
    got = d.parse_collector(text)
    ref = [d.Point(d.PROM_TO_OTEL.get(s.name, s.name), d.identity(s.labels), float(s.value), s.timestamp)
           for fam in text_string_to_metric_families(text) for s in fam.samples if s.name.startswith("process_")]
    assert got == ref
    mem = got[0]
    assert mem.metric == "process.memory.usage" and mem.pid == 7 and mem.timestamp == pytest.approx(1700000000.123)
    assert mem.label("process_command_line") == 'a "b" c\\d'
    assert mem.label("process_command") is None  # empty label = no label
    assert all(not k.startswith("otel_scope") for k, _ in mem.labels)
    assert got[1].metric == "process.cpu.time"


def test_scrapes_split_on_pid_order_and_pauses_not_on_stalls_inside_increasing_pids() -> None:
    stale = [_p("process.memory.usage", 500, 10.05)]  # an exited process from an older scrape
    first = [_p("process.memory.usage", pid, 11.0 + i * 0.01) for i, pid in enumerate((1, 7, 40))]
    groups = [_p("process.memory.usage", None, 11.2, name="other")]
    second = [_p("process.memory.usage", pid, 13.0 + i * 0.01) for i, pid in enumerate((1, 7))]
    got = d.scrapes(stale + second + groups + first, gap_s=1.2)
    assert [[p.pid for p in g] for g in got] == [[500], [1, 7, 40, None], [1, 7]]
    assert d.scrape_start(got[1]) == 11.0
    # a pid lower than the last one starts a new scrape even without a pause
    assert len(d.scrapes([_p("m", 9, 1.0), _p("m", 3, 1.01)], gap_s=1.2)) == 2


def test_engine_points_map_attributes_to_prometheus_labels() -> None:
    frame = pd.DataFrame({
        "host_name": ["h", "h"], "metric": ["process.cpu.time", "process.memory.usage"],
        "attributes": ['{"host.name":"h","process.command":"","process.pid":7,"state":"user"}',
                       '{"host.name":"h","process.executable.name":"other"}'],
        "value": [1.5, 2.0],
    })
    cpu, mem = d.engine_points(frame)
    assert cpu.labels == (("host_name", "h"), ("process_pid", "7"), ("state", "user"))
    assert cpu.pid == 7 and mem.pid is None and mem.name == "other"


def test_compare_series_leaves_out_churn_by_pid_and_one_sided_groups_of_churn_names() -> None:
    collector = [_p("process.cpu.time", 1), _p("process.cpu.time", 2), _p("process.cpu.time", 9),
                 _p("process.memory.usage", None, name="sleep"), _p("process.memory.usage", None, name="other")]
    engine = [_p("process.cpu.time", 1), _p("process.cpu.time", 3), _p("process.cpu.time", 8),
              _p("process.memory.usage", None, name="other")]
    churn = d.Churn(frozenset({8, 9}), frozenset({"sleep", "other"}))
    got = d.compare_series(collector, engine, churn)
    cpu = got.metrics["process.cpu.time"]
    assert (cpu.collector, cpu.engine, cpu.matched, cpu.only_collector, cpu.only_engine) == (2, 2, 1, 1, 1)
    assert (cpu.churn_collector, cpu.churn_engine) == (1, 1)
    mem = got.metrics["process.memory.usage"]
    # "other" is on both sides and must match; "sleep" (one side, churn name) is excused
    assert (mem.matched, mem.churn_collector, mem.only_collector) == (1, 1, 0)
    assert not got.agrees
    assert [k[1] for k in got.only_collector] == [_p("process.cpu.time", 2).labels]


def test_censuses_tell_started_or_stopped_from_retitled() -> None:
    before = {1: (0.0, "init", ""), 5: (1.0, "a", "a"), 6: (2.0, "b", "b"), 7: (3.0, "pg", "idle")}
    after = {1: (0.0, "init", ""), 6: (9.0, "c", "c"), 7: (3.0, "pg", "SELECT"), 8: (4.0, "d", "d")}
    assert d.churn_pids(before, after) == {5, 6, 8}  # 6 is a reused pid
    assert d.identity_changed(before, after) == {7}


def test_threshold_crossings_need_samples_on_both_sides() -> None:
    rss = {1: [90.0, 110.0], 2: [120.0, 130.0], 3: [100.0]}
    assert d.observed_crossings({1, 2, 3, 4}, rss, [100.0]) == {1}
    assert d.observed_crossings({1, 2}, rss, []) == set()


def test_cpu_threshold_nearness_is_a_clock_tick_tolerance() -> None:
    util = {1: [0.0104, 0.0, 0.0], 2: [0.03, 0.001, 0.0], 3: [0.0096, 0.0, 0.0]}
    assert d.near_cpu_thresholds({1, 2, 3, 4}, util, [0.01], tolerance=0.0005) == {1, 3}
    assert d.near_cpu_thresholds({1, 2, 3}, util, [0.01], tolerance=0.0001) == set()
    assert d.near_cpu_thresholds({1, 2}, util, [], tolerance=1.0) == set()


def test_utilisation_between_our_two_reads_and_its_tolerance() -> None:
    from core.differential.run import utilisation_by_pid

    snap = pd.DataFrame({"timestamp": [0.0, 0.0, 2.0, 2.0], "pid": [1, 2, 1, 3], "num_cpus": [2] * 4,
                         "cpu_time_user": [1.0, 5.0, 1.04, 0.0], "cpu_time_system": [0.0, 0.0, 0.02, 0.0],
                         "cpu_time_wait": [0.0] * 4})
    util, tol = utilisation_by_pid(snap)
    assert list(util) == [1]  # pid 3 has one read only
    assert util[1] == pytest.approx([0.01, 0.005, 0.0])
    assert tol == pytest.approx(2 * 0.01 / 4)


def test_renames_count_as_churn_only_when_explained() -> None:
    last = pd.DataFrame({"pid": [30, 31, 32], "executable_name": ["kworker/1:2-events", "postgres", "nginx"],
                         "command_line": ["", "postgres: idle", "nginx -g x"]})
    collector = [_p("m", 30, name="kworker/1:2-mm_percpu_wq"), _p("m", 31, name="postgres"),
                 _p("m", 32, name="nginx")]
    collector[1] = d.Point("m", d.identity({"process_pid": "31", "process_executable_name": "postgres",
                                            "process_command_line": "postgres: SELECT"}), 1.0)
    collector[2] = d.Point("m", d.identity({"process_pid": "32", "process_executable_name": "nginx",
                                            "process_command_line": "nginx"}), 1.0)
    names = dict(zip(last["pid"], last["executable_name"], strict=True))
    assert d.renamed_kernel_threads(collector, names, kernel={30}) == {30}
    assert d.renamed_kernel_threads(collector, names, kernel=set()) == set()
    census = {31: (1.0, "postgres", "postgres: SELECT"), 32: (1.0, "nginx", "nginx -g x")}
    # pid 31 was seen retitled by a census; pid 32's command line nobody saw: a disagreement
    assert d.seen_retitled(collector, last, [census]) == {31}


def test_critical_coverage_needs_every_expected_series_with_the_pid() -> None:
    collector = [_p("process.cpu.time", 1)] * 7 + [_p("process.cpu.time", 2)] * 3
    got = d.critical_coverage(collector, {1: "nginx", 2: "postgres", 3: "redis-server"}, {1: 7, 2: 7, 3: 7},
                              d.Churn(frozenset({3})))
    assert (got.critical, got.covered, got.churn_excluded, got.complete) == (2, 1, 1, False)
    assert got.missing == [{"pid": 2, "executable_name": "postgres", "expected": 7, "exported": 3}]


def test_expected_series_counts_points_with_values() -> None:
    last = pd.DataFrame({"process.pid": [1, 2], "memory_usage": [1.0, 2.0], "disk_io_read": [1.0, float("nan")],
                         "disk_io_write": [1.0, float("nan")]})
    assert d.expected_series(last, {"process.memory.usage", "process.disk.io"}).to_dict() == {1: 3, 2: 1}


def test_rollup_checks_interpolate_the_baseline_and_bound_churn() -> None:
    m = "process.cpu.time"
    before = [_p(m, 1, 10.0, 10.0), _p(m, 2, 10.0, 4.0), _p(m, 5, 10.0, 1.0)]
    after = [_p(m, 1, 12.0, 14.0), _p(m, 2, 12.0, 4.0)]
    # candidate at t=11: pid 1 individual (12), others summed into one group (4 + 3 new)
    candidate = [_p(m, 1, 11.0, 12.0), _p(m, None, 11.0, 7.0, name="other")]
    psutil_values = {1: {m: 12.0}, 2: {m: 4.0}, 3: {m: 3.0}}
    checks = d.rollup_checks(candidate, before, after, 11.0, population={1, 2, 3}, churn={5},
                             psutil_values=psutil_values, metrics=(m,))
    c = checks[m]
    assert c.baseline == pytest.approx(12.0 + 4.0 + 3.0)  # pid 3 from psutil (baseline never saw it)
    assert c.from_psutil == pytest.approx(3.0)
    assert c.churn_bound == pytest.approx(1.0)  # pid 5 exited: may or may not be in "other"
    assert c.interpolation_bound == pytest.approx(2.0)  # |14 - 10| × max(0.5, 0.5)
    assert c.psutil == pytest.approx(19.0) and c.error_pct == pytest.approx(0.0) and c.within
    lost = d.rollup_checks([_p(m, 1, 11.0, 12.0), _p(m, None, 11.0, 4.0, name="other")], before, after, 11.0,
                           {1, 2, 3}, {5}, psutil_values, (m,))[m]
    assert not lost.within  # a group that kept one member's value instead of the sum


def test_tick_phase_takes_the_earliest_full_scrape_and_ignores_lingering_groups() -> None:
    starts = [(100.05, 800), (101.4, 6), (102.3, 790), (104.02, 805), (106.1, 800)]
    assert tick_phase(starts, 2.0) == pytest.approx(104.02)


def test_host_reader_reads_identity_like_the_scraper(tmp_path: Path) -> None:
    proc = tmp_path / "42"
    proc.mkdir()
    os.symlink("/usr/lib/postgresql/15/bin/postgres (deleted)", proc / "exe")
    (proc / "cmdline").write_bytes(b"postgres: checkpointer \0\0\0\0\0")
    reader = PsutilReader(proc_root=str(tmp_path))
    got = reader._scraper_identity(42, {"executable_name": "postgres"})
    assert got == {"executable_path": "/usr/lib/postgresql/15/bin/postgres (deleted)",
                   "command": "postgres: checkpointer ", "command_line": "postgres: checkpointer "}
    (proc / "cmdline").write_bytes(b"/opt/bin/phoenix-otelcol-contrib\0--config=x\0")
    long = reader._scraper_identity(42, {"executable_name": "phoenix-otelcol"})
    assert long["executable_name"] == "phoenix-otelcol-contrib"
    assert long["command_line"] == "/opt/bin/phoenix-otelcol-contrib --config=x"
    zombie = tmp_path / "43"
    zombie.mkdir()
    (zombie / "cmdline").write_bytes(b"")
    assert reader._scraper_identity(43, {"executable_name": "phoenix-otelcol"}) == {
        "executable_path": "", "command": "", "command_line": ""}  # not psutil's cached exe
