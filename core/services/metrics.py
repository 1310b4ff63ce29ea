"""Phoenix metrics read from the database at scrape time (``SCRAPE_TIME_METRICS``).

Every replica reads the same database, so every replica reports the same truth:

- ``phoenix_experiments{state}``: experiments in each state (every state, 0 included);
- ``phoenix_experiment_series_reduction_ratio``, ``…_projected_monthly_savings_dollars``,
  ``…_critical_coverage_ratio`` ``{phoenix_experiment_id, phoenix_variant}``: the analysis
  figures of the ``RESULT_EXPERIMENTS`` newest Completed experiments (see ``result_gauges``);
- ``phoenix_database_up``: 1 when a ``SELECT 1`` answers within ``PING_TIMEOUT_S``;
- ``phoenix_db_pool_connections{state}`` and ``phoenix_db_pool_size``: what the SQLAlchemy
  pool of this process exposes (read live, no query).

A scrape never fails because of the database: when the ping fails, ``phoenix_database_up``
is 0 and the database-derived families are left out of that scrape. The database answer is
cached for ``CACHE_S`` seconds so a tight scrape loop (or several scrapers) cost one read.

The reads go through a unit of work as the system itself (no user, nothing audited): the
figures are aggregate and the result gauges only carry experiment ids.

Wiring: ``install(database)`` is called by ``core.bootstrap`` each time services are built.
The process registry holds **one** collector; ``install`` re-points it at the newest
database (held weakly, so a closed ``Services`` in a test is not kept alive). Registering a
collector per ``bootstrap`` would fail on the duplicate names the second time (tests and
the Streamlit app bootstrap many times in one process), and the newest wiring is the one
the process is serving.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.domain.experiment import State
from core.domain.ports import Database

log = logging.getLogger(__name__)

#: Seconds a database answer is reused by the next scrapes.
CACHE_S: Final = 5.0
#: Seconds the scrape waits for ``SELECT 1`` before reporting the database down.
PING_TIMEOUT_S: Final = 2.0
#: How many of the newest Completed experiments export their result gauges (bounded labels).
RESULT_EXPERIMENTS: Final = 50

EXPERIMENT_LABEL, VARIANT_LABEL = "phoenix_experiment_id", "phoenix_variant"
_RESULT_HELP: Final = {
    "phoenix_experiment_series_reduction_ratio":
        "Series the candidate removed, as a fraction of the baseline's (analysis of a Completed experiment)",
    "phoenix_experiment_projected_monthly_savings_dollars":
        "Projected USD per month the candidate saves against the baseline, on the first price card",
    "phoenix_experiment_critical_coverage_ratio":
        "Lowest critical-process coverage over the run, as a fraction (1 = every critical process kept)",
}


@dataclass(frozen=True)
class ResultFigure:
    metric: str
    experiment_id: str
    variant: str
    value: float


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def result_gauges(experiment_id: str, result: Mapping[str, Any] | None) -> list[ResultFigure]:
    """The result gauges of one analysis record (``core.analysis.verdict.analyze_samples``).

    - series reduction ratio: ``series_reduction_pct`` / 100, variant ``candidate`` (the
      baseline is what it is measured against);
    - projected monthly savings: ``baseline_usd − candidate_usd`` of the first price card in
      ``cost`` (the one that decides the cost criterion), variant ``candidate``;
    - critical coverage ratio: ``critical_coverage_pct`` / 100 for ``candidate`` and
      ``baseline_critical_coverage_pct`` / 100 for ``baseline``.
    A figure the analysis could not compute (no price card, nothing measured, a dry run) is
    left out rather than exported as 0.
    """
    result = result or {}
    out: list[ResultFigure] = []

    def add(metric: str, variant: str, value: float | None) -> None:
        if value is not None:
            out.append(ResultFigure(metric, experiment_id, variant, value))

    reduction = _number(result.get("series_reduction_pct"))
    add("phoenix_experiment_series_reduction_ratio", "candidate", None if reduction is None else reduction / 100)
    cost = result.get("cost")
    if isinstance(cost, Mapping) and cost:
        card = next(iter(cost.values()))
        if isinstance(card, Mapping):
            base, cand = _number(card.get("baseline_usd")), _number(card.get("candidate_usd"))
            add("phoenix_experiment_projected_monthly_savings_dollars", "candidate",
                None if base is None or cand is None else base - cand)
    for variant, key in (("candidate", "critical_coverage_pct"), ("baseline", "baseline_critical_coverage_pct")):
        cov = _number(result.get(key))
        add("phoenix_experiment_critical_coverage_ratio", variant, None if cov is None else cov / 100)
    return out


@dataclass(frozen=True)
class _DatabaseAnswer:
    up: bool
    by_state: dict[str, int]
    results: list[ResultFigure]


def pool_figures(database: object) -> tuple[dict[str, float], float | None]:
    """``({checked_out, idle, overflow} → n, pool size)`` of a SQLAlchemy engine's pool.

    Only what the pool class exposes: ``QueuePool`` (PostgreSQL, SQLite files) has all of
    them; ``SingletonThreadPool``/``StaticPool`` (SQLite in memory) and the in-memory fake
    have none, and then nothing is reported. ``overflow`` counts connections beyond the
    pool size (SQLAlchemy's own figure is negative while the pool is not yet full).
    """
    pool = getattr(getattr(database, "engine", None), "pool", None)
    states: dict[str, float] = {}
    readers = (("checked_out", "checkedout"), ("idle", "checkedin"), ("overflow", "overflow"))
    for state, method in readers:
        fn = getattr(pool, method, None)
        if callable(fn):
            try:
                states[state] = max(0.0, float(fn()))
            except Exception:  # noqa: BLE001 - a pool without that figure: leave it out
                continue
    size_fn = getattr(pool, "size", None)
    size = None
    if callable(size_fn):
        try:
            size = float(size_fn())
        except Exception:  # noqa: BLE001
            size = None
    return states, size


class DatabaseMetrics(Collector):
    """The scrape-time collector over one database (or, installed, over the newest one)."""

    def __init__(self, source: Callable[[], Database | None], *, cache_s: float = CACHE_S,
                 ping_timeout_s: float = PING_TIMEOUT_S, result_experiments: int = RESULT_EXPERIMENTS,
                 timer: Callable[[], float] = time.monotonic):
        """``source`` gives the database to read at each scrape (None: report nothing)."""
        self._database = source
        self.cache_s = cache_s
        self.ping_timeout_s = ping_timeout_s
        self.result_experiments = result_experiments
        self._timer = timer
        self._lock = threading.Lock()
        self._cached: tuple[float, int, _DatabaseAnswer] | None = None  # (at, id(database), answer)
        self._ping_in_flight: threading.Thread | None = None

    # prometheus_client calls describe() on register: the names, without touching the database.
    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("phoenix_experiments", "Experiments in each state", labels=["state"]),
            *(GaugeMetricFamily(name, text, labels=[EXPERIMENT_LABEL, VARIANT_LABEL])
              for name, text in _RESULT_HELP.items()),
            GaugeMetricFamily("phoenix_database_up", "1 when the database answers SELECT 1 within 2 s"),
            GaugeMetricFamily("phoenix_db_pool_connections", "Connections of this process's database pool, by state",
                              labels=["state"]),
            GaugeMetricFamily("phoenix_db_pool_size", "Configured size of this process's database pool"),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            database = self._database()
        except Exception:  # noqa: BLE001 - never fail a scrape
            database = None
        if database is None:
            return
        try:
            yield from self._pool(database)
        except Exception:  # noqa: BLE001
            log.warning("metrics: could not read the database pool", exc_info=True)
        answer = self._answer(database)
        up = GaugeMetricFamily("phoenix_database_up", "1 when the database answers SELECT 1 within 2 s")
        up.add_metric([], 1.0 if answer.up else 0.0)
        yield up
        if not answer.up:
            return
        states = GaugeMetricFamily("phoenix_experiments", "Experiments in each state", labels=["state"])
        for state in State:
            states.add_metric([state.value], float(answer.by_state.get(state.value, 0)))
        yield states
        families = {name: GaugeMetricFamily(name, text, labels=[EXPERIMENT_LABEL, VARIANT_LABEL])
                    for name, text in _RESULT_HELP.items()}
        for fig in answer.results:
            families[fig.metric].add_metric([fig.experiment_id, fig.variant], fig.value)
        yield from families.values()

    @staticmethod
    def _pool(database: object) -> Iterator[GaugeMetricFamily]:
        states, size = pool_figures(database)
        if states:
            conns = GaugeMetricFamily("phoenix_db_pool_connections",
                                      "Connections of this process's database pool, by state", labels=["state"])
            for state, n in states.items():
                conns.add_metric([state], n)
            yield conns
        if size is not None:
            yield GaugeMetricFamily("phoenix_db_pool_size", "Configured size of this process's database pool",
                                    value=size)

    def _answer(self, database: Database) -> _DatabaseAnswer:
        with self._lock:
            now = self._timer()
            cached = self._cached
            if cached is not None and cached[1] == id(database) and now - cached[0] < self.cache_s:
                return cached[2]
            answer = self._read(database)
            self._cached = (now, id(database), answer)
            return answer

    def _ping(self, database: Database) -> bool:
        """SELECT 1 in a helper thread, waited for at most ``ping_timeout_s``.

        A hung ping (a server that accepts and never answers) is not started again while
        it hangs: the database stays "down" until it returns, and threads do not pile up.
        """
        if self._ping_in_flight is not None and self._ping_in_flight.is_alive():
            return False
        ok: list[bool] = []

        def ping() -> None:
            try:
                database.ping()
                ok.append(True)
            except Exception as exc:  # noqa: BLE001 - reported as phoenix_database_up 0
                log.warning("metrics: the database does not answer: %s", exc)

        thread = threading.Thread(target=ping, name="phoenix-metrics-db-ping", daemon=True)
        self._ping_in_flight = thread
        thread.start()
        thread.join(self.ping_timeout_s)
        return bool(ok)

    def _read(self, database: Database) -> _DatabaseAnswer:
        if not self._ping(database):
            return _DatabaseAnswer(False, {}, [])
        try:
            with database.uow() as uow:
                by_state = uow.experiments.counts_by_state()
                completed = uow.experiments.list(states=[State.COMPLETED], limit=self.result_experiments)
        except Exception as exc:  # noqa: BLE001 - never fail a scrape
            log.warning("metrics: could not read experiments: %s", exc)
            return _DatabaseAnswer(False, {}, [])
        results = [fig for exp in completed for fig in result_gauges(exp.id, exp.result)]
        return _DatabaseAnswer(True, by_state, results)


# ---------------------------------------------------------------- one per process

_install_lock = threading.Lock()
_current: Callable[[], Any] | None = None
_installed: dict[int, DatabaseMetrics] = {}  # id(registry) → its collector


def _newest() -> Database | None:
    return None if _current is None else _current()


def install(database: Database, registry: CollectorRegistry = REGISTRY) -> DatabaseMetrics:
    """Point this process's scrape-time collector at ``database``; register it on first use.

    Idempotent: later calls (every ``bootstrap``) only re-point it (see the module doc).
    """
    global _current
    with _install_lock:
        try:
            _current = weakref.ref(database)
        except TypeError:  # not weakly referenceable: keep it (one per process in practice)
            _current = lambda: database  # noqa: E731
        collector = _installed.get(id(registry))
        if collector is None:
            collector = DatabaseMetrics(_newest)
            registry.register(collector)
            _installed[id(registry)] = collector
        return collector
