"""The estimate use case: one pipeline on one process snapshot, priced and classified with
what Settings holds. ``phoenix estimate``, the builder, the wizard preview, the cost
explorer and the REST estimate route all call this, so an edit in Settings changes every one
of them alike.

``Estimates.report`` answers from the cache (``core.domain.ports.Cache``; Redis when
``PHOENIX_REDIS_URL`` is set, so every process reuses what one computed). The key is a
SHA-256 over everything the result depends on — the pipeline as parsed (canonical JSON, not
the user's text), the snapshot's content, the critical policy and price cards in use, the
options, and a digest of the code that computes it — so a change to any of them is a new
key and nothing stale can come back: there is nothing to invalidate.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
from importlib import resources
from typing import Any, Final

import pandas as pd

from core.cache import cache_for
from core.cache.memory import MemoryCache
from core.catalog.frame import ResourceFrame
from core.domain.critical import CriticalPolicy
from core.domain.pipeline import Pipeline
from core.domain.ports import Cache
from core.engine.estimate import EstimateResult, estimate
from core.observability.metrics import ESTIMATE_SECONDS
from core.observability.tracing import traced
from core.services.settings import CRITICAL_POLICY, SettingsService

log = logging.getLogger(__name__)

CACHE_NAME: Final = "estimate"
#: An estimate never goes stale (its key names all its inputs): the TTL only bounds memory.
TTL_S: Final = 6 * 3600
#: Bump to drop every cached estimate when the report's layout changes without code changes
#: in the packages that ``code_salt`` reads.
LAYOUT_VERSION: Final = 1
#: The code an estimate's result depends on: a change in any of these files is a new key.
_CODE_PACKAGES: Final = ("core.engine", "core.catalog", "core.domain", "core.services")
_CODE_MODULES: Final = ("cost.py",)


def policy_for(pipeline: Pipeline, configuration: SettingsService,
               policy: CriticalPolicy | None = None) -> CriticalPolicy | None:
    """The critical policy an estimate applies: the one given (``--critical-file``), else the
    pipeline's own, else the default saved in Settings. None leaves the engine's built-in default."""
    if policy is not None or pipeline.critical_policy is not None:
        return policy
    saved = configuration.get(CRITICAL_POLICY)
    return None if saved.source == "default" else saved.require()


@traced("estimate_pipeline")
def estimate_pipeline(
    pipeline: Pipeline,
    snapshot: Any,
    configuration: SettingsService,
    *,
    source: str = "snapshot",
    policy: CriticalPolicy | None = None,
    with_cost: bool = True,
) -> EstimateResult:
    """``core.engine.estimate.estimate`` with the critical policy and price cards in use.

    A broken setting (an invalid ``PHOENIX_PRICE_CARD_FILE``, say) is a ValidationError
    naming its source, raised before any work is done. Never cached: the result carries
    the evaluation itself (``--series-out`` needs it); ``Estimates.report`` is the cached one.
    """
    chosen = policy_for(pipeline, configuration, policy)
    cards = configuration.price_cards() if with_cost else None
    return estimate(pipeline, snapshot, policy=chosen, source=source, with_cost=with_cost, cards=cards)


class Estimates:
    """Estimate reports through a cache (in-process by default)."""

    def __init__(self, configuration: SettingsService, cache: Cache | None = None):
        self.configuration = configuration
        self.cache: Cache = cache if cache is not None else MemoryCache()

    @classmethod
    def for_redis(cls, configuration: SettingsService, redis_url: str | None) -> Estimates:
        """For a one-shot process (``phoenix estimate``): shared through Redis when configured."""
        return cls(configuration, cache_for(redis_url))

    def close(self) -> None:
        self.cache.close()

    def report(self, pipeline: Pipeline, snapshot: Any, *, source: str = "snapshot",
               policy: CriticalPolicy | None = None, with_cost: bool = True) -> dict[str, Any]:
        """The estimate's report, equal whether it was computed now or found in the cache
        (both are the same JSON document: NaN stays NaN, numbers stay numbers)."""
        chosen = policy_for(pipeline, self.configuration, policy)
        cards = self.configuration.price_cards() if with_cost else None  # a broken card fails here, first
        key = cache_key(pipeline, snapshot, source=source, policy=chosen, with_cost=with_cost, cards=cards)
        if key is not None:
            cached = self.cache.get(CACHE_NAME, key)
            found = _decoded(cached) if cached is not None else None
            if found is not None:
                return found
            if cached is not None:  # not ours after all: compute it again and overwrite it
                log.warning("cache: an unreadable estimate entry was replaced")
        started = time.perf_counter()
        result = estimate(pipeline, snapshot, policy=chosen, source=source, with_cost=with_cost, cards=cards)
        ESTIMATE_SECONDS.observe(time.perf_counter() - started)
        encoded = encode_report(result.report)
        if key is not None:
            self.cache.set(CACHE_NAME, key, encoded, TTL_S)
        return json.loads(encoded)  # type: ignore[no-any-return]


# ---- the key and the value ------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """What ``json.dumps`` cannot write itself: numpy scalars, dataclasses, sets, paths."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def _decoded(value: bytes) -> dict[str, Any] | None:
    try:
        report = json.loads(value)
    except ValueError:  # includes undecodable bytes
        return None
    return report if isinstance(report, dict) else None


def encode_report(report: dict[str, Any]) -> bytes:
    """The report as JSON bytes (NaN and infinities kept as JSON's NaN/Infinity tokens)."""
    return json.dumps(report, default=_plain, separators=(",", ":")).encode()


def snapshot_digest(snapshot: Any) -> str | None:
    """SHA-256 of a snapshot's columns, types and every value; None when it cannot be hashed
    (then the estimate is simply not cached)."""
    df = snapshot.df if isinstance(snapshot, ResourceFrame) else snapshot
    if not isinstance(df, pd.DataFrame):
        return None
    try:
        rows = pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes()
    except TypeError:  # unhashable cells (lists, dicts)
        return None
    head = json.dumps([type(snapshot).__name__, [str(c) for c in df.columns], [str(t) for t in df.dtypes]])
    return hashlib.sha256(head.encode() + b"\0" + rows).hexdigest()


@functools.cache
def code_salt() -> str:
    """A digest of the code an estimate runs (read once per process)."""
    digest = hashlib.sha256(f"layout {LAYOUT_VERSION}".encode())
    for package in _CODE_PACKAGES:
        for path in sorted(_python_files(resources.files(package)), key=str):
            digest.update(str(path).rsplit("core", 1)[-1].encode() + b"\0" + path.read_bytes())
    for module in _CODE_MODULES:
        digest.update(resources.files("core").joinpath(module).read_bytes())
    return digest.hexdigest()


def _python_files(root: Any) -> list[Any]:
    found = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            found += _python_files(entry)
        elif entry.name.endswith((".py", ".yaml")):
            found.append(entry)
    return found


def cache_key(pipeline: Pipeline, snapshot: Any, *, source: str, policy: CriticalPolicy | None,
              with_cost: bool, cards: list[Any] | None) -> str | None:
    """Everything an estimate's report depends on, as one canonical text (None: do not cache)."""
    snap = snapshot_digest(snapshot)
    if snap is None:
        return None
    return json.dumps({
        "code": code_salt(),
        "pipeline": pipeline.to_dict(),
        "snapshot": snap,
        "source": source,
        "policy": policy,  # every field: its rules, default priority and source can all show in the report
        "with_cost": with_cost,
        "cards": cards,
    }, sort_keys=True, default=_plain, separators=(",", ":"))
