"""core.numbers: currency, counts and bytes as the pages show them, edge cases included."""

from __future__ import annotations

import math

import pytest

from core.numbers import MISSING, count, human_bytes, money, percent


@pytest.mark.parametrize("value,exact,compact", [
    (500_000, "$500,000.00", "$500K"),
    (1_234_567.891, "$1,234,567.89", "$1.23M"),
    (999_999, "$999,999.00", "$1M"),  # rounds up into the next unit, never "$1,000K"
    (12.5, "$12.50", "$12.50"),  # under a thousand: exact even when compact
    (0, "$0.00", "$0.00"),
    (-2_500_000, "-$2,500,000.00", "-$2.5M"),
    (0.001, "<$0.01", "<$0.01"),  # tiny but not nothing
    (-0.001, "-<$0.01", "-<$0.01"),
    (2.675, "$2.68", "$2.68"),  # half up, as on a bill
    (3.2e15, "$3,200,000,000,000,000.00", "$3,200T"),
])
def test_money(value: float, exact: str, compact: str) -> None:
    assert money(value) == exact
    assert money(value, compact=True) == compact


@pytest.mark.parametrize("value,text", [
    (27_907_783_200, "27,907,783,200"), (0, "0"), (-1234.5, "-1,235"), (12.5, "13"), (0.4, "0"),
    (-0.0001, "0"), (1e21, "1,000,000,000,000,000,000,000"),
])
def test_count(value: float, text: str) -> None:
    assert count(value) == text


def test_count_digits_and_percent() -> None:
    assert count(1234.5678, 2) == "1,234.57"
    assert percent(84.04) == "84.0%" and percent(-3.25) == "-3.3%" and percent(0) == "0.0%"
    assert percent(12_345.6) == "12,345.6%"


@pytest.mark.parametrize("value,text", [
    (27_907_783_200, "26.0 GiB"), (0, "0 B"), (1023, "1,023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (-5 * 1024**2, "-5.0 MiB"), (0.25, "<1 B"), (2**70, "1,024.0 EiB"),  # past the last unit: stays EiB
])
def test_human_bytes(value: float, text: str) -> None:
    assert human_bytes(value) == text


@pytest.mark.parametrize("fn", [money, count, human_bytes, percent])
def test_missing_and_nan_are_a_dash_and_infinity_is_named(fn) -> None:
    assert fn(None) == MISSING and fn(math.nan) == MISSING
    assert "∞" in fn(math.inf) and fn(-math.inf).startswith("-")
