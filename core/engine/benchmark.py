"""Engine benchmark: every built-in template on a simulated fleet, timed and measured.

The parent process simulates the fleet once (two scrapes, so utilisation exists), tunes
every template on it and saves the last scrape's resource frame (``nodes × procs`` rows =
``nodes × procs × 7`` series) with the tuned pipelines to a temporary directory. Each
template is then evaluated in its **own subprocess pinned to one CPU**: peak RSS is that
process's high-water mark (``VmHWM``) after the input is loaded and the mark reset, so
one template's garbage never inflates another's figure. The scaling table times all
templates in-process at ``nodes/100``, ``nodes/10`` and ``nodes`` hosts.

Run: ``phoenix bench [--nodes 1000 --procs 500] --json`` or ``python bench/engine.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from core.machine import machine as host_machine

REPEATS = 3


def _pin_one_cpu() -> None:
    """Evaluate on one core, as the target says; keep pyarrow's pool at one thread too."""
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(nodes: int, procs: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Simulate, build the frame, tune every template; save inputs for the workers."""
    from core.catalog.frame import ResourceFrame, from_snapshot
    from core.catalog.process_metrics import DEFAULT_METRICS
    from core.catalog.templates import TEMPLATE_NAMES, get_template
    from core.engine.expand import count_series
    from core.engine.fleet import generate_fleet
    from core.engine.tuning import tune

    t0 = time.perf_counter()
    snapshot = generate_fleet(nodes, procs, seed=seed, scrapes=2)
    t1 = time.perf_counter()
    frame = from_snapshot(snapshot)
    t2 = time.perf_counter()
    del snapshot
    last = ResourceFrame(frame.scrape(-1).df.reset_index(drop=True).assign(scrape=0))
    tuned = {}
    tune_seconds = {}
    for name in TEMPLATE_NAMES:
        s = time.perf_counter()
        tuned[name] = tune(get_template(name), frame, source="bench fleet").to_dict()
        tune_seconds[name] = round(time.perf_counter() - s, 3)
    with open(workdir / "frame.pkl", "wb") as fh:
        pickle.dump(last.df, fh, protocol=pickle.HIGHEST_PROTOCOL)
    (workdir / "pipelines.json").write_text(json.dumps(tuned))
    return {
        "series_in": count_series(last, DEFAULT_METRICS),
        "processes": len(last),
        "simulate_seconds": round(t1 - t0, 3),
        "frame_build_seconds": round(t2 - t1, 3),
        "tune_seconds": tune_seconds,
    }


def worker(workdir: Path, name: str) -> dict[str, Any]:
    """Evaluate one template REPEATS times on one core; report time and peak memory."""
    import gc

    _pin_one_cpu()
    from core.catalog.frame import ResourceFrame
    from core.domain.pipeline import Pipeline
    from core.engine.evaluate import evaluate

    with open(workdir / "frame.pkl", "rb") as fh:
        frame = ResourceFrame(pickle.load(fh))
    pipeline = Pipeline.from_dict(json.loads((workdir / "pipelines.json").read_text())[name])
    from core.catalog.kernel_ops import clear_label_cache

    evaluate(pipeline, ResourceFrame(frame.df.iloc[:50].reset_index(drop=True)))  # import everything once
    gc.collect()
    input_mb = (_status_kb("VmRSS") or 0) / 1024
    reset = _reset_peak()
    times = []
    series_out = 0
    for _ in range(REPEATS):
        clear_label_cache()  # no help from the previous run: each run converts labels anew
        start = time.perf_counter()
        result = evaluate(pipeline, frame)
        times.append(time.perf_counter() - start)
        series_out = result.series_out()
        del result
        gc.collect()
    return {
        "seconds": round(statistics.median(times), 4),
        "seconds_min": round(min(times), 4),
        "series_out": series_out,
        "peak_rss_mb": round(_peak_mb(), 1),
        "input_rss_mb": round(input_mb, 1),
        "peak_reset": reset,
    }


def _run_worker(workdir: Path, name: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "core.engine.benchmark", "--worker", str(workdir), name],
        capture_output=True, text=True, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["worker failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scaling(nodes: int, procs: int, seed: int) -> list[dict[str, Any]]:
    """Seconds per template at three sizes (in-process, one core) to show linear cost."""
    from core.catalog.frame import ResourceFrame, from_snapshot
    from core.catalog.kernel_ops import clear_label_cache
    from core.catalog.templates import TEMPLATE_NAMES, get_template
    from core.engine.evaluate import evaluate
    from core.engine.fleet import generate_fleet
    from core.engine.tuning import tune

    rows = []
    sizes = sorted({max(1, nodes // 100), max(1, nodes // 10), nodes})
    for n in sizes:
        frame = from_snapshot(generate_fleet(n, procs, seed=seed, scrapes=2))
        last = ResourceFrame(frame.scrape(-1).df.reset_index(drop=True).assign(scrape=0))
        row: dict[str, Any] = {"nodes": n, "procs": procs, "series_in": len(last) * 7, "seconds": {}}
        for name in TEMPLATE_NAMES:
            pipeline = tune(get_template(name), frame)
            best = min(_timed(lambda p=pipeline, f=last: (clear_label_cache(), evaluate(p, f))) for _ in range(2))
            row["seconds"][name] = round(best, 4)
        row["total_seconds"] = round(sum(row["seconds"].values()), 4)
        rows.append(row)
    base = rows[0]
    for row in rows:
        factor = row["series_in"] / base["series_in"]
        row["seconds_per_million_series"] = round(row["total_seconds"] / row["series_in"] * 1e6, 4)
        row["size_factor"] = round(factor, 2)
    return rows


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(nodes: int = 1000, procs: int = 500, seed: int = 42, with_scaling: bool = True) -> dict[str, Any]:
    from core.catalog.templates import TEMPLATE_NAMES

    with tempfile.TemporaryDirectory(prefix="phoenix-bench-") as tmp:
        workdir = Path(tmp)
        info = prepare(nodes, procs, seed, workdir)
        templates = {name: _run_worker(workdir, name) for name in TEMPLATE_NAMES}
    report: dict[str, Any] = {
        "series_in": info["series_in"],
        "nodes": nodes,
        "procs": procs,
        "templates": templates,
        "setup": {k: info[k] for k in ("simulate_seconds", "frame_build_seconds", "tune_seconds")},
        "machine": machine(),
    }
    if with_scaling:
        _pin_one_cpu()
        report["scaling"] = scaling(nodes, procs, seed)
    return report


def machine() -> dict[str, Any]:
    return {**host_machine(), "evaluation_cpus": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("DIR", "TEMPLATE"), help=argparse.SUPPRESS)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-scaling", action="store_true")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(Path(args.worker[0]), args.worker[1])))
        return 0
    print(json.dumps(run(args.nodes, args.procs, args.seed, not args.no_scaling), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
