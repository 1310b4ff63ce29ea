"""Achieved vs budget per host (adaptive): one small table for the builder's estimate and the experiment page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

from core.domain.budget import HostBudget, from_estimate, latest


def _fmt(x: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if x is None else fmt.format(x)


def table_rows(rows: Iterable[HostBudget]) -> list[dict[str, Any]]:
    return [{"node": r.node, "host": r.host, "baseline series": _fmt(r.baseline_series), "budget": _fmt(r.budget),
             "achieved": _fmt(r.achieved), "deviation": _fmt(r.deviation_pct, "{:+.1f}%"),
             "limit": r.limit or ""} for r in rows]


def estimate_budget(report: Mapping[str, Any]) -> None:
    """Under an estimate: what each host would export against its series budget."""
    rows = from_estimate(report.get("budget"))
    if rows:
        st.markdown("**Series budget per host** (what the pipeline exports on this snapshot)")
        st.dataframe(table_rows(rows), hide_index=True, width="stretch")


def experiment_budget(rows: list[HostBudget]) -> None:
    """On an experiment: the closed loop's last achieved vs budget per host, and its history."""
    now = latest(rows)
    if not now:
        return
    st.subheader("Series budget per host")
    st.caption("Adaptive re-tunes its thresholds each interval from what the candidate collector exported; "
               "achieved is the last measured interval.")
    st.dataframe(table_rows(now), hide_index=True, width="stretch")
    with st.expander(f"Closed loop, interval by interval ({len(rows)} rows)"):
        st.dataframe([{"interval": r.interval, **row} for r, row in zip(rows, table_rows(rows), strict=True)],
                     hide_index=True, width="stretch")
