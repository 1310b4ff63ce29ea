"""API speed: the REST API over 10,000 stored experiments, on SQLite and on PostgreSQL.

    .venv/bin/python bench/api.py [--experiments 10000] [--requests 200] [--databases sqlite,postgres]
        [--pg-url postgresql+psycopg://user@host:port/db] [--json] [--out FILE]

For each database: seed ``--experiments`` experiments (``phoenix demo seed``: every terminal
state, real results on the Completed ones, through the store in batches) plus measurement
samples on every tenth Completed one; start the real API (``phoenix api``'s app under
uvicorn, the memory runtime, no scheduler) on a loopback port in a subprocess; warm up; then
time ``--requests`` requests of each operation with one keep-alive client:

  list_first   GET /experiments?limit=50
  list_later   GET /experiments?limit=50&cursor=…   (the cursor of the 20th page)
  list_state   GET /experiments?state=Failed&limit=50
  get          GET /experiments/{id}                (random stored ids)
  create       POST /experiments                    (memory runtime: nothing deploys)
  cancel       POST /experiments/{id}/cancel        (If-Match: the ETag create answered)

Targets: p95 ≤ 50 ms for list and get, ≤ 100 ms for create and cancel. The rate limits are
raised for the bench server (one client far above 20 requests/s). Without ``--pg-url`` a
throwaway PostgreSQL is started (``initdb`` + ``pg_ctl``, as bench/load.py does) and removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.machine import machine  # noqa: E402

TARGETS_MS = {"list_first": 50.0, "list_later": 50.0, "list_state": 50.0, "get": 50.0, "create": 100.0,
              "cancel": 100.0}
LATER_PAGE = 20
PAGE = 50
BENCH_USER = "bench-api"

# The app of ``phoenix api`` with rate limits far above what one benchmark client sends.
SERVER = """
import sys, uvicorn
from core.api.app import create_app
from core.bootstrap import bootstrap
services = bootstrap()
app = create_app(services, rate_per_s=1_000_000.0, burst=1_000_000)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", server_header=False)
"""


def progress(message: str) -> None:
    """A line on stderr as each phase starts: at 10,000 experiments a run takes minutes."""
    print(f"[bench/api] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))]


def summarize(name: str, seconds: list[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    out = {"n": len(ms), "p50_ms": round(pct(ms, 50), 2), "p95_ms": round(pct(ms, 95), 2),
           "p99_ms": round(pct(ms, 99), 2), "max_ms": round(max(ms), 2), "target_p95_ms": TARGETS_MS[name]}
    out["meets_target"] = out["p95_ms"] <= TARGETS_MS[name]
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- databases


@contextlib.contextmanager
def sqlite_database(workdir: Path) -> Iterator[str]:
    yield f"sqlite:///{workdir / 'phoenix.db'}"


@contextlib.contextmanager
def postgres_database(server_url: str | None) -> Iterator[str]:
    """A scratch database on ``server_url``, or on a throwaway server when None; dropped afterwards."""
    sys.path.insert(0, str(ROOT / "bench"))
    import load  # bench/load.py: the throwaway PostgreSQL recipe and the admin helpers

    pg = None
    if server_url is None:
        pg = load.ThrowawayPostgres()
        server_url = pg.start()
    name = f"phoenix_api_bench_{uuid.uuid4().hex[:8]}"
    try:
        load._admin(server_url, f'CREATE DATABASE "{name}"')
        yield load._with_database(server_url, name)
    finally:
        with contextlib.suppress(Exception):
            load._admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if pg is not None:
            pg.stop()


# ---------------------------------------------------------------- seeding


def seed(url: str, workdir: Path, experiments: int, rng: random.Random) -> dict[str, Any]:
    """Migrate, seed, and return the ids, an API token and the seeding time."""
    from core.bootstrap import bootstrap
    from core.commands.demo import seed as demo_seed
    from core.domain.accounts import Actor, Role
    from core.domain.samples import MeasurementSample
    from core.settings import Settings
    from core.store.migrate import upgrade

    t0 = time.perf_counter()
    upgrade(url)
    svc = bootstrap(Settings(data_dir=workdir, database_url=url, gitops_repo=workdir / "gitops", runtime="memory",
                             embedded_scheduler=False))
    try:
        with svc.uow() as uow:
            uow.users.add(BENCH_USER, Role.ADMIN, "not-a-real-hash")  # signs in with the API token only
            uow.commit()
        user = Actor(BENCH_USER, Role.ADMIN, "cli")
        demo_seed(svc, experiments, versions=min(200, max(1, experiments // 50)), pipelines=20, seed=rng.randint(0, 9999))
        rows = svc.experiments.list(user, limit=experiments)
        completed = [r.id for r in rows if r.state == "Completed"]
        n_samples = 0
        with svc.uow() as uow:  # samples on every tenth Completed one: 12 intervals × 2 variants
            for eid in completed[::10]:
                exp = uow.experiments.get(eid)
                uow.samples.add_many(
                    MeasurementSample(eid, variant, (exp.started_at or exp.created_at) + timedelta(seconds=5 * k),
                                      series=s, datapoints=s * 6, bytes=s * 90, collector_cpu_pct=1.5,
                                      collector_rss_mb=60.0, critical_coverage_pct=100.0)
                    for k in range(1, 13) for variant, s in (("baseline", 2000), ("candidate", 500)))
                n_samples += 24
            uow.commit()
        _, token = svc.accounts.create_token(user, "api bench", timedelta(hours=6))
    finally:
        svc.close()
    return {"ids": [r.id for r in rows], "token": token, "experiments": len(rows), "samples": n_samples,
            "seconds": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------- the server


@contextlib.contextmanager
def api_server(url: str, workdir: Path) -> Iterator[str]:
    import httpx

    env = {**os.environ, "PHOENIX_DATA_DIR": str(workdir), "PHOENIX_DATABASE_URL": url,
           "PHOENIX_GITOPS_REPO": str(workdir / "gitops"), "PHOENIX_RUNTIME": "memory",
           "PHOENIX_EMBEDDED_SCHEDULER": "0"}
    port = _free_port()
    log = (workdir / "api.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {(workdir / 'api.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# ---------------------------------------------------------------- measuring


def measure(base: str, token: str, ids: list[str], requests: int, warmup: int,
            rng: random.Random) -> dict[str, Any]:
    import httpx

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        def timed(call: Callable[[], httpx.Response], expect: int) -> tuple[float, httpx.Response]:
            t = time.perf_counter()
            answer = call()
            dt = time.perf_counter() - t
            if answer.status_code != expect:
                raise RuntimeError(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} "
                                   f"{answer.text[:300]}")
            return dt, answer

        cursor = None
        for _ in range(LATER_PAGE - 1):  # the cursor of a later page, as a client paging would hold it
            page = http.get("/api/v1/experiments", params={"limit": PAGE, **({"cursor": cursor} if cursor else {})})
            page.raise_for_status()
            cursor = page.json()["next_cursor"] or cursor
        reads: dict[str, Callable[[], httpx.Response]] = {
            "list_first": lambda: http.get("/api/v1/experiments", params={"limit": PAGE}),
            "list_later": lambda: http.get("/api/v1/experiments",
                                           params={"limit": PAGE, **({"cursor": cursor} if cursor else {})}),
            "list_state": lambda: http.get("/api/v1/experiments", params={"state": "Failed", "limit": PAGE}),
            "get": lambda: http.get(f"/api/v1/experiments/{rng.choice(ids)}"),
        }
        times: dict[str, list[float]] = {}
        for name, call in reads.items():
            progress(f"{name}: {warmup} + {requests} requests")
            for _ in range(warmup):
                timed(call, 200)
            times[name] = [timed(call, 200)[0] for _ in range(requests)]
        progress(f"create, then cancel: {warmup} + {requests} requests each")
        created: list[tuple[str, str]] = []
        times["create"] = []
        for i in range(requests + warmup):
            dt, answer = timed(lambda i=i: http.post("/api/v1/experiments", json={
                "name": f"api bench #{i}", "baseline": "process-baseline-v1", "candidate": "process-topk-v1"}), 201)
            created.append((answer.json()["id"], answer.headers["ETag"]))
            if i >= warmup:
                times["create"].append(dt)
        times["cancel"] = []
        for i, (eid, etag) in enumerate(created):
            dt, _ = timed(lambda eid=eid, etag=etag: http.post(f"/api/v1/experiments/{eid}/cancel",
                                                               headers={"If-Match": etag}), 200)
            if i >= warmup:
                times["cancel"].append(dt)
    return {name: summarize(name, values) for name, values in times.items()}


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix=f"phoenix-api-bench-{kind}-"))
    try:
        database = sqlite_database(workdir) if kind == "sqlite" else postgres_database(args.pg_url)
        with database as url:
            progress(f"{kind}: seeding {args.experiments:,} experiments")
            seeded = seed(url, workdir, args.experiments, rng)
            progress(f"{kind}: seeded in {seeded['seconds']} s; starting the API")
            with api_server(url, workdir) as base:
                ops = measure(base, seeded["token"], seeded["ids"], args.requests, args.warmup, rng)
        return {"seed": {k: seeded[k] for k in ("experiments", "samples", "seconds")}, "operations": ops,
                "meets_targets": all(o["meets_target"] for o in ops.values())}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    m = machine()
    report: dict[str, Any] = {
        "machine": {"cpu_model": m.get("cpu_model"), "cpus": m.get("cpus"), "python": m.get("python"),
                    "load_avg": m.get("load_avg")},
        "params": {"experiments": args.experiments, "requests": args.requests, "warmup": args.warmup,
                   "page": PAGE, "later_page": LATER_PAGE},
        "targets_p95_ms": TARGETS_MS, "databases": {},
    }
    for kind in args.databases:
        report["databases"][kind] = run_one(kind, args)
    report["meets_targets"] = all(d["meets_targets"] for d in report["databases"].values())
    return report


def table(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"{report['params']['experiments']:,} experiments, {report['params']['requests']} requests per "
             f"operation; {m['cpu_model']}, {m['cpus']} CPUs, Python {m['python']}",
             f"{'database':<10} {'operation':<11} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  target p95"]
    for kind, d in report["databases"].items():
        for name, o in d["operations"].items():
            verdict = "ok" if o["meets_target"] else "MISSED"
            lines.append(f"{kind:<10} {name:<11} {o['p50_ms']:>6.1f}ms {o['p95_ms']:>6.1f}ms {o['p99_ms']:>6.1f}ms "
                         f"{o['max_ms']:>6.1f}ms  ≤ {o['target_p95_ms']:.0f} ms {verdict}")
    lines.append("all targets met" if report["meets_targets"] else "some targets MISSED")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(ap)
    args = ap.parse_args(argv)
    return check(args)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--experiments", type=int, default=10_000, help="experiments stored (default 10000)")
    ap.add_argument("--requests", type=int, default=200, help="timed requests per operation (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed requests per operation first (default 20)")
    ap.add_argument("--databases", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--pg-url", help="an existing PostgreSQL server (SQLAlchemy URL); a scratch database is "
                                     "created there. Default: a throwaway server (initdb + pg_ctl)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the JSON report (default: a table)")
    ap.add_argument("--out", help="also write the JSON report here")


def check(args: argparse.Namespace) -> argparse.Namespace:
    args.databases = [d.strip() for d in str(args.databases).split(",") if d.strip()]
    unknown = set(args.databases) - {"sqlite", "postgres"}
    if unknown or not args.databases:
        raise SystemExit(f"--databases: sqlite and/or postgres, not {', '.join(sorted(unknown)) or 'nothing'}")
    if args.experiments < PAGE * LATER_PAGE // 10 or args.requests < 1 or args.warmup < 0:
        raise SystemExit(f"--experiments at least {PAGE * LATER_PAGE // 10}, --requests at least 1, --warmup 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    report = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0  # a missed target is a figure to report, not a failure to run


if __name__ == "__main__":
    sys.exit(main())
