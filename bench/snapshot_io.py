"""Benchmark the engine's data side: fleet generation, CSV write, CSV load+validate,
byte encodings and one psutil scrape of this host.

    .venv/bin/python bench/snapshot_io.py [--nodes 1000 --procs 500] [--json]

Target (issue 4): 500k processes × 2 scrapes (1M rows) parse + validate in a
few seconds. Prints the figures with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.machine import describe  # noqa: E402


def machine() -> str:
    return describe()


CPU_SECONDS: dict[str, float] = {}


def timed(fn, *args, **kwargs):
    """Wall seconds; the process CPU seconds go to CPU_SECONDS (robust on a shared machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    CPU_SECONDS[fn.__name__] = round(time.process_time() - cpu, 3)
    return out, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from core.catalog.frame import from_snapshot
    from core.catalog.process_metrics import DEFAULT_METRICS
    from core.engine import encoding
    from core.engine.expand import expand
    from core.engine.fleet import generate_fleet
    from core.engine.hostsnapshot import PsutilReader
    from core.engine.snapshot import load_snapshot, write_snapshot

    results: dict[str, object] = {"machine": machine(), "nodes": args.nodes, "procs": args.procs}
    frame, results["generate_s"] = timed(generate_fleet, args.nodes, args.procs, seed=0)
    results["rows"] = len(frame)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fleet.csv"
        _, results["write_csv_s"] = timed(write_snapshot, frame, path)
        results["csv_mb"] = round(path.stat().st_size / 1e6, 1)
        loaded, results["load_snapshot_s"] = timed(load_snapshot, path)
        assert len(loaded) == len(frame)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    # bytes per point on the baseline's last-scrape series of 20 hosts
    small = frame[frame["host_name"].cat.codes < 20]
    series = expand(from_snapshot(small), DEFAULT_METRICS)
    series = series[series["scrape"] == series["scrape"].max()].reset_index(drop=True)
    results["bytes_per_point"] = {
        enc: round(encoding.bytes_per_point(series, enc), 1) for enc in encoding.ENCODINGS
    }
    one_host = series[series["host_name"] == series["host_name"].iloc[0]]
    twenty_k = series.iloc[:20_000]
    _, results["render_prometheus_20k_series_s"] = timed(encoding.render_prometheus_text, twenty_k)
    results["render_prometheus_one_host_series"] = len(one_host)

    reader = PsutilReader()
    reader.read()
    rows, secs = timed(reader.read)
    results["psutil_scrape"] = {"processes": len(rows), "seconds": round(secs, 3)}
    for key in ("generate_s", "write_csv_s", "load_snapshot_s", "render_prometheus_20k_series_s"):
        results[key] = round(results[key], 3)  # type: ignore[arg-type]
    results["cpu_seconds"] = CPU_SECONDS
    results["load_average_1m"] = round(os.getloadavg()[0], 2)

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"machine: {results['machine']}")
        print(f"fleet {args.nodes} × {args.procs} × 2 scrapes = {results['rows']:,} rows")
        print(f"  generate_fleet     {results['generate_s']:>7} s")
        print(f"  write_snapshot     {results['write_csv_s']:>7} s  ({results['csv_mb']} MB CSV)")
        print(f"  load_snapshot      {results['load_snapshot_s']:>7} s  (parse + validate)")
        print(f"  peak RSS           {results['peak_rss_mb']:>7} MB")
        print(f"  render 20k series  {results['render_prometheus_20k_series_s']:>7} s  (Prometheus text)")
        print(f"  bytes per point    {results['bytes_per_point']}")
        print(f"  psutil scrape      {results['psutil_scrape']}")
        print(f"  CPU seconds        {results['cpu_seconds']}")
        print(f"  load average (1m)  {results['load_average_1m']} (other work on the machine inflates wall times)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
