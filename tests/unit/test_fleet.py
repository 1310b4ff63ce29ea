"""Fleet simulator: reproducible, contract-shaped and realistic."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from core.domain.errors import ValidationError
from core.engine.fleet import generate_fleet
from core.engine.snapshot import CSV_COLUMNS, normalise_snapshot

# Written independently of the simulator's own hint: what an SRE would call critical.
CRITICAL_NAMES = re.compile(
    r"^(postgres|mysqld|redis-server|mongod|nginx|envoy|haproxy|httpd|beam\.smp|nats-server|kubelet|"
    r"kube-proxy|containerd|containerd-shim-runc-v2|dockerd|runc|sshd|systemd)$"
)


@pytest.fixture(scope="module")
def fleet() -> pd.DataFrame:
    return generate_fleet(120, 400, seed=11)


def both_scrapes(df: pd.DataFrame) -> pd.DataFrame:
    a = df[df["scrape"] == 0]
    b = df[df["scrape"] == 1]
    return a.merge(b, on=["host_name", "pid"], how="inner", suffixes=("_0", "_1"))


def test_same_seed_same_frame_other_seed_other_frame():
    a = generate_fleet(5, 50, seed=3)
    b = generate_fleet(5, 50, seed=3)
    c = generate_fleet(5, 50, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a["cpu_time_user"].equals(c["cpu_time_user"])


def test_shape_names_and_contract(fleet):
    assert list(fleet.columns) == ["scrape", *CSV_COLUMNS]
    counts = fleet.groupby(["scrape", "host_name"], observed=True).size()
    assert (counts == 400).all() and len(counts) == 240
    hosts = sorted(fleet["host_name"].astype(str).unique())
    assert hosts[0] == "node-0001" and hosts[-1] == "node-0120"
    assert set(fleet["num_cpus"].unique()) <= {4, 8, 16, 32, 64}
    # The frame passes the same validation as an uploaded CSV and comes back unchanged.
    again = normalise_snapshot(fleet.drop(columns=["scrape"]))
    assert list(again.columns) == list(fleet.columns)
    for col in fleet.columns:
        if isinstance(fleet[col].dtype, pd.CategoricalDtype):
            assert (again[col].astype(str).to_numpy() == fleet[col].astype(str).to_numpy()).all(), col
        else:
            pd.testing.assert_series_equal(again[col], fleet[col])


def test_pids_unique_per_host_and_scrape_and_never_reused(fleet):
    assert not fleet.duplicated(["host_name", "scrape", "pid"]).any()
    identity = fleet.groupby(["host_name", "pid"], observed=True)["command_line"].nunique()
    assert (identity == 1).all()  # a pid seen twice is the same process
    first = fleet[fleet["pid"] == 1]
    assert (first["executable_name"] == "systemd").all() and len(first) == 240


def test_counters_never_decrease_and_cpu_fits_the_host(fleet):
    j = both_scrapes(fleet)
    for col in ("cpu_time_user", "cpu_time_system", "cpu_time_wait", "disk_io_read", "disk_io_write",
                "disk_operations_read", "paging_faults_minor", "context_switches_voluntary"):
        assert (j[f"{col}_1"] >= j[f"{col}_0"]).all(), col
    d_cpu = sum(j[f"{c}_1"] - j[f"{c}_0"] for c in ("cpu_time_user", "cpu_time_system", "cpu_time_wait"))
    d_wall = j["timestamp_1"] - j["timestamp_0"]
    assert (d_wall > 0).all()
    assert (d_cpu <= d_wall * j["num_cpus_0"] + 1e-9).all()
    assert (d_cpu > 0).any()


def test_short_lived_processes_exist_in_exactly_one_scrape(fleet):
    seen = fleet.groupby(["host_name", "pid"], observed=True)["scrape"].nunique()
    one = seen[seen == 1]
    share = len(one) / len(seen)
    # 3% of each scrape is short-lived: 2 × 12 per host / (388 + 24) distinct processes.
    assert 0.04 < share < 0.08
    churn = generate_fleet(20, 400, seed=11, profile="process-churn")
    seen_c = churn.groupby(["host_name", "pid"], observed=True)["scrape"].nunique()
    assert (seen_c == 1).mean() > 0.3


def test_cpu_and_memory_are_heavy_tailed(fleet):
    j = both_scrapes(fleet)
    rate = sum(j[f"{c}_1"] - j[f"{c}_0"] for c in ("cpu_time_user", "cpu_time_system"))
    top = rate.nlargest(len(rate) // 100).sum() / rate.sum()
    assert top > 0.3  # 1% of processes use more than 30% of the CPU
    rss = fleet.loc[fleet["scrape"] == 1, "memory_usage"]
    rss = rss[rss > 0]
    assert rss.nlargest(len(rss) // 100).sum() / rss.sum() > 0.15
    assert rss.max() / rss.median() > 100
    assert (rss % 4096 == 0).all()  # whole pages


def test_critical_share_is_realistic(fleet):
    last = fleet[fleet["scrape"] == 1]
    names = last["executable_name"].astype(str)
    crit = names.str.match(CRITICAL_NAMES) | last["command_line"].astype(str).str.contains("kafka.Kafka")
    assert 0.06 <= crit.mean() <= 0.11


def test_workers_have_unique_command_lines_and_kernel_threads_look_like_the_kernels(fleet):
    last = fleet[fleet["scrape"] == 1]
    workers = last[last["executable_name"] == "gunicorn"]
    assert len(workers) > 50
    assert not workers.duplicated(["host_name", "command_line"]).any()
    kthreads = last[last["executable_name"].astype(str).str.startswith(("kworker/", "ksoftirqd/", "migration/"))]
    assert len(kthreads) > 0
    assert (kthreads["executable_path"] == "").all() and (kthreads["command_line"] == "").all()
    assert (kthreads["memory_usage"] == 0).all() and (kthreads["parent_pid"] == 2).all()
    assert 0.2 < len(last[last["executable_path"] == ""]) / len(last) < 0.4


def test_high_cardinality_profile_has_more_unique_command_lines():
    real = generate_fleet(20, 300, seed=2)
    high = generate_fleet(20, 300, seed=2, profile="high-cardinality")

    def unique_share(df: pd.DataFrame) -> float:
        last = df[df["scrape"] == 1]
        return last.groupby("host_name", observed=True)["command_line"].nunique().sum() / len(last)

    assert unique_share(high) > unique_share(real) + 0.1


def test_more_scrapes_and_interval():
    df = generate_fleet(3, 30, seed=1, scrapes=4, interval_s=15.0)
    assert sorted(df["scrape"].unique()) == [0, 1, 2, 3]
    ts = df.groupby(["host_name", "scrape"], observed=True)["timestamp"].first().unstack()
    gaps = np.diff(ts.to_numpy(), axis=1)
    assert np.allclose(gaps, 15.0, atol=0.05)


def test_bad_arguments_are_reported_together():
    with pytest.raises(ValidationError) as exc:
        generate_fleet(0, -1, profile="nope")
    assert exc.value.problems == [
        "nodes must be at least 1, got 0",
        "procs must be at least 1, got -1",
        "unknown profile 'nope'; choose one of realistic, high-cardinality, process-churn",
    ]


def test_fleet_round_trips_through_the_csv_contract():
    import io

    from core.engine.snapshot import load_snapshot, write_snapshot

    frame = generate_fleet(6, 80, seed=9, profile="process-churn")
    buf = io.BytesIO()
    write_snapshot(frame, buf)
    again = load_snapshot(buf.getvalue())
    for col in frame.columns:
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            assert (again[col].astype(str).to_numpy() == frame[col].astype(str).to_numpy()).all(), col
        else:
            pd.testing.assert_series_equal(again[col], frame[col])
