"""Page speed benchmark: each page's script run under AppTest against a seeded database.

    .venv/bin/python bench/pages.py [--experiments 10000 --versions 1000] [--runs 15] [--json]

Seeds a fresh SQLite database with ``phoenix demo seed`` (unless ``--data-dir`` points at
one already seeded), then runs every page once to warm caches and ``--runs`` more times,
timing ``AppTest.run()``. Target: median ≤ 300 ms per page. Not a unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_MS = 300.0


def pages(latest_exp: str, saved_pipeline: str) -> list[tuple[str, str, dict[str, str]]]:
    return [
        ("overview", "overview.py", {}),
        ("builder", "builder.py", {"pipeline": "process-topk-v1"}),
        ("builder (saved version)", "builder.py", {"pipeline": saved_pipeline, "version": "1"}),
        ("catalogue", "catalogue.py", {}),
        ("wizard", "wizard.py", {}),
        ("experiments (picker)", "experiment.py", {}),
        ("experiment", "experiment.py", {"id": latest_exp}),
        ("cost explorer", "cost_explorer.py", {}),
        ("settings", "settings.py", {}),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=10_000)
    ap.add_argument("--versions", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--data-dir", help="an already seeded PHOENIX_DATA_DIR (skips seeding)")
    ap.add_argument("--cold", action="store_true", help="clear st.cache_data before every run (no TTL hits)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    data = Path(args.data_dir or tempfile.mkdtemp(prefix="phoenix-bench-"))
    os.environ.update({"PHOENIX_DATA_DIR": str(data), "PHOENIX_DATABASE_URL": f"sqlite:///{data}/phoenix.db",
                       "PHOENIX_RUNTIME": "memory", "PHOENIX_EMBEDDED_SCHEDULER": "false"})
    from core.bootstrap import bootstrap
    from core.commands.demo import seed

    svc = bootstrap()
    seed_s = None
    if not args.data_dir:
        t = time.perf_counter()
        seed(svc, args.experiments, args.versions, 50)
        seed_s = time.perf_counter() - t
    from core.domain.accounts import SYSTEM_SCHEDULER

    latest = svc.experiments.list(SYSTEM_SCHEDULER, states=["Completed"], limit=1)[0].id
    with svc.uow() as uow:
        saved = next(p.name for p in uow.pipelines.list_pipelines() if p.latest_version)
    counts = svc.experiments.counts_by_state(SYSTEM_SCHEDULER)
    svc.close()

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    results = []
    for label, file, qp in pages(latest, saved):
        at = AppTest.from_file(str(ROOT / "pages" / file), default_timeout=120)
        at.query_params.update(qp)
        at.run()  # warm: imports, bootstrap, caches
        if at.exception:
            raise SystemExit(f"{label}: {at.exception[0].message}")
        times = []
        for _ in range(args.runs):
            if args.cold:
                st.cache_data.clear()
            t = time.perf_counter()
            at.run()
            times.append((time.perf_counter() - t) * 1000)
        med = statistics.median(times)
        results.append({"page": label, "median_ms": round(med, 1), "p90_ms": round(sorted(times)[int(0.9 * len(times)) - 1], 1),
                        "min_ms": round(min(times), 1), "ok": med <= TARGET_MS})
    out = {"experiments": sum(counts.values()), "by_state": counts, "pipeline_versions": args.versions,
           "seed_seconds": None if seed_s is None else round(seed_s, 1), "runs": args.runs,
           "cache": "cleared before every run" if args.cold else "warm (cached reads within their TTL)",
           "target_median_ms": TARGET_MS, "pages": results}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['experiments']:,} experiments, {args.versions:,} pipeline versions; {args.runs} runs per page; "
              f"cache {out['cache']}")
        print(f"{'page':28} {'median ms':>10} {'p90 ms':>8} {'min ms':>8}")
        for r in results:
            print(f"{r['page']:28} {r['median_ms']:>10} {r['p90_ms']:>8} {r['min_ms']:>8} "
                  f"{'ok' if r['ok'] else 'SLOW'}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
