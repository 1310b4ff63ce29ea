"""Recommend: a pipeline from the PromQL of your alert rules and dashboards (docs/recommend.md)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
import yaml

from app import guard
from app.widgets import backend
from app.widgets.boundary import boundary

REPORT = "rec.report"


def _form() -> None:
    with st.form("rec.form"):
        snapshot = st.file_uploader("Process snapshot (CSV)", type=["csv"], key="rec.snapshot")
        rules = st.file_uploader("Prometheus rule files (YAML)", type=["yml", "yaml"], accept_multiple_files=True,
                                 key="rec.rules")
        dashboards = st.file_uploader("Grafana dashboards (JSON)", type=["json"], accept_multiple_files=True,
                                      key="rec.dashboards")
        prom = st.checkbox("Also read the rules of the Prometheus configured in Settings", key="rec.prometheus")
        go = st.form_submit_button("Recommend", type="primary")
    if not go:
        return
    st.session_state.pop(REPORT, None)  # a new submit: an older report must not pass for its answer
    if snapshot is None or not (rules or dashboards or prom):
        st.error("Upload a snapshot and at least one rule file or dashboard, or read the Prometheus in Settings.")
        return
    with st.spinner("Reading the queries and estimating the pipeline…"):
        st.session_state[REPORT] = backend.recommend(
            snapshot.getvalue(), [(f.name, f.getvalue()) for f in rules or []],
            [(f.name, f.getvalue()) for f in dashboards or []], prom)


def _queries(r: dict[str, Any]) -> None:
    st.subheader("Queries")
    queries = pd.DataFrame(r["queries"], columns=["status", "origin", "reason", "processes", "expr"])
    st.dataframe(queries, hide_index=True, width="stretch", key="rec.queries")


def _report(r: dict[str, Any]) -> None:
    e, c = r["estimate"], r["counts"]
    if not (c["kept"] or c["not kept"]):
        # Nothing read selects a process metric (files unreadable, PromQL broken, other metrics only):
        # a pipeline proposed from that is the rollup alone, not a recommendation from usage.
        for p in r["problems"]:
            st.error(p)
        st.error("No query on process metrics could be read from the files (or Prometheus) given, so there is "
                 "nothing to recommend from. Fix or replace them and run again: the files uploaded above stay.")
        if r["queries"]:
            _queries(r)
        return
    m = st.columns(4)
    # no arrow: "2 not kept" is a count beside the figure, not a rise
    m[0].metric("Queries kept working", f"{c['kept']:,}", f"{c['not kept']:,} not kept", delta_color="off",
                delta_arrow="off")
    m[1].metric("Processes kept individually", f"{r['processes']['referenced']:,}")
    m[2].metric("Series", f"{e['series_out']:,}", f"-{e['reduction_pct']:.1f}% of {e['series_in']:,}",
                delta_color="inverse")
    crit = e.get("critical") or {}
    m[3].metric("Critical processes visible", f"{crit.get('covered', 0):,} / {crit.get('critical_processes', 0):,}")
    for p in r["problems"]:
        st.warning(p)
    _queries(r)
    st.caption("Labels the queries match on or group by: " + (", ".join(r["labels"]) or "none"))
    st.subheader("Recommended pipeline")
    st.caption(r["pipeline"]["description"])
    text = yaml.safe_dump(r["pipeline"], sort_keys=False)
    st.download_button("Download pipeline (YAML)", text, file_name=f"{r['pipeline']['name']}.yaml",
                       mime="application/yaml", key="rec.download")
    st.code(text, language="yaml")


def render() -> None:
    guard.page("recommend")
    st.title("Recommend from usage")
    st.caption("Phoenix reads the PromQL of your alert and recording rules and Grafana dashboards, keeps "
               "individually every process they select, rolls up the rest per executable, and lists the queries "
               "the pipeline keeps working — and those it cannot, with why.")
    _form()
    report = st.session_state.get(REPORT)
    if report:
        _report(report)


with boundary("Recommend"):
    render()
