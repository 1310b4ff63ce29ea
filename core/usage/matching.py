"""Prometheus label-matcher semantics, evaluated on Phoenix's frames.

As Prometheus does: a missing label is the empty string; ``=~``/``!~`` are RE2 anchored at
both ends (``^(?:re)$``, Prometheus 2.x; 3.x also lets ``.`` match a newline, which process
labels never hold). Regexes run on RE2 through ``core.domain.user_regex``, like every other
user pattern in Phoenix: linear time whatever the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from core.domain.user_regex import match_values, regex_problem
from core.usage.promql import Matcher


def anchored(regex: str) -> str:
    return f"^(?:{regex})$"


def matcher_problem(m: Matcher) -> str | None:
    """Why Phoenix cannot evaluate this matcher (its regex), or None."""
    if m.op in ("=~", "!~"):
        why = regex_problem(anchored(m.value))
        if why:
            return f"regex {m.value!r} of {m.label} {why}"
    return None


def value_matches(op: str, value: str, text: str) -> bool:
    return bool(values_match(op, value, np.asarray([text], dtype=object))[0])


def values_match(op: str, value: str, texts: np.ndarray) -> np.ndarray:
    """Boolean per text (strings; None counts as the empty string, as a missing label does)."""
    texts = np.asarray([("" if t is None else t) for t in texts], dtype=object)
    if op in ("=", "!="):
        hit = texts == value
    else:
        hit = match_values(anchored(value), texts, where=f"regex matcher {value!r}")
    return ~hit if op in ("!=", "!~") else hit


def label_frame(df: pd.DataFrame, columns: Mapping[str, str]) -> dict[str, pd.Series]:
    """``label → string values per row`` for the given ``label → column`` mapping (absent → "")."""
    out: dict[str, pd.Series] = {}
    for label, col in columns.items():
        if col not in df.columns:
            continue
        s = df[col]
        if not isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype("string").fillna("").astype("category")
        out[label] = s
    return out


def rows_matching(labels: Mapping[str, pd.Series], n: int, matchers: Iterable[Matcher]) -> np.ndarray:
    """Rows whose labels satisfy every matcher. Each matcher runs once per distinct value."""
    mask = np.ones(n, dtype=bool)
    for m in matchers:
        s = labels.get(m.label)
        if s is None:  # nobody has this label: every row holds ""
            if not value_matches(m.op, m.value, ""):
                return np.zeros(n, dtype=bool)
            continue
        cats = np.asarray([str(c) for c in s.cat.categories], dtype=object)
        per_cat = values_match(m.op, m.value, cats)
        codes = s.cat.codes.to_numpy()
        empty_hit = value_matches(m.op, m.value, "")
        mask &= np.where(codes < 0, empty_hit, per_cat[np.maximum(codes, 0)] if len(cats) else empty_hit)
    return mask
