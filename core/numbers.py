"""Numbers as people read them: currency, counts with thousands separators, bytes in units.

One module so every page, table caption and report writes ``$500,000.00``, ``27,907,783,200``
and ``26.0 GiB`` the same way. Plain Python (no Phoenix imports): pages, widgets and reports
all use it. Every function takes ``None``/NaN (a measure not taken) and returns ``MISSING``
instead of raising, because a page should still render when one figure is absent.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["MISSING", "count", "human_bytes", "money", "percent"]

MISSING = "—"
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_COMPACT = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def _real(x: float | int | None) -> float | None:
    """``x`` as a float, or None when it is missing or not a number (NaN)."""
    if x is None:
        return None
    value = float(x)
    return None if math.isnan(value) else value


def _sign(value: float) -> str:
    return "-" if value < 0 else ""


def money(x: float | int | None, *, compact: bool = False, symbol: str = "$") -> str:
    """``$500,000.00``; with ``compact`` ``$500K`` / ``$1.23M`` (amounts under a thousand stay exact).

    A non-zero amount that rounds to zero cents says so (``<$0.01``) rather than show ``$0.00``.
    """
    value = _real(x)
    if value is None:
        return MISSING
    if math.isinf(value):
        return f"{_sign(value)}{symbol}∞"
    size = abs(value)
    if 0 < size < 0.005:
        return f"{_sign(value)}<{symbol}0.01"
    if compact and size >= 1000:
        rounded = float(f"{size:.3g}")  # three significant digits first, so $999,999 is $1M, not $1,000K
        for threshold, suffix in _COMPACT:
            if rounded >= threshold:
                scaled = rounded / threshold
                text = f"{scaled:,.0f}" if scaled >= 100 else f"{scaled:.3g}"
                return f"{_sign(value)}{symbol}{text}{suffix}"
    return f"{_sign(value)}{symbol}{count(size, 2)}"


def count(x: float | int | None, digits: int = 0) -> str:
    """``27,907,783,200``: thousands separators, rounded to ``digits`` decimals."""
    value = _real(x)
    if value is None:
        return MISSING
    if math.isinf(value):
        return f"{_sign(value)}∞"
    # Half up, as people round (format() rounds half to even: 12.5 would print 12).
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    if exact == 0:
        exact = abs(exact)  # never "-0"
    return f"{exact:,.{digits}f}"


def human_bytes(x: float | int | None) -> str:
    """``26.0 GiB``: binary units (1 KiB = 1,024 B), one decimal above bytes."""
    value = _real(x)
    if value is None:
        return MISSING
    if math.isinf(value):
        return f"{_sign(value)}∞ B"
    size = abs(value)
    if 0 < size < 1:
        return f"{_sign(value)}<1 B"
    for unit in _BINARY_UNITS:
        if size < 1024 or unit == _BINARY_UNITS[-1]:
            text = f"{size:,.0f}" if unit == "B" else f"{size:,.1f}"
            return f"{_sign(value)}{text} {unit}"
        size /= 1024
    raise AssertionError("unreachable: the last unit always returns")


def percent(x: float | int | None, digits: int = 1) -> str:
    """``84.0%`` (``x`` already in percent)."""
    value = _real(x)
    if value is None:
        return MISSING
    return f"{count(value, digits)}%"
