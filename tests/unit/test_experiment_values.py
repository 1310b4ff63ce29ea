"""Value objects of an experiment: clear messages for every kind of bad value."""

from __future__ import annotations

import re

import pytest

from core.domain.criteria import (
    LoadProfile,
    PipelineRef,
    SuccessCriteria,
    Target,
    Timing,
)
from core.domain.durations import format_duration, parse_duration
from core.domain.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60), ("5m", 300), ("1.5h", 5400), ("500ms", 0.5), ("42", 42), (7, 7), (" 10s ", 10)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [("-5s", "must be positive"), ("5 days", "like 60s, 5m or 1h"), ("", "like 60s"), (None, "like 60s")],
)
def test_parse_duration_rejects(text: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_duration(text)  # type: ignore[arg-type]


def test_format_duration() -> None:
    assert [format_duration(s) for s in (5, 60, 90, 3600, 0.5)] == ["5s", "1m", "90s", "1h", "0.5s"]


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        (Timing(0, 5), "duration must be positive"),
        (Timing(-10, 5), "duration must be positive"),
        (Timing(30 * 86400, 5), "duration must be at most 168h"),
        (Timing(60, 0), "interval must be positive"),
        (Timing(60, 0.1), "interval must be between 0.5s and 3600s"),
        (Timing(60, 60), r"interval \(1m\) must be shorter than the duration \(1m\)"),
        (Timing(float("nan"), 5), "duration must be positive"),
    ],
)
def test_timing_problems(timing: Timing, message: str) -> None:
    problems = timing.validate()
    assert problems and any(re.search(message, p) for p in problems), problems


def test_timing_ok_and_expected_samples() -> None:
    assert Timing(60, 5).validate() == []
    assert Timing(60, 5).expected_samples() == 12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_series_reduction_pct": -1}, "min series reduction must be between 0 and 100"),
        ({"min_series_reduction_pct": 100.5}, "min series reduction must be between 0 and 100"),
        ({"min_cost_reduction_pct": 101}, "min cost reduction must be between 0 and 100"),
        ({"max_cpu_overhead_pct": -3}, "max CPU overhead must be 0 % or more"),
        ({"max_memory_overhead_mb": -1}, "max memory overhead must be 0 MB or more"),
        ({"min_samples": 1}, "min samples must be a whole number of at least 2"),
        ({"min_samples": 2.5}, "min samples must be a whole number"),
        ({"require_full_critical_coverage": "yes"}, "true or false"),
    ],
)
def test_criteria_problems(kwargs: dict, message: str) -> None:
    problems = SuccessCriteria(**kwargs).validate()
    assert any(message in p for p in problems), problems


def test_criteria_defaults_and_round_trip() -> None:
    c = SuccessCriteria()
    assert c.validate() == []
    assert c.require_full_critical_coverage is True and c.min_samples >= 2
    assert SuccessCriteria.from_dict(c.to_dict()) == c
    with pytest.raises(ValidationError, match="unknown field"):
        SuccessCriteria.from_dict({"min_series_reduction": 50})


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (Target(kind="cloud"), "target kind must be one of local, kubernetes"),
        (Target(kind="kubernetes"), "a kubernetes target needs a namespace"),
        (Target(kind="kubernetes", namespace="Bad_NS"), "not a valid Kubernetes name"),
        (Target(kind="local", namespace="ns"), "only apply to a kubernetes target"),
        (Target(kind="kubernetes", namespace="obs", node_selector={"bad key!": "x"}), "not a valid label key"),
        (Target(kind="kubernetes", namespace="obs", node_selector={"role": "no spaces"}), "not a valid label value"),
    ],
)
def test_target_problems(target: Target, message: str) -> None:
    assert any(message in p for p in target.validate()), target.validate()


def test_target_ok() -> None:
    t = Target(kind="kubernetes", namespace="observability", node_selector={"kubernetes.io/os": "linux"})
    assert t.validate() == []
    assert Target.from_dict(t.to_dict()) == t
    assert t.describe() == "kubernetes ns/observability [kubernetes.io/os=linux]"
    assert Target().describe() == "this host"


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (LoadProfile(name="chaos"), "unknown load profile 'chaos'; choose one of realistic"),
        (LoadProfile(max_processes=0), "max processes must be between 1 and 2000"),
        (LoadProfile(params={"scale": 0}), "load scale must be between 0 and 10"),
        (LoadProfile(name="custom"), "needs params.patterns"),
        (LoadProfile(name="custom", params={"patterns": [{"cpu_pattern": "wavy"}]}), "cpu pattern must be one of steady"),
        (LoadProfile(name="custom", params={"patterns": [{"count": 0}]}), "count must be between 1"),
        (LoadProfile(name="custom", params={"patterns": [{"lifetime_s": -1}]}), "lifetime must be 0"),
        (LoadProfile(name="custom", params={"patterns": [{"name_template": "w-{n}"}]}), "may only use the placeholder {i}"),
        (LoadProfile(name="custom", params={"patterns": [{"name_template": "a/b"}]}), "must not contain '/'"),
        (LoadProfile(name="custom", params={"patterns": [{"memory_pattern": "x"}]}), "memory pattern must be one of"),
        (LoadProfile(name="custom", params={"patterns": [{"churn_rate": -2}]}), "churn rate must be between 0"),
        (LoadProfile(name="custom", params={"patterns": [{"colour": "red"}]}), "unknown key(s) colour"),
        (
            LoadProfile(name="custom", params={"patterns": [{"count": 200}, {"count": 200}]}),
            "custom patterns ask for 400 processes; max processes is 300",
        ),
    ],
)
def test_load_profile_problems(profile: LoadProfile, message: str) -> None:
    assert any(message in p for p in profile.validate()), profile.validate()


def test_load_profile_custom_fills_defaults() -> None:
    lp = LoadProfile(name="custom", params={"patterns": [{"name_template": "nginx", "count": 3, "cpu_pattern": "spiky"}]})
    assert lp.validate() == []
    (pat,) = lp.patterns()
    assert pat["count"] == 3 and pat["cpu_pattern"] == "spiky" and pat["memory_pattern"] == "steady"
    assert LoadProfile.from_dict(lp.to_dict()) == lp
    assert LoadProfile().max_processes == 300
    for name in ("realistic", "high-cardinality", "process-churn", "none"):
        assert LoadProfile(name=name).validate() == []


@pytest.mark.parametrize(
    ("text", "ref"),
    [("process-topk-v1", PipelineRef("process-topk-v1")), ("p@3", PipelineRef("p", 3)), (" p@12 ", PipelineRef("p", 12))],
)
def test_pipeline_ref_parse(text: str, ref: PipelineRef) -> None:
    assert PipelineRef.parse(text) == ref
    assert PipelineRef.parse(str(ref)) == ref


@pytest.mark.parametrize(("text", "message"), [("", "must be a pipeline name"), ("@2", "no pipeline name"),
                                               ("p@x", "positive whole number"), ("p@0", "positive whole number")])
def test_pipeline_ref_rejects(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PipelineRef.parse(text)
