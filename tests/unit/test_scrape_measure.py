"""Measuring real collectors from outside: exposition text + one host scrape → samples (no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.catalog.frame import from_snapshot
from core.catalog.process_metrics import DEFAULT_METRICS
from core.domain.critical import policy_from_rules
from core.engine.expand import expand
from core.engine.hostsnapshot import StaticReader, snapshot_this_host
from core.runtime.exposition import render_series
from core.runtime.scrape_measure import (
    Endpoints,
    ScrapeError,
    ScrapeMeasurer,
    VariantFacts,
    VariantState,
    coverage,
    cpu_pct,
    endpoints_from_config,
    measure_variant,
    parse_telemetry,
    process_series,
    series_per_host,
)
from core.store.refs import load_pipeline

POLICY = policy_from_rules([{"match": "executable_name", "pattern": "^postgres$", "priority": "critical"}])
LABELS = {"phoenix_experiment_id": "e1", "phoenix_variant": "baseline", "host_name": "test-host"}
T = datetime(2026, 1, 1, tzinfo=UTC)


def proc(pid: int, name: str, cpu: float = 1.0) -> dict:
    return {"pid": pid, "parent_pid": 1, "executable_name": name, "executable_path": f"/usr/bin/{name}",
            "command": name, "command_line": f"{name} --serve", "owner": "app", "cpu_time_user": cpu,
            "cpu_time_system": cpu / 2, "cpu_time_wait": 0.0, "memory_usage": 10**6, "memory_virtual": 4 * 10**6,
            "disk_io_read": 0, "disk_io_write": 0}  # fmt: skip


def host(rows):
    return snapshot_this_host(scrapes=1, reader=StaticReader([rows]))


ROWS = [proc(5, "postgres"), proc(6, "postgres"), *[proc(100 + i, f"svc{i}") for i in range(8)]]


def series_frame(rows=ROWS):
    return expand(from_snapshot(host(rows)), DEFAULT_METRICS)


def text_of(series) -> str:
    # a target_info family as the real exporter adds it: not a process series
    return render_series(series, LABELS) + '# TYPE target_info gauge\ntarget_info{job="x"} 1\n'


FACTS = VariantFacts(frozenset(DEFAULT_METRICS), None, POLICY)


def test_series_count_and_full_coverage_from_rendered_exposition():
    s = series_frame()
    keys = process_series(text_of(s))
    assert len(keys) == len(s) == 10 * 7  # 7 default series per process, target_info left out
    cov = coverage(keys, host(ROWS), POLICY, DEFAULT_METRICS)
    assert (cov["critical_processes"], cov["covered"], cov["coverage_pct"]) == (2, 2, 100.0)


def test_series_per_host_is_the_closed_loops_feedback():
    text = text_of(series_frame())
    assert series_per_host(text) == {"test-host": 70.0}  # the host_name label; target_info left out
    assert series_per_host("") == {}


def test_one_critical_process_losing_one_series_lowers_coverage():
    s = series_frame()
    lost = (s["process.pid"] == 6) & (s["metric"] == "process.cpu.time") & (s["state"] == "wait")
    assert lost.sum() == 1
    cov = coverage(process_series(text_of(s[~lost])), host(ROWS), POLICY, DEFAULT_METRICS)
    assert cov["coverage_pct"] == 50.0 and cov["missing_examples"] == [{"pid": 6, "executable_name": "postgres"}]
    # a rollup without process_pid covers nobody
    nopid = s.copy()
    nopid.loc[nopid["process.pid"] == 5, "process.pid"] = None
    assert coverage(process_series(text_of(nopid)), host(ROWS), POLICY, DEFAULT_METRICS)["covered"] == 1


def test_pid_no_collector_reported_is_not_judged():
    s = series_frame()
    keys = process_series(text_of(s[s["process.pid"] != 6]))
    assert coverage(keys, host(ROWS), POLICY, DEFAULT_METRICS, judged_pids={5, 100})["coverage_pct"] == 100.0
    assert coverage(keys, host(ROWS), POLICY, DEFAULT_METRICS)["coverage_pct"] == 50.0


TELEMETRY = """# HELP otelcol_process_cpu_seconds_total Total CPU user and system time in seconds
# TYPE otelcol_process_cpu_seconds_total counter
otelcol_process_cpu_seconds_total{service_name="otelcol-contrib"} {cpu}
# TYPE otelcol_process_memory_rss gauge
otelcol_process_memory_rss{service_name="otelcol-contrib"} 73400320
# TYPE otelcol_exporter_sent_metric_points_total counter
otelcol_exporter_sent_metric_points_total{exporter="prometheus"} 140
"""


def tel(cpu: float) -> str:
    return TELEMETRY.replace("{cpu}", str(cpu))


def test_telemetry_cpu_pct_and_rss():
    t = parse_telemetry(tel(2.5))
    assert (t.cpu_seconds, t.rss_bytes) == (2.5, 73400320.0)
    assert cpu_pct((100.0, 2.5), (110.0, 3.0)) == 5.0
    assert cpu_pct(None, (110.0, 3.0)) is None
    assert cpu_pct((100.0, 3.0), (110.0, 0.1)) is None  # counter reset: collector restarted


def test_measure_variant_sample_and_churn():
    st = VariantState()
    s = series_frame()
    first = measure_variant("e1", "baseline", T, metrics_text=text_of(s), telemetry_text=tel(1.0), wall_s=0.0,
                            snapshot=host(ROWS), facts=FACTS, interval_s=5, state=st)  # fmt: skip
    assert (first.series, first.datapoints, first.processes_seen) == (70, 70, 10)
    assert first.bytes == len(text_of(s).encode())
    assert (first.series_created, first.series_removed, first.collector_cpu_pct) == (70, 0, None)
    assert first.collector_rss_mb == 70.0
    rows2 = [r for r in ROWS if r["pid"] != 107] + [proc(200, "batch")]
    s2 = series_frame(rows2)
    half = VariantFacts(frozenset(DEFAULT_METRICS), 10.0, POLICY)  # exports every 10 s, scraped every 5 s
    second = measure_variant("e1", "baseline", T, metrics_text=text_of(s2), telemetry_text=tel(1.5), wall_s=5.0,
                             snapshot=host(rows2), facts=half, interval_s=5, state=st)  # fmt: skip
    assert (second.series_created, second.series_removed) == (7, 7)
    assert second.datapoints == 35 and second.collector_cpu_pct == 10.0
    assert second.critical_coverage_pct == 100.0


def test_bad_text_is_a_clear_scrape_error():
    with pytest.raises(ScrapeError, match="not Prometheus exposition"):
        process_series("process_x{a=1 2\n", "baseline /metrics")


def test_endpoints_from_rendered_config():
    import yaml

    from core.render.collector import local_options
    from core.services.pipelines import render_checked

    opts = local_options("e1", "baseline", metrics_port=9101, telemetry_port=9102, health_port=9103)
    conf = yaml.safe_load(render_checked(load_pipeline("process-baseline-v1"), opts).collector_yaml)
    assert endpoints_from_config(conf) == Endpoints("http://127.0.0.1:9101/metrics", "http://127.0.0.1:9102/metrics")
    with pytest.raises(ScrapeError, match="no prometheus exporter"):
        endpoints_from_config({"exporters": {"otlp": {}}})


def test_measurer_tick_pairs_variants_and_skips_failed_intervals():
    s = series_frame()
    topk = s[(s["process.pid"] < 100) | (s["process.pid"] == 100)]  # candidate keeps postgres + one service
    served = {"http://b/metrics": text_of(s), "http://c/metrics": text_of(topk),
              "http://b/tel": tel(1.0), "http://c/tel": tel(0.5)}  # fmt: skip
    clock = iter(float(x) for x in range(100))

    def fetch(url: str) -> str:
        if url not in served:
            raise ScrapeError(f"cannot scrape {url}")
        return served[url]

    got = []
    m = ScrapeMeasurer("e1", {"baseline": load_pipeline("process-baseline-v1"),
                              "candidate": load_pipeline("process-topk-v1")},
                       {"baseline": Endpoints("http://b/metrics", "http://b/tel"),
                        "candidate": Endpoints("http://c/metrics", "http://c/tel")},
                       interval_s=5, policy=POLICY, reader=StaticReader([ROWS]), fetch=fetch, sink=got.extend,
                       clock=lambda: next(clock), judge=lambda pids, born_before: set(pids))  # fmt: skip
    m.start_servers()
    out = m.tick(T)
    assert [x.variant for x in out] == ["baseline", "candidate"] and got == out
    b, c = out
    assert (b.series, c.series) == (70, 21)
    assert b.processes_seen == c.processes_seen == 10
    assert b.critical_coverage_pct == c.critical_coverage_pct == 100.0
    assert b.collector_cpu_pct is not None and b.collector_cpu_pct == 0.0  # primed, counter unchanged
    # the candidate loses critical pid 6 while the baseline still exports it
    served["http://c/metrics"] = text_of(topk[topk["process.pid"] != 6])
    b, c = m.tick(T)
    assert (b.critical_coverage_pct, c.critical_coverage_pct) == (100.0, 50.0)
    assert (c.series_created, c.series_removed) == (0, 7)
    del served["http://c/tel"]
    assert m.tick(T) == [] and m.skipped == 1 and len(got) == 4


def test_with_a_tap_the_input_is_the_taps_and_empty_variants_warm_up_first():
    """The tap's prometheus/input is the input; no sample until each variant exported a batch."""
    s = series_frame()
    topk = s[(s["process.pid"] < 100) | (s["process.pid"] == 100)]
    served = {"http://t/metrics": text_of(s), "http://t/tel": tel(2.0), "http://b/metrics": "",
              "http://c/metrics": text_of(topk), "http://b/tel": tel(1.0), "http://c/tel": tel(0.5)}  # fmt: skip
    now = [0.0]
    m = ScrapeMeasurer("e1", {"baseline": load_pipeline("process-baseline-v1"),
                              "candidate": load_pipeline("process-topk-v1")},
                       {"baseline": Endpoints("http://b/metrics", "http://b/tel"),
                        "candidate": Endpoints("http://c/metrics", "http://c/tel")},
                       interval_s=5, policy=POLICY, reader=StaticReader([ROWS]), fetch=served.__getitem__,
                       clock=lambda: now[0], tap=Endpoints("http://t/metrics", "http://t/tel"))  # fmt: skip
    m.start_servers()
    assert m.tick(T) == []  # the baseline has not exported its first batch yet
    now[0] = 5.0
    served["http://b/metrics"] = text_of(s)
    b, c = m.tick(T)
    assert (b.series, c.series) == (70, 21)
    assert b.processes_seen == c.processes_seen == 10  # pids in the tap's input
    assert len(m.tap_overhead) == 2 and m.tap_overhead[-1]["rss_mb"] is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["process_a", "process_b_total", "up"]),
                          st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                                          st.text(max_size=20), max_size=4),
                          st.floats(allow_nan=False, allow_infinity=False, width=32)), max_size=20))
