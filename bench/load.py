"""Load benchmark: the scheduler and the store on PostgreSQL with 10,000 stored experiments.

    .venv/bin/python bench/load.py [--json] [--out FILE]
        [--experiments 10000 --running 100 --ticks 30 --contention-s 60 --new 100 --restart-set 100]
        [--server postgresql+psycopg://user@host:port/db [--restart-cmd "…"]]

Without ``--server`` it starts a throwaway PostgreSQL (``initdb`` + ``pg_ctl`` in a temp dir
on a free port, as the ``postgres`` user when run as root) and removes it afterwards; with
``--server`` it creates a scratch database ``phoenix_load_<hex>`` there and drops it.

Runtime: the memory runtime (``core.runtime.memory``) plus a stand-in collector pair
(``SamplingDeployer``) that produces one sample per variant per interval while an
experiment runs. The collector is outside the scheduler processes, like a real one: what
it produced is appended to a per-experiment ledger file (under ``flock``) and ``collect``
hands over whatever was produced since the last call, whichever scheduler process asks.

Phases:
  seed  ``phoenix demo seed`` (terminal experiments with real event logs and results),
        24 samples per Completed one (COPY), VACUUM ANALYZE.
  a     ``--running`` experiments brought to Running by an in-process scheduler, then
        ``--ticks`` timed ticks one ``--tick-interval`` apart: p50/p95/max (target p95 ≤ 1 s),
        SQL statements per tick, the slowest statements and the claim query's plan.
  b     two scheduler processes (APScheduler, as ``phoenix scheduler``) plus a reader
        process (lists, counts, experiment pages, samples) for ``--contention-s``; ``--new``
        more experiments are submitted and a tenth of the running ones are cancelled by a user.
  c     ``--restart-set`` experiments; once half of them run, ``pg_ctl restart -m fast``.
        The schedulers must survive; every experiment then completes or fails with a reason.

Checks (b and c, over every experiment the benchmark created):
  double transitions  an event log that is not one chain Pending → … → terminal with each
                      transition once, or an ``experiment.transition`` audit entry twice;
  lost samples        a (variant, interval) the collector handed over (ledger) with no stored
                      row; ``duplicate`` = stored twice, ``unexpected`` = stored, never produced;
                      a Completed experiment must also hold every interval of its duration and
                      its analysis must have seen all of them.
Not a unit test; ``tests/integration/test_load_bench.py`` runs it at tiny scale.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.domain.accounts import Actor, Role  # noqa: E402
from core.domain.experiment import Experiment, utcnow  # noqa: E402
from core.domain.samples import VARIANTS, MeasurementSample  # noqa: E402
from core.machine import machine as host_machine  # noqa: E402
from core.runtime.memory import InMemoryDeployer  # noqa: E402
from core.services.requests import CancelExperiment  # noqa: E402

TICK_TARGET_P95_S = 1.0
# who acts in the benchmark (the services check roles; the benchmark is its own operator)
BENCH_OPERATOR = Actor("bench", Role.OPERATOR, "cli")
BENCH_USER = Actor("bench-user", Role.OPERATOR, "ui")
ACTIVE = ("Pending", "Initializing", "Running", "Analyzing")
TERMINAL = ("Completed", "Failed", "Cancelled")


# ---------------------------------------------------------------- PostgreSQL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise SystemExit(f"{name} is not installed (apt-get install postgresql) and no --server was given")
    return found


class ThrowawayPostgres:
    """A private cluster in a temp dir (same recipe as the test suite's): initdb, pg_ctl start/restart/stop."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="phoenix-load-pg-"))
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            shutil.chown(self.dir, user="postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"

    def _run(self, *cmd: str) -> None:
        res = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=180)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} failed: {res.stderr.strip() or res.stdout.strip()}")

    def start(self) -> str:
        self._run(_pg_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def restart(self) -> None:
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "-t", "60", "restart")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def _admin(server_url: str, sql: str) -> None:
    from sqlalchemy import create_engine, text

    from core.store.db import make_engine

    engine = make_engine(server_url) if server_url.startswith("postgresql") else create_engine(server_url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _with_database(server_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def wait_for_db(url: str, timeout: float = 60.0) -> None:
    from core.store.uow import Database

    db = Database(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                db.ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        db.dispose()


# ---------------------------------------------------------------- the stand-in collector


@dataclass
class SamplingDeployer(InMemoryDeployer):
    """Memory runtime + a collector pair that produces one sample per variant per interval while Running.

    Interval ``k`` (1 … duration/interval) of an experiment ends at ``started_at + k·interval``.
    ``collect`` hands over every interval that ended since the last hand-over — by any
    process — and appends it to ``ledger_dir/<id>`` first: the ledger is what was produced.
    """

    ledger_dir: Path = Path(".")

    def collect(self, experiment: Experiment) -> list[MeasurementSample]:
        self._record("collect", experiment)
        if experiment.started_at is None:
            return []
        iv = experiment.timing.interval_s
        k_max = int(experiment.timing.duration_s // iv + 1e-9)
        k_now = min(k_max, int((utcnow() - experiment.started_at).total_seconds() // iv))
        with (self.ledger_dir / experiment.id).open("a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            done = f.read().split()
            last = int(done[-1]) if done else 0
            new = range(last + 1, k_now + 1)
            if new:
                f.write("".join(f"{k}\n" for k in new))
                f.flush()
        return [_sample(experiment, k, v) for k in new for v in VARIANTS]


def _sample(exp: Experiment, k: int, variant: str) -> MeasurementSample:
    assert exp.started_at is not None
    series = 2400 if variant == "baseline" else 310 + k % 7
    return MeasurementSample(exp.id, variant, exp.started_at + timedelta(seconds=k * exp.timing.interval_s),
                             series=series, datapoints=series * 6, bytes=series * 90, collector_cpu_pct=1.5,
                             collector_rss_mb=60.0, critical_coverage_pct=100.0, processes_seen=300)


def read_ledger(ledger_dir: Path, eid: str) -> list[int]:
    p = ledger_dir / eid
    return [int(x) for x in p.read_text().split()] if p.exists() else []


# ---------------------------------------------------------------- statistics helpers


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))]


def dist(values: list[float], unit: float = 1.0, nd: int = 3) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(pct(values, 50) * unit, nd), "p95": round(pct(values, 95) * unit, nd),
            "max": round(max(values) * unit, nd), "mean": round(statistics.fmean(values) * unit, nd)}


def machine() -> dict[str, Any]:
    m = host_machine()
    return {**m, "load_average_at_start": m["load_avg"]}


# ---------------------------------------------------------------- SQL statement profile


class SqlProfile:
    """Counts and times every statement an engine runs (``before/after_cursor_execute``)."""

    def __init__(self, engine: Any):
        from sqlalchemy import event

        self.n = 0
        self.seconds = 0.0
        self.by_kind: dict[str, list[float]] = defaultdict(list)
        self.last_claim: tuple[str, Any] | None = None
        self._t: dict[int, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        self._t[id(cursor)] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        dt = time.perf_counter() - self._t.pop(id(cursor), time.perf_counter())
        self.n += 1
        self.seconds += dt
        kind = " ".join(statement.split())[:90]
        self.by_kind[kind].append(dt)
        if "SKIP LOCKED" in statement:
            self.last_claim = (statement, params)

    def reset(self) -> None:
        self.n, self.seconds = 0, 0.0

    def top(self, ticks: int, k: int = 6) -> list[dict[str, Any]]:
        rows = sorted(self.by_kind.items(), key=lambda kv: -sum(kv[1]))[:k]
        return [{"statement": s, "per_tick": round(len(v) / max(1, ticks), 1),
                 "ms_per_tick": round(sum(v) / max(1, ticks) * 1000, 1), "mean_ms": round(statistics.fmean(v) * 1000, 3)}
                for s, v in rows]


# ---------------------------------------------------------------- experiments


def create_experiments(db: Any, n: int, prefix: str, durations: list[float], interval: float) -> list[str]:
    from core.services.experiments import ExperimentService

    svc = ExperimentService(db.uow, dry_run=True)
    ids = []
    for i in range(n):
        e = svc.create(BENCH_OPERATOR, name=f"{prefix} #{i}", baseline="process-baseline-v1",
                       candidate="process-topk-v1", duration_s=durations[i % len(durations)], interval_s=interval)
        ids.append(e.id)
    return ids


def states_of(db: Any, ids: list[str]) -> dict[str, str]:
    from sqlalchemy import select

    from core.store.models import ExperimentRow

    with db.engine.connect() as conn:
        out: dict[str, str] = {}
        for chunk in range(0, len(ids), 1000):
            part = ids[chunk:chunk + 1000]
            out.update(dict(conn.execute(select(ExperimentRow.id, ExperimentRow.state).where(ExperimentRow.id.in_(part))).all()))  # type: ignore[arg-type]
        return out


def seed_store(db: Any, n: int, seed: int) -> dict[str, Any]:
    """``phoenix demo seed`` (terminal experiments, real event logs and results) + their samples."""
    from sqlalchemy import select, text

    from core.bootstrap import bootstrap
    from core.commands.demo import seed as demo_seed
    from core.gitops import InMemoryGitOps
    from core.runtime.memory import InMemoryAnalyzer
    from core.settings import Settings
    from core.store.models import ExperimentEventRow, ExperimentRow

    t0 = time.perf_counter()
    svc = bootstrap(Settings(database_url=db.url, runtime="memory"), InMemoryDeployer(), InMemoryAnalyzer(),
                    database=db, gitops=InMemoryGitOps(), migrate=False)
    out = demo_seed(svc, n, min(100, n // 10), 10, seed)
    t_exp = time.perf_counter() - t0
    # Samples of the Completed ones (12 intervals × 2 variants, as demo seed's analyses assume).
    t1 = time.perf_counter()
    rng = random.Random(seed)
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(ExperimentRow.id, ExperimentEventRow.at, ExperimentRow.interval_s, ExperimentRow.duration_s)
            .join(ExperimentEventRow, ExperimentEventRow.experiment_id == ExperimentRow.id)
            .where(ExperimentRow.state == "Completed", ExperimentEventRow.to_state == "Running")
        ).all()
    n_samples = 0
    raw = db.engine.raw_connection()
    try:
        pg = raw.driver_connection
        cols = "experiment_id, variant, t, series, datapoints, bytes, collector_cpu_pct, collector_rss_mb, critical_coverage_pct"
        with pg.cursor() as cur, cur.copy(f"COPY measurement_samples ({cols}) FROM STDIN") as copy:
            for eid, started, iv, dur in rows:
                base = rng.randint(800, 4000)
                for k in range(1, int(dur // iv) + 1):
                    t = started.astimezone(UTC).replace(tzinfo=None) + timedelta(seconds=k * iv)
                    for v, s in (("baseline", base), ("candidate", base // 4)):
                        copy.write_row((eid, v, t, s, s * 6, s * 90, 1.5, 60.0, 100.0))
                        n_samples += 1
        pg.commit()
    finally:
        raw.close()
    t_samples = time.perf_counter() - t1
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return {"experiments": out["experiments"], "pipeline_versions": out["pipeline_versions"], "samples": n_samples,
            "seconds": round(time.perf_counter() - t0, 1), "experiments_seconds": round(t_exp, 1),
            "samples_seconds": round(t_samples, 1)}


# ---------------------------------------------------------------- worker processes


def _worker_cmd(kind: str, url: str, workdir: Path, name: str, extra: list[str] | None = None) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--url", url, "--workdir", str(workdir),
            "--name", name, *(extra or [])]


def start_worker(kind: str, url: str, workdir: Path, name: str, extra: list[str] | None = None) -> subprocess.Popen:
    log = (workdir / f"{name}.log").open("ab")
    return subprocess.Popen(_worker_cmd(kind, url, workdir, name, extra), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def stop_worker(p: subprocess.Popen, timeout: float = 60.0) -> int:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
    return int(p.returncode)


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def scheduler_worker(args: argparse.Namespace) -> int:
    """One standing scheduler (APScheduler background job, as ``phoenix scheduler``) with the sampling runtime."""
    import logging

    from core.runtime.memory import InMemoryAnalyzer
    from core.scheduler import Scheduler, TickReport
    from core.store.uow import Database

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = _stop_event()
    stats: dict[str, Any] = {"ticks": [], "errors": 0, "error_kinds": Counter(), "transitions": 0, "escaped": 0}
    lock = threading.Lock()

    class Recording(Scheduler):
        def run_once(self) -> TickReport:
            t = time.perf_counter()
            try:
                r = super().run_once()
            except BaseException as exc:  # noqa: BLE001 - counted; APScheduler would only log it
                with lock:
                    stats["escaped"] += 1
                    stats["error_kinds"][f"escaped {type(exc).__name__}: {str(exc)[:80]}"] += 1
                raise
            with lock:
                stats["ticks"].append(time.perf_counter() - t)
                stats["transitions"] += len(r.transitions)
                stats["errors"] += len(r.errors)
                for _eid, msg in r.errors:
                    stats["error_kinds"][msg.split(":")[0][:80] if "unavailable" not in msg else "database unavailable"] += 1
            return r

    db = Database(args.url)
    kw = {"batch_size": args.batch_size} if args.batch_size else {}
    s = Recording(db.uow, SamplingDeployer(ledger_dir=args.workdir / "ledger"), InMemoryAnalyzer(),
                  scheduler_id=args.name, interval_s=args.interval, lease_s=args.lease, **kw)
    s.start()
    print(f"scheduler {args.name} started", flush=True)
    while not stop.wait(0.2):
        pass
    s.shutdown(wait=True)
    db.dispose()
    ticks = stats["ticks"]
    out = {"name": args.name, "ticks": len(ticks), "tick_s": dist(ticks), "transitions": stats["transitions"],
           "errors": stats["errors"], "escaped_exceptions": stats["escaped"],
           "error_kinds": dict(stats["error_kinds"].most_common(8))}
    (args.workdir / f"{args.name}.json").write_text(json.dumps(out))
    print(f"scheduler {args.name} stopped", flush=True)
    return 0


def reader_worker(args: argparse.Namespace) -> int:
    """What pages do, as fast as it can: newest list, counts by state, running list, one experiment, its samples."""
    from core.domain.errors import PhoenixError
    from core.store.uow import Database

    stop = _stop_event()
    db = Database(args.url)
    rng = random.Random(7)
    lat: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    ids: list[str] = []
    ops = ["list_newest_100", "counts_by_state", "list_running", "experiment_with_events", "samples"]
    while not stop.is_set():
        op = rng.choice(ops)
        t = time.perf_counter()
        try:
            with db.uow() as uow:
                if op == "list_newest_100" or not ids:
                    op = "list_newest_100"
                    ids = [e.id for e in uow.experiments.list(limit=100)]
                elif op == "counts_by_state":
                    uow.experiments.counts_by_state()
                elif op == "list_running":
                    ids += [e.id for e in uow.experiments.list(states=["Running"], limit=100)][:20]
                    ids = ids[-200:]
                elif op == "experiment_with_events":
                    uow.experiments.get(rng.choice(ids))
                else:
                    uow.samples.list(rng.choice(ids))
            lat[op].append(time.perf_counter() - t)
        except PhoenixError as exc:
            errors[f"{type(exc).__name__}"] += 1
            time.sleep(0.05)
    db.dispose()
    all_lat = [x for v in lat.values() for x in v]
    out = {"ops": len(all_lat), "errors": dict(errors), "latency_ms": dist(all_lat, 1000, 1),
           "by_op_ms": {k: dist(v, 1000, 1) for k, v in sorted(lat.items())}}
    (args.workdir / f"{args.name}.json").write_text(json.dumps(out))
    return 0


# ---------------------------------------------------------------- verification


def verify(db: Any, ids: list[str], ledger_dir: Path) -> dict[str, Any]:
    """Double transitions and lost samples over ``ids`` (see the module docstring for the definitions)."""
    from sqlalchemy import func, select

    from core.store.models import AuditLogRow, ExperimentEventRow, ExperimentRow, MeasurementSampleRow

    events: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    audits: Counter[tuple[str, str, str]] = Counter()
    stored: dict[str, Counter[tuple[str, datetime]]] = defaultdict(Counter)
    rows: dict[str, Any] = {}
    with db.engine.connect() as conn:
        for c in range(0, len(ids), 500):
            part = ids[c:c + 500]
            for r in conn.execute(select(ExperimentRow).where(ExperimentRow.id.in_(part))):
                rows[r.id] = r
            for eid, seq, f, t in conn.execute(
                select(ExperimentEventRow.experiment_id, ExperimentEventRow.seq, ExperimentEventRow.from_state,
                       ExperimentEventRow.to_state).where(ExperimentEventRow.experiment_id.in_(part))
            ):
                events[eid].append((seq, f, t))
            for subject, details in conn.execute(
                select(AuditLogRow.subject, AuditLogRow.details)
                .where(AuditLogRow.subject.in_(part), AuditLogRow.action == "experiment.transition")
            ):
                audits[(subject, details.get("from"), details.get("to"))] += 1
            for eid, variant, t, n in conn.execute(
                select(MeasurementSampleRow.experiment_id, MeasurementSampleRow.variant, MeasurementSampleRow.t, func.count())
                .where(MeasurementSampleRow.experiment_id.in_(part))
                .group_by(MeasurementSampleRow.experiment_id, MeasurementSampleRow.variant, MeasurementSampleRow.t)
            ):
                stored[eid][(variant, t.replace(tzinfo=UTC) if t.tzinfo is None else t)] += n

    problems: list[str] = []
    double = broken = 0
    lost = dup = unexpected = incomplete = produced_total = stored_total = 0
    states: Counter[str] = Counter()
    failed_without_reason = 0
    for eid in ids:
        row = rows.get(eid)
        if row is None:
            problems.append(f"{eid}: missing")
            continue
        states[row.state] += 1
        if row.state == "Failed" and not (row.error or "").strip():
            failed_without_reason += 1
            problems.append(f"{eid}: Failed without a reason")
        # --- transitions
        evs = sorted(events[eid])
        seen: Counter[tuple[str, str]] = Counter((f, t) for _, f, t in evs)
        d = sum(n - 1 for n in seen.values() if n > 1)
        to_states = Counter(t for _, _, t in evs)
        d += sum(n - 1 for n in to_states.values() if n > 1) if not d else 0
        chain_ok = [s for s, _, _ in evs] == list(range(1, len(evs) + 1)) and all(
            f == (evs[i - 1][2] if i else "Pending") for i, (_, f, _) in enumerate(evs))
        if evs and evs[-1][2] != row.state:
            chain_ok = False
        if not evs and row.state != "Pending":
            chain_ok = False
        a_dup = sum(n - 1 for (s, _, _), n in audits.items() if s == eid and n > 1)
        if d or a_dup:
            double += d + a_dup
            problems.append(f"{eid}: double transition {[(f, t) for _, f, t in evs]} audit dups {a_dup}")
        if not chain_ok:
            broken += 1
            problems.append(f"{eid}: event log is not one chain ending in {row.state}: {[(f, t) for _, f, t in evs]}")
        # --- samples
        ledger = read_ledger(ledger_dir, eid)
        if len(set(ledger)) != len(ledger):
            problems.append(f"{eid}: the collector handed an interval over twice (bench bug)")
        started = row.started_at.replace(tzinfo=UTC) if row.started_at is not None else None
        produced = set()
        if started is not None:
            produced = {(v, started + timedelta(seconds=k * row.interval_s)) for k in ledger for v in VARIANTS}
        elif ledger:
            problems.append(f"{eid}: samples produced but no started_at")
        got = stored[eid]
        produced_total += len(produced)
        stored_total += sum(got.values())
        e_lost = len(produced - set(got))
        e_dup = sum(n - 1 for n in got.values() if n > 1)
        e_unexp = len(set(got) - produced)
        lost, dup, unexpected = lost + e_lost, dup + e_dup, unexpected + e_unexp
        if e_lost or e_dup or e_unexp:
            problems.append(f"{eid} ({row.state}): samples lost {e_lost}, duplicated {e_dup}, unexpected {e_unexp}")
        if row.state == "Completed":
            k_max = int(row.duration_s // row.interval_s + 1e-9)
            seen_by_analysis = (row.result or {}).get("samples", {})
            if sorted(ledger) != list(range(1, k_max + 1)) or any(seen_by_analysis.get(v) != k_max for v in VARIANTS):
                incomplete += 1
                problems.append(f"{eid}: Completed with intervals {len(ledger)}/{k_max}, analysis saw {seen_by_analysis}")
    return {
        "experiments": len(ids), "states": dict(states),
        "double_transitions": double, "broken_event_logs": broken, "failed_without_reason": failed_without_reason,
        "samples_produced": produced_total, "samples_stored": stored_total, "samples_lost": lost,
        "samples_duplicated": dup, "samples_unexpected": unexpected, "completed_missing_intervals": incomplete,
        "ok": not problems, "problems": problems[:20], "problem_count": len(problems),
    }


# ---------------------------------------------------------------- phases


def phase_a(db: Any, args: argparse.Namespace, ledger: Path) -> tuple[dict[str, Any], list[str]]:
    from sqlalchemy import text

    from core.runtime.memory import InMemoryAnalyzer
    from core.scheduler import Scheduler

    duration = args.ticks * args.tick_interval + args.contention_s / 3 + 10
    ids = create_experiments(db, args.running, "load-a", [duration], args.sample_interval)
    # One tick over all of them (the app's scheduler claims 50 per tick and takes turns).
    s = Scheduler(db.uow, SamplingDeployer(ledger_dir=ledger), InMemoryAnalyzer(), scheduler_id="bench-a",
                  interval_s=args.tick_interval, lease_s=30.0, batch_size=args.batch_size or max(50, args.running))
    warm = 0
    deadline = time.monotonic() + 60
    while Counter(states_of(db, ids).values()).get("Running", 0) < len(ids):
        if time.monotonic() > deadline:
            break
        s.run_once()
        warm += 1
    running = Counter(states_of(db, ids).values()).get("Running", 0)
    prof = SqlProfile(db.engine)
    ticks: list[float] = []
    claimed: list[int] = []
    stmts: list[int] = []
    sql_s: list[float] = []
    cpu: list[float] = []
    errors = 0
    load_before = os.getloadavg()[0]
    for _ in range(args.ticks):
        prof.reset()
        t, c = time.perf_counter(), time.process_time()
        r = s.run_once()
        dt = time.perf_counter() - t
        cpu.append(time.process_time() - c)
        ticks.append(dt)
        claimed.append(len(r.claimed))
        stmts.append(prof.n)
        sql_s.append(prof.seconds)
        errors += len(r.errors)
        time.sleep(max(0.0, args.tick_interval - dt))
    plan = None
    if prof.last_claim is not None:
        stmt, params = prof.last_claim
        raw = db.engine.raw_connection()
        try:
            with raw.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + stmt, params)
                plan = [r[0] for r in cur.fetchall()]
        finally:
            raw.rollback()
            raw.close()
    # The claim alone, as a fresh scheduler would run it (no rows of its own).
    with db.uow() as uow:
        t = time.perf_counter()
        uow.experiments.claim("bench-probe", utcnow(), 30.0, s.batch_size)
        claim_probe_ms = (time.perf_counter() - t) * 1000
        uow.rollback()
    with db.engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM experiments")).scalar()
        n_samples = conn.execute(text("SELECT count(*) FROM measurement_samples")).scalar()
    s.shutdown()
    out = {
        "experiments_stored": total, "samples_stored": n_samples, "running": running, "warmup_ticks": warm,
        "batch_size": s.batch_size, "tick_interval_s": args.tick_interval, "ticks": len(ticks),
        "tick_s": dist(ticks), "target_p95_s": TICK_TARGET_P95_S, "ok": pct(ticks, 95) <= TICK_TARGET_P95_S,
        "claimed_per_tick": dist([float(c) for c in claimed], nd=1), "sql_statements_per_tick": dist([float(x) for x in stmts], nd=0),
        "sql_seconds_per_tick": dist(sql_s), "scheduler_cpu_seconds_per_tick": dist(cpu),
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)], "tick_errors": errors, "claim_query_ms_fresh_scheduler": round(claim_probe_ms, 2),
        "top_statements": prof.top(len(ticks)), "claim_plan": plan,
    }
    return out, ids


def phase_b(db: Any, url: str, args: argparse.Namespace, workdir: Path, ledger: Path, running_ids: list[str]) -> tuple[dict[str, Any], list[str]]:
    from core.domain.errors import PhoenixError
    from core.services.experiments import ExperimentService

    rng = random.Random(args.seed)
    extra = ["--interval", str(args.tick_interval), "--lease", str(args.lease)]
    if args.batch_size:
        extra += ["--batch-size", str(args.batch_size)]
    scheds = [start_worker("scheduler", url, workdir, f"b-sched-{i}", extra) for i in (1, 2)]
    reader = start_worker("reader", url, workdir, "b-reader")
    svc = ExperimentService(db.uow, dry_run=True)
    t0 = time.monotonic()
    window = args.contention_s
    lo, hi = max(5.0, window / 8), max(5.0, window / 3)
    new_ids: list[str] = []
    waves = max(1, int(window / 2 / 1.5))
    per_wave = [args.new // waves + (1 if i < args.new % waves else 0) for i in range(waves)]
    to_cancel = rng.sample(running_ids, max(1, len(running_ids) // 10)) if running_ids else []
    cancel_at = sorted(rng.uniform(1, window * 0.6) for _ in to_cancel)
    cancelled = cancel_refused = 0
    next_wave = 0
    while time.monotonic() - t0 < window:
        el = time.monotonic() - t0
        if next_wave < waves and el >= next_wave * 1.5:
            durs = [round(rng.uniform(lo, hi)) for _ in range(per_wave[next_wave])]
            new_ids += create_experiments(db, per_wave[next_wave], f"load-b w{next_wave}", durs or [lo], args.sample_interval)
            next_wave += 1
        while cancel_at and el >= cancel_at[0]:
            cancel_at.pop(0)
            eid = to_cancel.pop(0)
            try:
                svc.cancel(BENCH_USER, CancelExperiment(experiment_id=eid, reason="load benchmark: a user cancels"))
                cancelled += 1
            except PhoenixError:
                cancel_refused += 1
        if any(p.poll() is not None for p in scheds):
            break
        time.sleep(0.1)
    alive = [p.poll() is None for p in scheds]
    rcs = [stop_worker(p) for p in scheds]
    stop_worker(reader)
    sched_stats = [json.loads((workdir / f"b-sched-{i}.json").read_text()) if (workdir / f"b-sched-{i}.json").exists() else None
                   for i in (1, 2)]
    reader_stats = json.loads((workdir / "b-reader.json").read_text()) if (workdir / "b-reader.json").exists() else None
    ids = running_ids + new_ids
    check = verify(db, ids, ledger)
    out = {"seconds": round(time.monotonic() - t0, 1), "schedulers_alive_at_end": alive, "scheduler_exit_codes": rcs,
           "schedulers": sched_stats, "reader": reader_stats, "new_experiments": len(new_ids),
           "user_cancels": cancelled, "user_cancels_refused": cancel_refused, "check": check,
           "ok": check["ok"] and all(alive) and rcs == [0, 0]}
    return out, ids


def phase_c(db: Any, url: str, args: argparse.Namespace, workdir: Path, ledger: Path, restart: Any) -> tuple[dict[str, Any], list[str]]:
    duration = max(6.0, args.contention_s / 3)
    ids = create_experiments(db, args.restart_set, "load-c", [duration], args.sample_interval)
    extra = ["--interval", str(args.tick_interval), "--lease", str(args.lease)]
    if args.batch_size:
        extra += ["--batch-size", str(args.batch_size)]
    scheds = [start_worker("scheduler", url, workdir, f"c-sched-{i}", extra) for i in (1, 2)]
    reader = start_worker("reader", url, workdir, "c-reader")
    t0 = time.monotonic()
    try:
        deadline = t0 + 120
        while Counter(states_of(db, ids).values()).get("Running", 0) < max(1, len(ids) // 2):
            if time.monotonic() > deadline:
                raise RuntimeError("phase c: half of the experiments never reached Running")
            time.sleep(0.2)
        time.sleep(duration / 4)
        states_before = Counter(states_of(db, ids).values())
        t_r = time.monotonic()
        restart()
        outage_s = time.monotonic() - t_r
        restarted_at = round(t_r - t0, 1)
        deadline = time.monotonic() + max(90.0, duration * 4)
        while True:
            try:
                left = [s for s in states_of(db, ids).values() if s in ACTIVE]
            except Exception:  # noqa: BLE001 - the server may still be starting
                left = ids
            if not left or time.monotonic() > deadline or any(p.poll() is not None for p in scheds):
                break
            time.sleep(0.3)
        alive = [p.poll() is None for p in scheds]
    finally:
        rcs = [stop_worker(p) for p in scheds]
        stop_worker(reader)
    sched_stats = [json.loads((workdir / f"c-sched-{i}.json").read_text()) if (workdir / f"c-sched-{i}.json").exists() else None
                   for i in (1, 2)]
    reader_stats = json.loads((workdir / "c-reader.json").read_text()) if (workdir / "c-reader.json").exists() else None
    check = verify(db, ids, ledger)
    stuck = sum(n for s, n in check["states"].items() if s in ACTIVE)
    out = {"experiments": len(ids), "duration_s": duration, "restart_at_s": restarted_at,
           "states_at_restart": dict(states_before), "pg_ctl_restart_s": round(outage_s, 2),
           "all_terminal_after_s": round(time.monotonic() - t_r, 1), "still_active": stuck,
           "schedulers_alive_after_restart": alive, "scheduler_exit_codes": rcs, "schedulers": sched_stats,
           "reader": reader_stats, "check": check,
           "ok": check["ok"] and all(alive) and rcs == [0, 0] and stuck == 0}
    return out, ids


# ---------------------------------------------------------------- main


def summary(rep: dict[str, Any]) -> str:
    m = rep["machine"]
    lines = [f"machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gb']} GB RAM, Python {m['python']}, "
             f"load average at start {m['load_average_at_start']}"]
    s = rep.get("seed")
    if s:
        lines.append(f"seed: {s['experiments']:,} experiments, {s['samples']:,} samples in {s['seconds']} s")
    a = rep.get("a")
    if a:
        t = a["tick_s"]
        lines.append(f"a. tick over {a['running']} Running of {a['experiments_stored']:,} stored (batch {a['batch_size']}, "
                     f"{a['ticks']} ticks): p50 {t['p50']:.3f} s, p95 {t['p95']:.3f} s, max {t['max']:.3f} s "
                     f"(target p95 ≤ {a['target_p95_s']:g} s: {'ok' if a['ok'] else 'MISSED'}); "
                     f"{a['claimed_per_tick'].get('p50')} claimed and {a['sql_statements_per_tick'].get('p50'):.0f} SQL "
                     f"statements per tick, scheduler CPU p50 {a['scheduler_cpu_seconds_per_tick'].get('p50')} s; claim "
                     f"query {a['claim_query_ms_fresh_scheduler']} ms; 1-min load average {a['load_average_1m']}")
    for key, label in (("b", "b. two schedulers + reader"), ("c", "c. PostgreSQL restart")):
        p = rep.get(key)
        if not p:
            continue
        c = p["check"]
        extra = ""
        if key == "c":
            extra = (f"; restart took {p['pg_ctl_restart_s']} s, all terminal {p['all_terminal_after_s']} s later, "
                     f"schedulers alive {p['schedulers_alive_after_restart']}")
        rd = p.get("reader") or {}
        lines.append(f"{label}: {c['experiments']} experiments {c['states']}; double transitions {c['double_transitions']}, "
                     f"broken logs {c['broken_event_logs']}, samples produced {c['samples_produced']:,} stored "
                     f"{c['samples_stored']:,} lost {c['samples_lost']} duplicated {c['samples_duplicated']}; "
                     f"reader {rd.get('ops', 0):,} ops p95 {rd.get('latency_ms', {}).get('p95')} ms{extra}: "
                     f"{'ok' if p['ok'] else 'FAILED'}")
        for prob in c["problems"][:5]:
            lines.append(f"    {prob}")
    lines.append(f"total {rep['seconds']} s: {'all ok' if rep['ok'] else 'NOT OK'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text

    from core.store.migrate import upgrade
    from core.store.uow import Database

    t0 = time.monotonic()
    rep: dict[str, Any] = {"machine": machine(), "params": {k: v for k, v in vars(args).items()
                                                              if k not in {"worker", "url", "workdir", "name", "json", "out"}}}
    pg = None
    workdir = Path(tempfile.mkdtemp(prefix="phoenix-load-"))
    ledger = workdir / "ledger"
    ledger.mkdir()
    restart = None
    if args.server:
        server = args.server
        if args.restart_cmd:
            def restart() -> None:
                subprocess.run(args.restart_cmd, shell=True, check=True, timeout=120)
    else:
        pg = ThrowawayPostgres()
        server = pg.start()
        restart = pg.restart
    dbname = f"phoenix_load_{uuid.uuid4().hex[:8]}"
    _admin(server, f'CREATE DATABASE "{dbname}"')
    url = _with_database(server, dbname)
    db = None
    try:
        upgrade(url)
        db = Database(url)
        with db.engine.connect() as conn:
            rep["postgres"] = conn.execute(text("SHOW server_version")).scalar()
        rep["seed"] = seed_store(db, args.experiments, args.seed)
        rep["a"], a_ids = phase_a(db, args, ledger)
        if args.contention_s > 0:
            rep["b"], _ = phase_b(db, url, args, workdir, ledger, a_ids)
        if args.restart_set > 0:
            if restart is None:
                rep["c"] = {"skipped": "--server without --restart-cmd: cannot restart PostgreSQL", "ok": True,
                            "check": {"problems": []}}
            else:
                rep["c"], _ = phase_c(db, url, args, workdir, ledger, restart)
    finally:
        if db is not None:
            db.dispose()
        with contextlib.suppress(Exception):
            if not args.keep:
                _admin(server, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if pg is not None and not args.keep:
            pg.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            rep["workdir"] = str(workdir)
    rep["seconds"] = round(time.monotonic() - t0, 1)
    rep["ok"] = all(rep[k].get("ok", True) for k in ("a", "b", "c") if k in rep and "skipped" not in rep[k])
    rep["correct"] = all(rep[k].get("ok", True) for k in ("b", "c") if k in rep and "skipped" not in rep[k])
    return rep


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=10_000, help="terminal experiments seeded (demo seed)")
    ap.add_argument("--running", type=int, default=100, help="experiments Running during the tick timing (a)")
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--tick-interval", type=float, default=1.0, help="seconds between ticks (a) and scheduler interval (b, c)")
    ap.add_argument("--sample-interval", type=float, default=1.0, help="the experiments' collection interval")
    ap.add_argument("--batch-size", type=int, default=0, help="scheduler claim batch (0: all --running in a, the scheduler default 50 in b and c)")
    ap.add_argument("--lease", type=float, default=30.0, help="scheduler lease in b and c (the app default)")
    ap.add_argument("--contention-s", type=float, default=60.0, help="length of b (0 skips it)")
    ap.add_argument("--new", type=int, default=100, help="experiments submitted during b")
    ap.add_argument("--restart-set", type=int, default=100, help="experiments running through the restart (c; 0 skips it)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--server", help="an existing PostgreSQL (SQLAlchemy URL); a scratch database is created on it")
    ap.add_argument("--restart-cmd", help="shell command that restarts --server's PostgreSQL (phase c)")
    ap.add_argument("--keep", action="store_true", help="keep the database, server and work dir (debugging)")
    ap.add_argument("--json", action="store_true", help="print the JSON report (default: the readable summary)")
    ap.add_argument("--out", help="also write the JSON report here")
    ap.add_argument("--worker", choices=["scheduler", "reader"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--name", help=argparse.SUPPRESS)
    ap.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.worker == "scheduler":
        return scheduler_worker(args)
    if args.worker == "reader":
        return reader_worker(args)
    rep = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(rep, indent=2, default=str) + "\n")
    print(json.dumps(rep, indent=2, default=str) if args.json else summary(rep))
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
