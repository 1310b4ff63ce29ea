"""Kernel tests on hand-made snapshots: every expected number is computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.catalog.process_metrics import DEFAULT_METRICS
from core.engine.evaluate import evaluate
from core.engine.expand import attributes_json, count_series, expand, series_per_row
from core.engine.tuning import fleet_threshold, kth_largest_per_host, learn_names, thresholds_for, tune
from tests.unit.engine_data import POLICY, GiB, MiB, frame, pipeline, proc, two_scrapes

CLASSIFY = ("classify", "priority_classifier", {})
# Validation refuses include/exclude lists that would never scrape a critical name.
NGINX_CRITICAL = [{"match": "executable_name", "pattern": "^nginx$", "priority": "critical"}]


def out_rows(result, scrape=-1):
    df = result.output.df
    n = result.input.n_scrapes
    return df[df["scrape"] == (scrape % n)]


# ---------------------------------------------------------------- frame and hostmetrics


def test_utilization_is_delta_cpu_over_delta_wall_times_cpus():
    rows = two_scrapes([proc("a", 10, "x", num_cpus=4), proc("a", 11, "y", num_cpus=4)], dt=10.0,
                       cpu_delta={10: 8.0})
    f = frame(rows)
    last = f.df[f.df["scrape"] == 1].set_index("process.pid")
    assert last.loc[10, "cpu_utilization_user"] == pytest.approx(8.0 / (10.0 * 4))
    assert last.loc[11, "cpu_utilization_user"] == 0.0
    first = f.df[f.df["scrape"] == 0]
    assert first["cpu_utilization_user"].isna().all()  # no point on a pid's first scrape


def test_reused_pid_with_another_executable_gets_no_utilization():
    rows = [proc("a", 10, "x", ts=0.0, user=50.0), proc("a", 10, "other", ts=10.0, user=1.0)]
    f = frame(rows)
    assert f.df["cpu_utilization_user"].isna().all()


def test_baseline_is_seven_series_per_process_and_io_errors_drop_disk_io():
    f = frame([proc("a", 1, "x"), proc("a", 2, "y"), proc("b", 3, "z", read=None, write=None)])
    assert list(series_per_row(f, DEFAULT_METRICS)) == [7, 7, 5]
    result = evaluate(pipeline(), f)
    assert result.series_out() == 19


def test_hostmetrics_include_exclude_and_toggles():
    f = frame([proc("a", 1, "nginx", threads=4), proc("a", 2, "nginx-helper", threads=2),
               proc("a", 3, "java", threads=30)])
    strict = pipeline(receiver={"include_names": ["nginx", "java"], "match_type": "strict",
                                "metrics": {"process.threads": True, "process.memory.virtual": False},
                                "resource_attributes": {"process.command_line": False}}, policy=NGINX_CRITICAL)
    r = evaluate(strict, f)
    names = sorted(out_rows(r)["process.executable.name"].astype(str))
    assert names == ["java", "nginx"]
    # 3 cpu + 1 memory + 2 disk + 1 threads = 7 per process (virtual off, threads on)
    assert r.series_out() == 14
    assert out_rows(r)["process.command_line"].isna().all()
    regexp = pipeline(receiver={"include_names": ["^nginx"], "exclude_names": ["helper"]}, policy=NGINX_CRITICAL)
    r = evaluate(regexp, f)
    assert list(out_rows(r)["process.executable.name"].astype(str)) == ["nginx"]
    assert r.ctx.collection_interval_s == 10.0


# ---------------------------------------------------------------- classifier


def test_classifier_first_match_wins_default_keep_and_drop():
    policy = [
        {"match": "command_line", "pattern": "kafka", "priority": "critical"},
        {"match": "executable_name", "pattern": "^java$", "priority": "high"},
        {"match": "owner", "pattern": "^batch$", "priority": "medium"},
    ]
    f = frame([proc("a", 1, "java", cmdline="java kafka.Kafka"), proc("a", 2, "java"),
               proc("a", 3, "cron", owner="batch"), proc("a", 4, "bash")])
    p = pipeline(("classify", "priority_classifier", {"keep_priorities": ["high"], "drop_priorities": ["low"]}),
                 policy=policy)
    r = evaluate(p, f)
    df = out_rows(r).set_index("process.pid")
    assert df["phoenix.priority"].astype(str).to_dict() == {1: "critical", 2: "high", 3: "medium"}
    assert df["phoenix.keep"].astype(object).where(df["phoenix.keep"].notna(), None).to_dict() == {
        1: None, 2: "true", 3: None}


def test_classifier_never_drops_critical_even_when_listed_class_matches():
    policy = [{"match": "executable_name", "pattern": "^postgres$", "priority": "critical"}]
    f = frame([proc("a", 1, "postgres"), proc("a", 2, "bash")])
    p = pipeline(("classify", "priority_classifier", {"drop_priorities": ["low", "medium", "high"]}),
                 policy=policy)
    r = evaluate(p, f)
    assert list(out_rows(r)["process.pid"]) == [1]


# ---------------------------------------------------------------- thresholds


def test_resource_filter_marks_by_memory_or_cpu_and_drops_the_rest():
    rows = two_scrapes([
        proc("a", 1, "postgres", rss=1 * MiB),     # critical: stays although small
        proc("a", 2, "big", rss=600 * MiB),        # memory >= 500 MiB
        proc("a", 3, "busy", rss=1 * MiB),         # cpu 0.5 >= 0.3
        proc("a", 4, "idle", rss=1 * MiB),         # dropped
    ], dt=10.0, cpu_delta={3: 5.0, 4: 1.0})
    p = pipeline(CLASSIFY, ("filter", "resource_filter", {"by": "combined", "cpu_utilization": 0.3,
                                                          "memory_bytes": 500 * MiB, "action": "drop"}),
                 receiver={"metrics": {"process.cpu.utilization": True}}, policy=POLICY)
    r = evaluate(p, frame(rows))
    assert sorted(out_rows(r)["process.pid"]) == [1, 2, 3]
    # The first scrape has no utilisation points, so "busy" is not marked there.
    assert sorted(out_rows(r, 0)["process.pid"]) == [1, 2]
    # 7 default + 3 utilisation series each on the last scrape
    assert r.series_out() == 30


def test_cpu_threshold_cannot_match_when_utilization_is_disabled():
    # Validation refuses such a graph; the kernel alone still mirrors the collector.
    from core.catalog.eval_context import EvalContext
    from core.catalog.resource_filter import NODE as RESOURCE_FILTER

    rows = two_scrapes([proc("a", 3, "busy", rss=1 * MiB)], cpu_delta={3: 9.0})
    out = RESOURCE_FILTER.kernel(frame(rows), {"by": "cpu", "cpu_utilization": 0.1, "action": "drop"}, EvalContext())
    assert len(out) == 0  # the collector never sees a utilisation point to compare


def test_kth_largest_with_ties_and_short_hosts():
    values = np.array([100.0, 90.0, 90.0, 80.0, 5.0, 7.0])
    hosts = np.array([0, 0, 0, 0, 1, 1])
    assert list(kth_largest_per_host(values, hosts, 2)) == [90.0, 5.0]  # host 1 has 2: its smallest
    assert list(kth_largest_per_host(values, hosts, 3)) == [90.0, 5.0]
    assert fleet_threshold(values, hosts, 2) == pytest.approx((90.0 + 5.0) / 2)


def test_topk_threshold_keeps_ties_and_reports_achieved_k():
    mems = [100, 90, 90, 80, 70]
    rows = [proc("a", i + 1, f"p{i}", rss=m * MiB) for i, m in enumerate(mems)]
    rows += [proc("b", 10 + i, f"q{i}", rss=m * MiB) for i, m in enumerate([50, 40, 30])]
    rows.append(proc("a", 99, "postgres", rss=1 * MiB))
    p = pipeline(CLASSIFY, ("topk", "topk", {"k": 2, "by": "memory", "action": "drop"}), policy=POLICY)
    f = frame(rows)
    tuned = tune(p, f)
    computed = tuned.node("topk").params["computed"]
    # host a: 2nd largest = 90 MiB; host b: 40 MiB; median of the two hosts
    assert computed["memory_bytes"] == math.floor((90 * MiB + 40 * MiB) / 2)
    r = evaluate(tuned, f)
    kept = sorted(out_rows(r)["process.pid"])
    assert kept == [1, 2, 3, 4, 5, 99]  # all of host a ≥ 65 MiB (ties included), none of b; critical
    details = next(n for n in r.nodes if n.node_id == "topk").details
    assert details["achieved_k"] == {"min": 0, "median": 2.5, "max": 5}
    assert details["thresholds"]["memory_bytes"] == computed["memory_bytes"]


def test_topk_combined_uses_half_k_for_each_threshold():
    rows = two_scrapes([proc("a", i, f"p{i}", rss=(10 - i) * MiB) for i in range(1, 9)],
                       cpu_delta={i: float(i) for i in range(1, 9)})
    p = pipeline(CLASSIFY, ("topk", "topk", {"k": 4, "by": "combined"}),
                 receiver={"metrics": {"process.cpu.utilization": True}}, policy=POLICY)
    f = frame(rows)
    r = evaluate(p, f, stop_before="topk")
    c = thresholds_for(r.output, r.ctx, "combined", 4)
    assert c["memory_bytes"] == 8 * MiB  # 2nd largest of 9..2 MiB
    assert c["cpu_utilization"] == pytest.approx(0.7)  # 2nd largest of 0.1..0.8


def test_topk_k_zero_never_matches():
    f = frame([proc("a", 1, "x", rss=GiB)])
    p = pipeline(CLASSIFY, ("topk", "topk", {"k": 0, "by": "memory", "action": "drop"}), policy=POLICY)
    r = evaluate(tune(p, f), f)
    assert r.series_out() == 0


def test_adaptive_k_from_budget():
    # 1 host, critical postgres (7 series), 10 others; rollup adds one 'other' group (7).
    # A saved pipeline's absolute budget (40) is a cap: with budget_ratio 1 (77 series) it wins.
    rows = [proc("a", 1, "postgres")] + [proc("a", 10 + i, f"w{i}", rss=(i + 1) * MiB) for i in range(10)]
    p = pipeline(CLASSIFY, ("adapt", "adaptive", {"series_budget_per_host": 40, "budget_ratio": 1.0, "by": "memory"}),
                 ("roll", "rollup", {}), policy=POLICY)
    f = frame(rows)
    tuned = tune(p, f)
    c = tuned.node("adapt").params["computed"]
    host = c["hosts"]["a"]
    assert host["base_series"] == 14.0 and host["budget"] == 40.0
    assert c["k"] == host["k"] == (40 - 14) // 7 == 3
    r = evaluate(tuned, f)
    assert r.series_out() == 14 + 3 * 7


def test_adaptive_budget_is_a_share_of_the_hosts_baseline_and_the_cap_wins_when_smaller():
    rows = [proc("a", 1, "postgres")] + [proc("a", 10 + i, f"w{i}", rss=(i + 1) * MiB) for i in range(19)]
    base = 20 * 7  # baseline: 7 default series per process
    for params, budget in (({}, 0.25 * base), ({"budget_ratio": 0.5}, 0.5 * base),
                           ({"budget_ratio": 0.5, "series_budget_per_host": 30}, 30.0),
                           ({"series_budget_per_host": 800}, 0.25 * base)):
        p = pipeline(CLASSIFY, ("adapt", "adaptive", {"by": "memory", **params}), ("roll", "rollup", {}),
                     policy=POLICY)
        tuned = tune(p, frame(rows))
        host = tuned.node("adapt").params["computed"]["hosts"]["a"]
        assert host["budget"] == budget, params
        assert host["k"] == max(0, int((budget - 14) // 7)), params
        assert evaluate(tuned, frame(rows)).series_out() <= budget


# ---------------------------------------------------------------- intelligent


def test_intelligent_learns_resource_share_names_and_keeps_them():
    rows = [proc("a", 1, "postgres", rss=10 * MiB), proc("a", 2, "hog", rss=500 * MiB)]
    rows += [proc("a", 10 + i, "tiny", rss=1 * MiB) for i in range(20)]
    f = frame(rows)
    learned = learn_names(evaluate(pipeline(CLASSIFY, policy=POLICY), f).output,
                          {"resource_share_pct": 10.0, "anomaly_top": 0, "max_names": 5})
    assert learned["names"] == ["hog"]  # 500 of 530 MiB; tiny = 20/530 < 10%; postgres is critical anyway
    p = pipeline(CLASSIFY, ("smart", "intelligent", {"learned": {"names": ["hog"]}}), ("roll", "rollup", {}),
                 policy=POLICY)
    r = evaluate(p, f)
    names = sorted(out_rows(r)["process.executable.name"].astype(str))
    assert names == ["hog", "other", "postgres"]


# ---------------------------------------------------------------- rollup


def test_rollup_sums_per_host_and_keeps_critical_and_kept_rows():
    rows = [
        proc("a", 1, "postgres", user=100.0, rss=10 * MiB),
        proc("a", 2, "java", user=3.0, system=1.0, rss=20 * MiB, read=10.0, write=1.0),
        proc("a", 3, "bash", user=4.0, system=2.0, rss=30 * MiB, read=20.0, write=2.0),
        proc("a", 4, "bash", user=5.0, system=3.0, rss=40 * MiB, read=None, write=None),
        proc("b", 5, "bash", user=7.0, system=0.0, rss=50 * MiB, read=1.0, write=1.0),
    ]
    p = pipeline(("classify", "priority_classifier", {"keep_priorities": ["high"]}), ("roll", "rollup", {}),
                 policy=POLICY)
    r = evaluate(p, frame(rows))
    df = out_rows(r)
    roll = df[df["phoenix.rollup"].notna()].set_index("host_name")
    assert roll.loc["a", "cpu_time_user"] == 9.0 and roll.loc["a", "cpu_time_system"] == 5.0
    assert roll.loc["a", "memory_usage"] == 70 * MiB
    assert roll.loc["a", "disk_io_read"] == 20.0  # the member without io data adds nothing
    assert roll.loc["a", "members"] == 2 and roll.loc["b", "members"] == 1
    assert str(roll.loc["a", "process.executable.name"]) == "other"
    assert roll["process.pid"].isna().all() and roll["phoenix.priority"].isna().all()
    individual = sorted(df[df["phoenix.rollup"].isna()]["process.pid"])
    assert individual == [1, 2]
    # series: postgres 7 + java 7 + rollup a 7 + rollup b 7
    assert r.series_out() == 28
    series = r.output_series()
    total_user = series[(series["metric"] == "process.cpu.time") & (series["state"] == "user")]["value"].sum()
    assert total_user == 100.0 + 3.0 + 4.0 + 5.0 + 7.0


def test_rollup_by_name_and_by_category_with_default():
    rows = [proc("a", 1, "bash"), proc("a", 2, "bash"), proc("a", 3, "sh"), proc("a", 4, "gunicorn")]
    by_name = evaluate(pipeline(CLASSIFY, ("roll", "rollup", {"group_by": "executable_name"}), policy=POLICY),
                       frame(rows))
    df = out_rows(by_name)
    assert sorted(zip(df["process.executable.name"].astype(str), df["members"], strict=True)) == [
        ("bash", 2), ("gunicorn", 1), ("sh", 1)]
    cat = evaluate(pipeline(CLASSIFY, ("roll", "rollup", {"group_by": "category", "categories": {"shell": "sh$"},
                                                          "default_category": "rest"}), policy=POLICY),
                   frame(rows))
    df = out_rows(cat)
    assert sorted(zip(df["process.executable.name"].astype(str), df["members"], strict=True)) == [
        ("rest", 1), ("shell", 3)]


def test_second_rollup_does_not_regroup_rollup_rows():
    rows = [proc("a", 1, "bash"), proc("a", 2, "sh")]
    p = pipeline(CLASSIFY, ("r1", "rollup", {"group_by": "executable_name"}), ("r2", "rollup", {}), policy=POLICY)
    r = evaluate(p, frame(rows))
    assert sorted(out_rows(r)["process.executable.name"].astype(str)) == ["bash", "sh"]


# ---------------------------------------------------------------- attributes, metrics, interval, detection


def test_attribute_reduction_exempts_critical_unless_all():
    rows = [proc("a", 1, "postgres"), proc("a", 2, "bash")]
    keys = ["process.command_line", "process.owner"]
    r = evaluate(pipeline(CLASSIFY, ("attrs", "attribute_reduction", {"delete_keys": keys}), policy=POLICY),
                 frame(rows))
    df = out_rows(r).set_index("process.pid")
    assert df.loc[1, "process.owner"] == "app" and df.loc[2, "process.owner"] is not None
    assert df["process.command_line"].isna().tolist() == [False, True]
    r = evaluate(pipeline(CLASSIFY, ("attrs", "attribute_reduction", {"delete_keys": keys, "apply_to": "all"}),
                          policy=POLICY), frame(rows))
    assert out_rows(r)["process.owner"].isna().all()


def test_metric_selection_filter_mode_spares_critical_and_receiver_mode_does_not():
    rows = [proc("a", 1, "postgres"), proc("a", 2, "bash")]
    filt = pipeline(CLASSIFY, ("sel", "metric_selection", {"drop_metrics": ["process.disk.io"]}), policy=POLICY)
    assert evaluate(filt, frame(rows)).series_out() == 7 + 5
    keep = pipeline(CLASSIFY, ("sel", "metric_selection", {"keep_metrics": ["process.memory.usage"]}),
                    policy=POLICY)
    assert evaluate(keep, frame(rows)).series_out() == 7 + 1
    recv = pipeline(("sel", "metric_selection", {"mode": "receiver", "keep_metrics": ["process.cpu.time"]}),
                    CLASSIFY, policy=POLICY)
    r = evaluate(recv, frame(rows))
    assert r.enabled_metrics == {"process.cpu.time"}
    assert r.series_out() == 6


def test_interval_lowers_data_points_not_series():
    rows = [proc("a", 1, "bash")]
    r = evaluate(pipeline(("iv", "interval", {"interval": "60s"}), receiver={"collection_interval": "10s"}),
                 frame(rows))
    assert r.ctx.export_interval_s == 60.0 and r.series_out() == 7
    r = evaluate(pipeline(("iv", "interval", {"interval": "5s"}), receiver={"collection_interval": "30s"}),
                 frame(rows))
    assert r.ctx.export_interval_s == 30.0


def test_resourcedetection_adds_host_name_and_series_attributes_are_sorted_json():
    r = evaluate(pipeline(("rd", "resourcedetection", {}), CLASSIFY, policy=POLICY), frame([proc("h1", 7, "bash")]))
    series = r.output_series()
    assert len(series) == 7 == count_series(r.output, r.enabled_metrics)
    attrs = attributes_json(series)
    first = json.loads(attrs.iloc[0])
    assert list(first) == sorted(first)
    assert first["host.name"] == "h1" and first["process.pid"] == 7 and first["state"] == "user"
    assert "phoenix.keep" not in first and first["phoenix.priority"] == "low"
    disk = series[series["metric"] == "process.disk.io"]
    assert sorted(disk["direction"].astype(str)) == ["read", "write"]


def test_expand_matches_counts_on_mixed_rows():
    f = frame([proc("a", 1, "x", threads=3), proc("a", 2, "y", read=None, write=None)])
    enabled = set(DEFAULT_METRICS) | {"process.threads"}
    series = expand(f, enabled)
    assert len(series) == int(series_per_row(f, enabled).sum()) == 8 + 5
    assert set(series["metric"].astype(str)) == enabled


def test_topk_on_one_host_passes_every_tie_of_the_kth_value():
    rows = [proc("a", i + 1, f"p{i}", rss=m * MiB) for i, m in enumerate([100, 90, 90, 80])]
    p = pipeline(CLASSIFY, ("topk", "topk", {"k": 2, "by": "memory", "action": "drop"}), policy=POLICY)
    f = frame(rows)
    tuned = tune(p, f)
    assert tuned.node("topk").params["computed"]["memory_bytes"] == 90 * MiB
    r = evaluate(tuned, f)
    assert sorted(out_rows(r)["process.pid"]) == [1, 2, 3]
    assert next(n for n in r.nodes if n.node_id == "topk").details["achieved_k"]["max"] == 3


def test_coverage_counts_critical_processes_that_lost_series():
    from core.domain.critical import policy_from_rules
    from core.engine.estimate import critical_coverage

    rows = [proc("a", 1, "postgres"), proc("a", 2, "bash"), proc("a", 3, "bash")]
    p = pipeline(CLASSIFY, ("roll", "rollup", {}), policy=POLICY)
    r = evaluate(p, frame(rows))
    assert critical_coverage(r, r.policy)["coverage_pct"] == 100.0
    # Measured against a stricter policy, the rolled-up bash processes are lost.
    stricter = policy_from_rules([{"match": "executable_name", "pattern": "^(postgres|bash)$",
                                   "priority": "critical"}])
    c = critical_coverage(r, stricter)
    assert (c["critical_processes"], c["covered"]) == (3, 1)
    assert c["coverage_pct"] == pytest.approx(100 / 3, abs=1e-3)


def test_estimate_churn_totals_and_contributors_by_hand():
    from core.engine.estimate import estimate

    first = [proc("a", 1, "bash", ts=0.0), proc("a", 2, "sh", ts=0.0)]
    second = [proc("a", 1, "bash", ts=10.0, user=12.0), proc("a", 3, "cron", ts=10.0, read=None, write=None),
              proc("a", 4, "cron", ts=10.0)]
    from tests.unit.engine_data import snapshot

    p = pipeline(CLASSIFY, ("roll", "rollup", {"group_by": "executable_name"}), policy=POLICY)
    r = estimate(p, snapshot(first + second), with_cost=False).report
    # in: pid 2 gone (7) + pid 3 new (5) + pid 4 new (7)
    assert r["churn"]["in"] == 19
    # out: "sh" group gone (7), "cron" group new (7); "bash" group stays
    assert r["churn"]["out"] == 14
    assert r["series_in"] == 7 + 5 + 7 and r["series_out"] == 14
    assert r["host_totals"]["cpu_time_seconds"]["in"] == 12.0 + 5 + 10.0 + 5 + 10.0 + 5
    assert r["host_totals"]["cpu_time_seconds"]["out_over_in"] == 1.0
    assert r["top_contributors"]["before"][0] == {"executable_name": "cron", "series": 12}
    assert {"executable_name": "cron", "series": 7} in r["top_contributors"]["after"]
    assert r["dpm_out"] == 14 * 60 / 10.0


def test_intelligent_learns_variable_processes_over_time_but_not_pools():
    from tests.unit.engine_data import snapshot

    rows = []
    cpu = {"spiky": [0.0, 1.0, 6.0], "steady": [0.0, 5.0, 10.0]}
    for s, ts in enumerate([0.0, 10.0, 20.0]):
        rows.append(proc("a", 1, "spiky", ts=ts, user=cpu["spiky"][s], rss=MiB))
        rows.append(proc("a", 2, "steady", ts=ts, user=cpu["steady"][s], rss=MiB))
        rows += [proc("a", 10 + i, "pool", ts=ts, user=[0.0, 1.0, 5.0][s], rss=MiB) for i in range(5)]
    p = pipeline(CLASSIFY, ("smart", "intelligent", {"resource_share_pct": 50.0, "anomaly_top": 2}),
                 ("roll", "rollup", {}), policy=POLICY)
    learned = tune(p, snapshot(rows)).node("smart").params["learned"]
    # spiky: utilisation 0.1 then 0.5 (std 0.2 = 6.7 % of the host's 3.0) ≥ 50 % / 10;
    # steady never varies; pool varies too but has 5 processes per host.
    assert learned["names"] == ["spiky"] and learned["anomaly_names"] == 1
    two = tune(p, snapshot(rows[: 2 * 7])).node("smart").params["learned"]
    assert two["names"] == [] and "three or more scrapes" in two["note"]