def test_the_fast_parser_reads_what_prometheus_client_reads(samples):
    """parse_samples is a regex parser for speed; it must agree with the library on escapes."""
    from prometheus_client.parser import text_string_to_metric_families

    from core.runtime.scrape_measure import parse_samples

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    lines = []
    for name, labels, value in samples:
        body = ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{body}}} {value!r}" if labels else f"{name} {value!r}")
    text = "\n".join(lines) + "\n"
    lib = [(s.name, dict(s.labels), float(s.value)) for f in text_string_to_metric_families(text) for s in f.samples]
    assert parse_samples(text) == lib


def test_closed_loop_asks_for_a_restart_and_skips_intervals_until_the_candidate_runs_it(tmp_path, monkeypatch):
    """Adaptive candidate: the loop re-tunes on the tap's input, writes the restart request, and
    no sample pair is written until the candidate (younger than the request) exported again."""
    import psutil

    from core.runtime.closed_loop import ClosedLoop, next_config_path, request_path
    from core.runtime.configs import TAP_PORT_NAMES, render_otelcol_configs

    monkeypatch.setattr(psutil, "pid_exists", lambda pid: True)  # the input's pids are this host's
    s = series_frame()
    up = "otelcol_process_uptime_seconds_total{a=\"b\"} {up}\n"
    served = {"http://t/metrics": text_of(s), "http://t/tel": tel(2.0), "http://b/metrics": text_of(s),
              "http://c/metrics": text_of(s), "http://b/tel": tel(1.0),
              "http://c/tel": tel(0.5) + up.replace("{up}", "100")}  # fmt: skip
    now = [0.0]
    candidate = load_pipeline("process-adaptive-v1")
    candidate.node("adaptive").params["by"] = "memory"
    events = []
    ports = {n: 20000 + i for i, n in enumerate(TAP_PORT_NAMES)}
    baseline = load_pipeline("process-baseline-v1")

    def render(p):  # the candidate's real config (the measurer checks it before asking for a restart)
        return render_otelcol_configs("e1", {"baseline": baseline, "candidate": p}, ports, ("candidate",),
                                      check=False)["candidate"]

    loop = ClosedLoop(candidate, render, num_cpus=1, running=render(candidate))
    m = ScrapeMeasurer("e1", {"baseline": load_pipeline("process-baseline-v1"), "candidate": candidate},
                       {"baseline": Endpoints("http://b/metrics", "http://b/tel"),
                        "candidate": Endpoints("http://c/metrics", "http://c/tel")},
                       interval_s=5, policy=POLICY, reader=StaticReader([ROWS]), fetch=served.__getitem__,
                       clock=lambda: now[0], tap=Endpoints("http://t/metrics", "http://t/tel"), loop=loop,
                       data_dir=tmp_path, on_event=lambda kind, d: events.append((kind, d)))  # fmt: skip
    m.start_servers()
    assert len(m.tick(T)) == 2
    assert events[-1][0] == "retune" and events[-1][1]["restart"] is True
    row = events[-1][1]["nodes"]["adaptive"]["test-host"]
    assert row["achieved"] == row["baseline_series"] == 70.0 and row["budget"] == 17.5
    assert request_path(tmp_path, "e1", "candidate").is_file()
    assert "value_int >= " in next_config_path(tmp_path, "e1", "candidate").read_text()  # per-host memory threshold
    now[0] = 5.0
    assert m.tick(T) == []  # the candidate is still the old process (up 100 s)
    now[0] = 10.0
    served["http://c/tel"] = tel(0.1) + up.replace("{up}", "3")  # restarted 3 s ago, exported again
    b, c = m.tick(T)
    assert c.collector_cpu_pct is None  # a new process: no CPU delta across the restart
    assert len(events) == 2
