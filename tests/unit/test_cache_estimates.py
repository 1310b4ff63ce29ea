"""Estimates through the cache: a hit is the uncached answer, and every input is in the key."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from prometheus_client import REGISTRY

from core.cache import MemoryCache
from core.catalog.templates import get_template
from core.cost import bundled_price_card_text
from core.domain.critical import policy_from_rules
from core.engine.fleet import generate_fleet
from core.services.estimate import CACHE_NAME, Estimates, encode_report, estimate_pipeline, snapshot_digest
from core.services.settings import SettingsService
from core.store.memory import MemoryDatabase
from tests.actors import ADMIN


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PHOENIX_CRITICAL_POLICY_FILE", "PHOENIX_PRICE_CARD_FILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def snapshot():
    return generate_fleet(3, 40, seed=5, scrapes=2)


class CountingCache(MemoryCache):
    """The in-process cache, remembering which lookups found something."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[str] = []

    def get(self, namespace: str, key: str) -> bytes | None:
        value = super().get(namespace, key)
        self.results.append("miss" if value is None else "hit")
        return value


def _estimates() -> tuple[Estimates, SettingsService, CountingCache]:
    conf, cache = SettingsService(MemoryDatabase().uow, env={}), CountingCache()
    return Estimates(conf, cache), conf, cache


#: When the answer was computed and how long it took: a hit reports the original computation's.
WHEN = ("evaluation_seconds", "computed_at")


def _without_times(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in WHEN}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _estimates_observed() -> float:
    return REGISTRY.get_sample_value("phoenix_estimate_seconds_count") or 0.0


def test_a_hit_is_equal_to_the_uncached_estimate(snapshot) -> None:
    estimates, conf, cache = _estimates()
    pipeline = get_template("process-topk-v1")
    uncached = json.loads(encode_report(estimate_pipeline(pipeline, snapshot, conf, source="s").report))
    first = estimates.report(pipeline, snapshot, source="s")
    observed = _estimates_observed()
    second = estimates.report(pipeline, snapshot, source="s")
    assert cache.results == ["miss", "hit"]
    assert first == second
    # equal to a fresh computation but for how long that one took (a hit reports the original time)
    assert _without_times(first) == _without_times(uncached)
    assert _estimates_observed() == observed  # a hit computes nothing
    second["series_out"] = -1  # the caller owns its copy: the cached value is untouched
    assert estimates.report(pipeline, snapshot, source="s")["series_out"] == first["series_out"]


def test_nan_survives_the_cache() -> None:
    assert json.loads(encode_report({"x": float("nan"), "y": [1, 2.5]}))["y"] == [1, 2.5]
    assert json.loads(encode_report({"x": float("nan")}))["x"] != json.loads(encode_report({"x": 0.0}))["x"]


def test_a_price_card_edit_is_a_new_key_so_nothing_stale_comes_back(snapshot) -> None:
    estimates, conf, cache = _estimates()
    pipeline = get_template("process-topk-v1")
    before = estimates.report(pipeline, snapshot)
    doc = yaml.safe_load(bundled_price_card_text())
    for card in doc["cards"]:
        if card["id"] == "grafana-cloud-pro":
            card["params"].update(free_series=0, usd_per_1000_series=13.0)
    conf.set_price_cards(doc, ADMIN)
    after = estimates.report(pipeline, snapshot)
    assert cache.results == ["miss", "miss"]
    fresh = json.loads(encode_report(estimate_pipeline(pipeline, snapshot, conf).report))
    assert _without_times(after) == _without_times(fresh) != _without_times(before)


def test_a_critical_policy_edit_is_a_new_key(snapshot) -> None:
    estimates, conf, cache = _estimates()
    pipeline = get_template("process-topk-v1")
    default = estimates.report(pipeline, snapshot, with_cost=False)["critical"]
    conf.set_critical_policy("rules: []\n", ADMIN)
    none = estimates.report(pipeline, snapshot, with_cost=False)["critical"]
    assert cache.results == ["miss", "miss"]
    assert default["critical_processes"] > 0 and none["critical_processes"] == 0
    given = policy_from_rules([{"match": "owner", "pattern": "^ops$", "priority": "critical"}])
    estimates.report(pipeline, snapshot, with_cost=False, policy=given)
    assert cache.results[-1] == "miss"


def test_the_pipeline_the_snapshot_and_the_options_are_in_the_key(snapshot) -> None:
    estimates, _, cache = _estimates()
    pipeline = get_template("process-topk-v1")
    estimates.report(pipeline, snapshot)
    edited = copy.deepcopy(pipeline)
    topk = next(n for n in edited.nodes if n.params.get("k") is not None or "topk" in n.type)
    topk.params = {**topk.params, "k": int(topk.params.get("k") or 10) + 1}
    estimates.report(edited, snapshot)
    other = snapshot.copy()
    other.iloc[0, other.columns.get_loc("memory_usage")] += 1
    estimates.report(pipeline, other)
    estimates.report(pipeline, snapshot, source="another name")
    estimates.report(pipeline, snapshot, with_cost=False)
    assert cache.results == ["miss"] * 5
    estimates.report(pipeline, snapshot.copy())  # the same content in another object: a hit
    assert cache.results[-1] == "hit"


def test_an_unhashable_snapshot_is_estimated_without_the_cache(snapshot) -> None:
    assert snapshot_digest(snapshot) == snapshot_digest(snapshot.copy())
    assert snapshot_digest("not a frame") is None


def test_a_foreign_value_under_the_key_is_recomputed_and_replaced(snapshot) -> None:
    estimates, _, cache = _estimates()
    pipeline = get_template("process-topk-v1")
    good = estimates.report(pipeline, snapshot)
    for foreign in (b"\x80 not json", b"[1, 2]"):
        for name in list(cache._entries):
            cache._entries[name] = (cache._entries[name][0], foreign)
        computed = _estimates_observed()
        assert _without_times(estimates.report(pipeline, snapshot)) == _without_times(good)
        assert _estimates_observed() == computed + 1  # found something unusable: recomputed
        assert _without_times(estimates.report(pipeline, snapshot)) == _without_times(good)
        assert _estimates_observed() == computed + 1  # and replaced it: the next one is a real hit
    assert CACHE_NAME == "estimate"
