"""Estimates shared between independently bootstrapped Phoenix processes through a real Redis,
and the in-process cache when no Redis is configured."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY

from core.bootstrap import Services, bootstrap
from core.cache import MemoryCache
from core.cache.keys import PREFIX
from core.cache.redis import RedisCache
from core.catalog.templates import get_template
from core.engine.fleet import generate_fleet
from core.engine.snapshot import write_snapshot
from core.services.requests import EstimatePipeline
from core.settings import Settings
from tests.actors import viewer

VIEWER = viewer()


def _settings(tmp_path: Path, redis_url: str | None) -> Settings:
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'phoenix.db'}",
                    gitops_repo=tmp_path / "gitops", runtime="memory", embedded_scheduler=False,
                    redis_url=redis_url)


@pytest.fixture
def snapshot_csv() -> bytes:
    buf = io.BytesIO()
    # a seed no other test uses: the session's Redis must not already hold this estimate
    write_snapshot(generate_fleet(3, 30, seed=4242, scrapes=2), buf)
    return buf.getvalue()


def _count(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _computed() -> float:
    return _count("phoenix_estimate_seconds_count")


def _hits() -> float:
    return _count("phoenix_cache_requests_total", {"cache": "estimate", "result": "hit"})


@pytest.fixture
def two_processes(tmp_path: Path, redis_url: str) -> Iterator[tuple[Services, Services]]:
    one = bootstrap(_settings(tmp_path / "one", redis_url))
    two = bootstrap(_settings(tmp_path / "two", redis_url))
    try:
        yield one, two
    finally:
        one.close()
        two.close()


def test_a_second_process_gets_the_first_ones_estimate_from_redis(two_processes: tuple[Services, Services],
                                                                   snapshot_csv: bytes, redis_url: str) -> None:
    one, two = two_processes
    assert isinstance(one.cache, RedisCache) and isinstance(two.cache, RedisCache)
    request = EstimatePipeline(pipeline="process-topk-v1", source="shared.csv")
    computed, hits = _computed(), _hits()
    first = one.pipelines.estimate(VIEWER, request, snapshot_csv)
    assert (_computed(), _hits()) == (computed + 1, hits)  # a miss: computed once
    second = two.pipelines.estimate(VIEWER, request, snapshot_csv)
    assert (_computed(), _hits()) == (computed + 1, hits + 1)  # the other process: a hit, nothing computed
    assert second == first
    stored = redis.Redis.from_url(redis_url).keys(f"{PREFIX}estimate:*")
    assert stored, "the estimate should be in Redis under the estimate namespace"


def test_without_redis_each_process_caches_for_itself(tmp_path: Path, snapshot_csv: bytes) -> None:
    one, two = bootstrap(_settings(tmp_path / "one", None)), bootstrap(_settings(tmp_path / "two", None))
    try:
        assert isinstance(one.cache, MemoryCache) and one.cache is not two.cache
        request = EstimatePipeline(pipeline="process-topk-v1", source="local.csv")
        computed = _computed()
        first = one.pipelines.estimate(VIEWER, request, snapshot_csv)
        assert one.pipelines.estimate(VIEWER, request, snapshot_csv) == first
        assert _computed() == computed + 1  # the second one was this process's hit
        again = two.pipelines.estimate(VIEWER, request, snapshot_csv)
        assert (again["series_in"], again["series_out"], again["cost"]) == (first["series_in"], first["series_out"],
                                                                            first["cost"])
        assert _computed() == computed + 2  # another process does not see it without Redis
        readiness = one.system.readiness(VIEWER)
        assert readiness.ready and "redis" not in readiness.checks
    finally:
        one.close()
        two.close()


def test_a_phoenix_estimate_command_gets_another_process_estimate_from_redis(tmp_path: Path,
                                                                           snapshot_csv: bytes) -> None:
    """This process estimates through Redis; a separate ``phoenix estimate`` process then finds it
    there (Redis's own hit counter says so) and prints the same report."""
    import json
    import os
    import subprocess
    import sys

    from core.commands.estimate import _clean
    from core.engine.snapshot import load_snapshot
    from core.services.estimate import Estimates
    from core.services.settings import SettingsService
    from tests.conftest import ThrowawayRedis

    server = ThrowawayRedis().start()  # its own: the hit counter below is this test's alone
    try:
        csv = tmp_path / "fleet.csv"
        csv.write_bytes(snapshot_csv)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PHOENIX_PRICE_CARD_FILE", "PHOENIX_CRITICAL_POLICY_FILE")}
        env.update(PHOENIX_REDIS_URL=server.url, PHOENIX_DATA_DIR=str(tmp_path),
                   PHOENIX_DATABASE_URL=f"sqlite:///{tmp_path / 'never-created.db'}")
        # what the command uses without a database: the defaults (and no environment overrides)
        ours = Estimates.for_redis(SettingsService(None, env={}), server.url)
        mine = ours.report(get_template("process-topk-v1"), load_snapshot(csv), source="fleet.csv")
        ours.close()
        store = redis.Redis.from_url(server.url)
        hits = int(store.info("stats")["keyspace_hits"])
        out = subprocess.run([sys.executable, "-m", "core", "estimate", "--pipeline", "process-topk-v1",
                              "--snapshot", str(csv), "--json"],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        assert int(store.info("stats")["keyspace_hits"]) == hits + 1, "the command should have read it from Redis"
        theirs = json.loads(out.stdout)
        theirs.pop("timings")
        assert theirs == _clean(mine)
    finally:
        server.stop()
