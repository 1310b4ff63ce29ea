"""bench/collector_overhead.py at toy scale: the JSON's shape and that every process it measured
existed and was stopped (correctness, not timings).

It deploys a real experiment (tap + baseline + candidate ``phoenix-otelcol`` + the measuring
child) and an emulated one side by side; the binary is built when absent, as in
test_otelcol_real.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from core.otelcol import distribution
from core.runtime.local import OTELCOL_GOGC

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

ROLES = {"tap", "baseline", "candidate", "measurer", "emulator"}


def test_overhead_bench_tiny_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    binary = distribution.build().path
    out = tmp_path / "overhead.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "collector_overhead.py"), "--duration", "15", "--interval", "5",
         "--procs", "0", "--otelcol-bin", str(binary), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert res.returncode == 0 and out.exists(), res.stdout[-2000:] + res.stderr[-4000:]
    rep = json.loads(out.read_text())
    assert json.loads(res.stdout) == rep
    assert "real_managed = tap+baseline+candidate+measurer" in res.stderr  # the table

    for key in ("nproc", "cpu_model", "memory_gb"):
        assert rep["machine"][key]
    assert {"loadavg_1m_start", "loadavg_1m_end", "processes_min", "cpu_busy_pct_of_all_cores"} <= set(
        rep["host"]
    )
    assert rep["window_s"] >= 15 and rep["interval_s"] == 5
    assert rep["target"] == {"cpu_pct_of_one_core": 5.0, "rss_mb": 150.0}

    procs = rep["processes"]
    assert set(procs) == ROLES
    assert len({p["pid"] for p in procs.values()}) == len(ROLES)
    for role, p in procs.items():
        assert p["existed"] and p["alive_throughout"] and p["cleaned_up"], (role, p)
        assert p["cpu_pct_of_one_core"] is not None and p["cpu_pct_of_one_core"] >= 0
        assert p["rss_peak_mb"] > 0 and p["rss_mean_mb"] > 0 and p["uss_peak_mb"] > 0 and p["pss_peak_mb"] > 0
        if role in ("tap", "baseline", "candidate"):
            assert "phoenix-otelcol" in p["cmd"] and f"-{role}.yaml" in p["cmd"]
            assert p["self_telemetry"]["rss_peak_mb"] > 0
            assert p["self_telemetry"]["cpu_pct_of_one_core"] is not None
            assert p["go_env"] == {"GOGC": OTELCOL_GOGC}  # as the deployer spawns them (otelcol_env)
        else:
            assert "core.cli collector --experiment" in p["cmd"]
            assert ("--measure-otelcol" in p["cmd"]) == (role == "measurer")
        # gone for good (the bench reaped them; a reused PID would run something else)
        try:
            now = " ".join(psutil.Process(p["pid"]).cmdline())[:200]
        except psutil.Error:
            now = ""
        assert now != p["cmd"], (role, now)

    sets = rep["sets"]
    assert sets["real_collectors"]["processes"] == ["tap", "baseline", "candidate"]
    assert sets["real_managed"]["processes"] == ["tap", "baseline", "candidate", "measurer"]
    assert sets["emulator"]["processes"] == ["emulator"]
    for s in sets.values():
        assert s["rss_peak_mb"] >= max(procs[r]["rss_mean_mb"] for r in s["processes"])
        assert isinstance(s["meets_target"], bool)
    assert sets["real_collectors"]["self_telemetry"]["rss_sum_of_peaks_mb"] > 0
    for rt in ("real", "emulator"):
        for v in ("baseline", "candidate"):
            assert rep["reported_by_phoenix"][rt][v]["intervals"] >= 1
    assert rep["load_workers"] == 0 and rep["load_workers_left"] == 0
