"""The collector emulator on fake scrapes (no psutil, no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.domain.critical import policy_from_rules
from core.engine.hostsnapshot import StaticReader
from core.runtime.collector import CollectorEmulator, identical_input
from core.store.refs import load_pipeline


def proc(pid: int, name: str, cpu: float, mem: int) -> dict:
    return {"pid": pid, "parent_pid": 1, "executable_name": name, "executable_path": f"/usr/bin/{name}",
            "command": name, "command_line": f"{name} --serve", "owner": "app", "cpu_time_user": cpu,
            "cpu_time_system": cpu / 2, "cpu_time_wait": 0.0, "memory_usage": mem, "memory_virtual": 4 * mem,
            "disk_io_read": 0, "disk_io_write": 0}  # fmt: skip


def scrapes():
    base = [proc(100 + i, f"svc{i}", 1.0 + i, (i + 1) * 1_000_000) for i in range(30)] + [proc(5, "postgres", 1, 10**8)]
    later = [{**p, "cpu_time_user": p["cpu_time_user"] + 0.5 * (p["pid"] % 3)} for p in base]
    churned = [p for p in later if p["pid"] != 101] + [proc(999, "batch", 0.1, 10**6)]
    return [base, later, churned]


def make(events=None, sink=None):
    pol = policy_from_rules([{"match": "executable_name", "pattern": "^postgres$", "priority": "critical"}])
    return CollectorEmulator(
        "e1", load_pipeline("process-baseline-v1"), load_pipeline("process-topk-v1"), interval_s=5, policy=pol,
        reader=StaticReader(scrapes()), sink=sink, on_event=(lambda k, d: events.append((k, d))) if events is not None else None,
    )  # fmt: skip


def test_identical_input_reduction_coverage_and_churn():
    got = []
    events = []
    em = make(events, sink=got.extend)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for k in range(3):
        em.tick(t0 + timedelta(seconds=5 * k))
    assert len(got) == 6 and identical_input(got)
    b = [s for s in got if s.variant == "baseline"]
    c = [s for s in got if s.variant == "candidate"]
    assert [s.processes_seen for s in b] == [31, 31, 31]
    assert all(x.series > y.series > 0 for x, y in zip(b, c, strict=True))  # top-K keeps fewer
    assert b[0].series == 31 * 7  # every process: 7 series under default metrics
    assert all(s.critical_coverage_pct == 100.0 for s in got)
    assert all(s.bytes > 0 and s.datapoints == s.series for s in got)
    # third scrape: pid 101 left and pid 999 arrived → 7 series removed and 7 created for baseline
    assert (b[2].series_created, b[2].series_removed) == (7, 7)
    assert b[0].series_created == b[0].series and b[0].series_removed == 0
    # top-K was tuned from the live snapshot and reported
    assert events and events[0][0] == "retune" and events[0][1]["variant"] == "candidate"


def test_self_telemetry_counts_accumulate():
    em = make()
    em.tick()
    em.tick()
    tel = em.variants["candidate"].state.telemetry
    assert tel.accepted_points == 2 * 31 * 7
    assert sum(tel.exporters.values()) > 0 and tel.cpu_seconds >= 0
    ins = {p: v[0] for p, v in tel.processors.items()}
    outs = {p: v[1] for p, v in tel.processors.items()}
    assert any(outs[p] < ins[p] for p in ins)  # some processor drops series


def test_memory_is_attributed_per_variant_not_shared():
    """Both variants share one process; each sample adds that variant's own working memory,
    so the baseline (all series rendered) needs measurably more than the top-K candidate."""
    got = []
    em = make(sink=got.extend)
    for _ in range(3):
        em.tick()
    b = [s.collector_rss_mb for s in got if s.variant == "baseline"]
    c = [s.collector_rss_mb for s in got if s.variant == "candidate"]
    assert all(x > 0 and y > 0 for x, y in zip(b, c, strict=True))
    assert all(x > y for x, y in zip(b, c, strict=True))  # not one shared figure for both
