from __future__ import annotations

import random

import pytest

from core.domain.criteria import LoadProfile
from core.domain.errors import ValidationError
from core.runtime.loadsim import BUILTIN_PROFILES, LoadLimits, ProcessPattern, patterns_for, plan
from core.runtime.loadworker import duty_at, memory_at


def test_realistic_profile_has_realistic_names_and_fits_default_limits():
    pats = patterns_for(LoadProfile("realistic"))
    names = {p.name(0) for p in pats}
    assert {"nginx", "postgres", "redis-server", "python-app", "java", "node"} <= names
    pl = plan(pats, LoadLimits())
    assert pl.notes == ()  # nothing had to be scaled
    assert pl.processes == sum(p.count for p in BUILTIN_PROFILES["realistic"])


def test_scale_multiplies_counts():
    base = patterns_for(LoadProfile("high-cardinality"))
    double = patterns_for(LoadProfile("high-cardinality", params={"scale": 2.0}))
    assert [p.count * 2 for p in base] == [p.count for p in double]


def test_custom_patterns_fill_defaults_and_expand_template():
    prof = LoadProfile("custom", params={"patterns": [{"name_template": "api-{i}", "count": 3, "cpu_pattern": "spiky"}]})
    (pat,) = patterns_for(prof)
    assert [pat.name(i) for i in range(pat.count)] == ["api-0", "api-1", "api-2"]
    assert pat.cpu_pattern == "spiky" and pat.memory_mb == 20.0


def test_bad_profile_is_a_clear_error():
    with pytest.raises(ValidationError, match="unknown load profile"):
        patterns_for(LoadProfile("nope"))


def test_plan_scales_count_cpu_and_memory_under_caps():
    pats = [ProcessPattern("a-{i}", 200, cpu_pct=1.0, memory_mb=10), ProcessPattern("b", 200, cpu_pct=1.0, memory_mb=10)]
    pl = plan(pats, LoadLimits(max_processes=100, cpu_cap_pct=20.0, memory_cap_mb=250.0))
    assert pl.processes == 100
    assert pl.cpu_pct == pytest.approx(20.0)
    assert pl.memory_mb == pytest.approx(250.0)
    assert len(pl.notes) == 3


def test_plan_with_many_one_process_patterns_still_respects_max():
    pats = [ProcessPattern(f"p{i}", 1, cpu_pct=0.1, memory_mb=1) for i in range(10)]
    assert plan(pats, LoadLimits(max_processes=4)).processes == 4


def test_invalid_limits_rejected():
    with pytest.raises(ValidationError, match="max processes"):
        plan([ProcessPattern("a", 1)], LoadLimits(max_processes=0))


@pytest.mark.parametrize("pattern", ["steady", "spiky", "growing", "random"])
def test_cpu_patterns_average_near_target_and_stay_in_range(pattern):
    rng = random.Random(1)
    target = 0.05
    vals = [duty_at(pattern, target, k * 0.5, 60.0, rng) for k in range(120)]
    assert all(0.0 <= v <= 1.0 for v in vals)
    mean = sum(vals) / len(vals)
    assert 0.5 * target <= mean <= 1.5 * target, mean


def test_growing_cpu_ramps_and_spiky_has_spikes():
    rng = random.Random(0)
    assert duty_at("growing", 0.1, 0.0, 10.0, rng) < duty_at("growing", 0.1, 9.0, 10.0, rng)
    spiky = {duty_at("spiky", 0.1, k * 0.5, 0, rng) for k in range(10)}
    assert sorted(spiky) == [0.0, pytest.approx(0.5)]


def test_memory_patterns():
    rng = random.Random(0)
    assert memory_at("steady", 10, 5, 0, rng) == 10
    assert memory_at("growing", 10, 0, 10, rng) < memory_at("growing", 10, 10, 10, rng)
    assert memory_at("steady", 0, 5, 0, rng) == 0
