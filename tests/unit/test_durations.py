"""One duration grammar (Go's time.ParseDuration) for experiments, CLI flags and node parameters."""

from __future__ import annotations

import pytest

from core.catalog.hostmetrics import NODE as HOSTMETRICS
from core.catalog.interval import NODE as INTERVAL
from core.domain.criteria import Timing
from core.domain.durations import duration_or_none, format_duration, parse_duration
from core.domain.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("1.5h", 5400), (".5s", 0.5), ("1h2m3s4ms", 3723.004),
     ("0", 0), ("0s", 0), ("250us", 250e-6), ("250µs", 250e-6), ("10ns", 10e-9)],
)
def test_go_durations_read_the_same_everywhere(text: str, seconds: float) -> None:
    assert parse_duration(text, strict=True) == pytest.approx(seconds)
    assert parse_duration(text) == pytest.approx(seconds)
    assert duration_or_none(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["42", " 10s ", "10s\n", 7, 2.5])
def test_people_may_also_type_bare_seconds_and_spaces_but_configs_may_not(text: object) -> None:
    assert parse_duration(text) > 0
    assert duration_or_none(text) is None
    with pytest.raises(ValidationError, match="must be a duration like 60s, 5m or 1h"):
        parse_duration(text, "collection_interval", strict=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [("-5s", "--interval must be positive, got '-5s'"), ("+5s", "must be positive"), (-1, "must be positive"),
     ("5 days", "must be a duration like 60s, 5m or 1h"), ("1d", "like 60s"), ("s", "like 60s"), ("", "like 60s"),
     ("1m30", "like 60s"), (None, "like 60s"), (True, "like 60s"), ([], "like 60s"),
     (float("nan"), "finite number"), ("1" * 400 + "s", "far too long"), ("300000000h", "far too long")],
)
def test_bad_durations_get_one_clear_sentence(text: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as err:
        parse_duration(text, "--interval")
    assert len(str(err.value)) < 200  # hostile input is cut, never echoed whole


def test_an_experiment_takes_1m30s_as_a_collection_interval_does() -> None:
    timing = Timing(parse_duration("1m30s", "duration"), parse_duration("1m30s", "interval"))
    assert timing.validate() == ["interval (90s) must be shorter than the duration (90s)"]
    assert Timing(parse_duration("2m30s"), parse_duration("1m30s")).validate() == []
    assert HOSTMETRICS.validate({"collection_interval": "1m30s"}) == []
    assert INTERVAL.validate({"interval": "1m30s"}) == []


def test_bounds_stay_with_each_caller() -> None:
    assert HOSTMETRICS.validate({"collection_interval": "500ms"}) == ["collection_interval: must be at least 1s, got 500ms"]
    assert HOSTMETRICS.validate({"collection_interval": "2h"}) == ["collection_interval: must be at most 3600s, got 2h"]
    assert Timing(parse_duration("200h"), 5).validate()[0].startswith("duration must be at most")


def test_format_duration_is_the_shortest_exact_form() -> None:
    assert [format_duration(s) for s in (5, 60, 90, 3600, 0.5)] == ["5s", "1m", "90s", "1h", "0.5s"]
