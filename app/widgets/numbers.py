"""How pages show numbers: ``core.numbers`` for text, and Streamlit column formats for tables.

Tables keep their numbers numeric (so a column still sorts by value) and let the column
config draw them: dollars with cents and separators, counts with separators, percentages
with one decimal. Bytes have no column format in Streamlit, so rows carry them as text
(``core.numbers.human_bytes``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.numbers import MISSING, count, human_bytes, money, percent

__all__ = ["MISSING", "columns", "count", "human_bytes", "metric_money", "money", "percent"]

#: column kind → Streamlit NumberColumn format ("dollar": $1,234.57; "localized": 1,234,567).
FORMATS = {"money": "dollar", "count": "localized", "percent": "%.1f%%"}
#: The usual column names of Phoenix's tables and what they hold.
KINDS = {"before": "money", "after": "money", "saving_usd": "money", "saving_pct": "percent",
         "series": "count", "last measured %": "percent", "bytes_per_point": "count"}


def columns(names: Iterable[str], kinds: dict[str, str] | None = None) -> dict[str, Any]:
    """``st.dataframe(column_config=...)`` for the ``names`` whose kind is known (``KINDS`` + ``kinds``)."""
    import streamlit as st

    known = {**KINDS, **(kinds or {})}
    return {n: st.column_config.NumberColumn(n, format=FORMATS[known[n]]) for n in names if n in known}


def metric_money(col: Any, label: str, usd: float | None, per: str = "/month", delta: str | None = None) -> None:
    """A metric with the amount compact (``$500K/month``) and the exact one in its tooltip."""
    exact = money(usd)
    col.metric(label, money(usd, compact=True) + ("" if exact == MISSING else per), delta,
               help=None if exact == MISSING else f"Exactly {exact}{per}", delta_color="off")
