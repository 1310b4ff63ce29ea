"""Experiment page: state timeline, live panels while running, analysis, actions by state."""

from __future__ import annotations

import streamlit as st

from app import guard
from app.widgets import backend, budget, figures, numbers
from app.widgets import experiments as ex
from app.widgets.boundary import boundary
from app.widgets.numbers import count, percent
from app.widgets.share import copy_link, experiment_query, links_section, page_link
from core.domain.errors import NotFoundError, PhoenixError, ValidationError
from core.domain.experiment import TERMINAL_STATES, State
from core.domain.production import REASON_MAX_CHARS
from core.services.requests import ExperimentTable

#: How often the live panel asks for news; cheap (a read of the log after a cursor), so short.
LIVE_REFRESH_S = 1.0
PAGE_SIZE = 25
TERMINAL = {s.value for s in TERMINAL_STATES}
VERDICT_STYLE = {"PROMOTE": st.success, "REJECT": st.error, "INCONCLUSIVE": st.warning}


def _picker() -> None:
    """The experiments table: filters, sort and paging are done by the store; selecting a row
    opens that experiment."""
    if not any(backend.services().experiments.counts_by_state(guard.current_user()).values()):
        _empty()
        return
    f = st.columns([2, 1, 1, 1, 1, 1])
    states = f[0].multiselect("State", [s.value for s in State], key="exp.f.states", placeholder="any state")
    owner = f[1].text_input("Owner", key="exp.f.owner", placeholder="any owner").strip()
    pipeline = f[2].text_input("Pipeline", key="exp.f.pipeline", placeholder="any pipeline").strip()
    verdict = f[3].selectbox("Verdict", ["any", *ex.VERDICTS], key="exp.f.verdict")
    sort = f[4].selectbox("Sort by", list(ex.SORT_LABELS), format_func=ex.SORT_LABELS.get, key="exp.f.sort")
    descending = f[5].toggle("Descending", value=True, key="exp.f.desc")
    filters = (tuple(states), owner, pipeline, verdict, sort, descending)
    if st.session_state.get("exp.f.last") != filters:  # new filters start again at page 1
        st.session_state["exp.f.last"] = filters
        st.session_state["exp.f.page"] = 0
    page = int(st.session_state.get("exp.f.page", 0))
    try:
        result = ex.table_page(ExperimentTable.of(
            states=states or None, owner=owner or None, pipeline=pipeline or None,
            verdict=None if verdict == "any" else verdict, sort=sort, descending=descending, page=page,
            page_size=PAGE_SIZE))
    except ValidationError as exc:
        st.warning(f"These filters cannot be used: {exc}")
        return
    rows = ex.table_rows(result.items)
    if not rows:
        st.info("No experiment matches these filters.")
    else:
        picked = st.dataframe(
            rows, hide_index=True, width="stretch", key=f"exp.table.{page}.{abs(hash(filters))}",
            on_select="rerun", selection_mode="single-row",
            column_order=ex.TABLE_COLUMNS,
            column_config={"reduction": st.column_config.NumberColumn("reduction", format="%.1f%%"),
                           "pipelines": st.column_config.TextColumn("pipelines (baseline → candidate)")})
        chosen = picked.selection.rows if picked is not None else []
        if chosen:
            st.query_params["id"] = rows[chosen[0]]["id"]
            st.rerun()
        st.caption("Select a row to open the experiment. Sorting and filters apply to every experiment, "
                   "not only this page.")
    p = st.columns([1, 2, 1])
    if p[0].button("← Previous", key="exp.prev", disabled=page == 0, width="stretch"):
        st.session_state["exp.f.page"] = page - 1
        st.rerun()
    p[1].markdown(f"<div style='text-align:center'>Page {page + 1}</div>", unsafe_allow_html=True)
    if p[2].button("Next →", key="exp.next", disabled=not result.has_next, width="stretch"):
        st.session_state["exp.f.page"] = page + 1
        st.rerun()


def _empty() -> None:
    st.info("No experiments yet. An experiment runs a baseline and a candidate pipeline side by side on the "
            "same processes and tells you whether the candidate keeps its promise.")
    if guard.allowed("experiment.create") and st.button("Create a first experiment from the templates",
                                                   type="primary", key="exp.first"):
        st.query_params["id"] = ex.create_first_experiment()
        st.rerun()
    page_link("wizard.py", "…or design one with the experiment wizard")


def _progress(exp) -> None:
    """Elapsed / duration, a bar and the ETA, redrawn every second while the run lasts."""
    now = ex.progress(exp)
    if now is not None:
        st.progress(now.fraction, text=now.text)


def _live(exp_id: str, interval_s: float) -> None:
    """Charts of the measurements, redrawn from the event log's news only.

    Each run asks the experiments service what happened after the cursor this session has
    seen (one small read of the log): new samples re-read the samples, a new state reruns
    the whole page (actions, analysis), and nothing new redraws what is already here.
    """
    actor = guard.current_user()
    experiments = backend.services().experiments
    key = f"exp.live.{exp_id}"
    seen = st.session_state.get(key)
    batch = experiments.events_since(actor, exp_id, seen["cursor"] if seen else None)
    if seen is None or any(item.kind == "sample" for item in batch.items):
        samples = experiments.samples(actor, exp_id)
    else:
        samples = seen["samples"]
    st.session_state[key] = {"cursor": batch.cursor, "samples": samples}
    if not samples:
        st.info("No measurements were recorded for this run." if batch.finished or batch.state in TERMINAL
                else f"{batch.state}: waiting for the first measurements…")
    else:
        ex.live_charts(samples, interval_s, "live")
    if st.session_state.get("exp.seen_state") != batch.state:
        st.session_state["exp.seen_state"] = batch.state
        st.rerun()  # the state moved on: redraw the whole page (actions, analysis)


def _analysis(result: dict) -> None:
    st.subheader("Analysis")
    verdict = str(result.get("verdict", "—"))
    VERDICT_STYLE.get(verdict, st.info)(f"**Verdict: {verdict}**\n\n" + "\n".join(
        f"- {r}" for r in result.get("reasons") or []))
    m = st.columns(4)
    for col, key, label in ((m[0], "series", "Series reduction"), (m[1], "datapoint", "Data point reduction"),
                            (m[2], "bytes", "Bytes reduction")):
        pct, ci = result.get(f"{key}_reduction_pct"), result.get(f"{key}_reduction_ci95") or {}
        col.metric(label, percent(pct),
                   None if ci.get("low") is None else f"95% CI {count(ci['low'], 1)}–{percent(ci['high'])}",
                   delta_color="off")
    m[3].metric("Critical coverage (min)", percent(result.get("critical_coverage_pct")))
    crit = ex.criteria_rows(result)
    if crit:
        st.dataframe(crit, hide_index=True, width="stretch")
    cost = ex.cost_rows(result)
    if cost:
        st.plotly_chart(figures.cost_bars(cost, "Cost per price card ($/month)"), width="stretch")
        st.dataframe(cost, hide_index=True, width="stretch", column_config=numbers.columns(cost[0]))
    stats = ex.stats_rows(result)
    if stats:
        with st.expander("Statistics (means per variant)"):
            st.dataframe(stats, hide_index=True, width="stretch")
            st.json(result.get("significance") or {}, expanded=False)


#: The experiment whose promotion dialog is open: kept across full reruns (the live panel's), so
#: the dialog stays until confirmed, cancelled or dismissed.
K_PROMOTING = "exp.promoting"


def _close_promotion() -> None:
    st.session_state.pop(K_PROMOTING, None)


@st.dialog("Promote to production", width="large", on_dismiss=_close_promotion)
def _confirm_promotion(exp_id: str) -> None:
    """The diff against what runs in production, a required reason, then the promotion."""
    preview = ex.promotion_preview(exp_id)
    if preview.production_ref is None:
        st.info(f"Nothing in production yet for target `{preview.target}`: {preview.candidate_ref} would be the "
                "first production pipeline. Its whole collector configuration is below.")
    else:
        st.warning(f"Replaces {preview.production_ref} (from experiment {preview.production_experiment}) in "
                   f"production for target `{preview.target}` with {preview.candidate_ref}.")
    st.code(preview.diff or "no difference in the collector configuration", language="diff", height=320)
    reason = st.text_area("Reason", max_chars=REASON_MAX_CHARS, key="exp.promote.reason",
                          placeholder="Why should this candidate run in production?",
                          help="Required. Stored with the promotion, in the GitOps commit and in the audit log.")
    c = st.columns(2)
    if c[0].button("Confirm promotion", type="primary", key="exp.promote.confirm"):
        try:
            ex.promote(exp_id, reason)
        except PhoenixError as exc:  # a missing reason, or a refusal: said here, the dialog stays
            st.error(str(exc))
        else:
            _close_promotion()
            st.rerun()  # closes the dialog; the promotion record replaces the button
    if c[1].button("Cancel", key="exp.promote.cancel"):
        _close_promotion()
        st.rerun()


def _actions(exp) -> None:
    st.subheader("Actions")
    c = st.columns(4)
    # what the signed-in role may not do is not offered (the services refuse it anyway)
    if not exp.is_terminal and guard.allowed("experiment.cancel") and c[0].button(
            "Cancel", key="exp.cancel", type="secondary"):
        ex.cancel(exp.id)
        st.rerun()
    promotion = ex.promotion(exp.id)
    if promotion:
        st.success(f"In production since {promotion.promoted_at}: {promotion.ref} "
                   f"(commit `{promotion.commit_id[:12]}`, by {promotion.actor})"
                   + (f"  \nReason: {promotion.reason}" if promotion.reason else ""))
    elif exp.state.value == "Completed" and guard.allowed("experiment.promote") and c[1].button(
            "Promote", key="exp.promote", type="primary", disabled=(exp.result or {}).get("verdict") != "PROMOTE",
            help="Only a PROMOTE verdict can be promoted from here; the CLI can force it."):
        st.session_state[K_PROMOTING] = exp.id
    if not promotion and st.session_state.get(K_PROMOTING) == exp.id:
        _confirm_promotion(exp.id)
    if exp.is_terminal and guard.allowed("experiment.rerun") and c[2].button("Re-run", key="exp.rerun"):
        st.query_params["id"] = ex.rerun(exp.id)
        st.rerun()
    with c[3].popover("Download report"):
        fmt = st.radio("Format", ["html", "pdf", "csv"], horizontal=True, key="exp.fmt")
        if st.button("Prepare report", key="exp.prepare"):
            st.session_state["exp.report"] = (exp.id, fmt, ex.report(exp.id, fmt))
        ready = st.session_state.get("exp.report")
        if ready and ready[0] == exp.id:
            mime = {"html": "text/html", "pdf": "application/pdf", "csv": "text/csv"}[ready[1]]
            st.download_button(f"Download {ready[1].upper()}", ready[2], f"phoenix-{exp.id}.{ready[1]}", mime,
                               key="exp.download")


def render() -> None:
    guard.page("experiment")
    try:
        exp_id = experiment_query(st.query_params)
    except ValidationError as exc:
        st.title("Experiments")
        st.warning(f"This link does not open an experiment: {exc}")
        _picker()
        return
    if not exp_id:
        st.title("Experiments")
        _picker()
        return
    try:
        exp = backend.services().experiments.get(guard.current_user(), exp_id)
    except NotFoundError:
        st.title("Experiment")
        st.warning(f"No experiment {exp_id!r}. It may have been created in another database.")
        _picker()
        return
    st.session_state["exp.seen_state"] = exp.state.value
    st.title(exp.name)
    st.caption(f"`{exp.id}` · **{exp.state.value}** · {exp.baseline} → {exp.candidate} · {exp.target.describe()} · "
               f"{exp.timing.duration_s:g}s every {exp.timing.interval_s:g}s · owner {exp.owner}"
               + (" · dry run (nothing deployed)" if exp.dry_run else ""))
    st.caption(ex.collectors(exp))
    if not exp.is_terminal:
        st.fragment(run_every=LIVE_REFRESH_S)(_progress)(exp)
    if exp.description:
        st.markdown(exp.description)
    if exp.error:
        st.error(f"Failed: {exp.error}")
    with st.expander("State timeline", expanded=not exp.is_terminal):
        st.dataframe(ex.timeline(exp), hide_index=True, width="stretch")
    st.subheader("Measurements")
    st.fragment(run_every=None if exp.is_terminal else LIVE_REFRESH_S)(_live)(exp.id, exp.timing.interval_s)
    try:
        budget.experiment_budget(backend.closed_loop(exp.id))
    except PhoenixError as exc:  # the rest of the page still renders
        st.warning(f"Series budget per host unavailable: {exc}")
    if exp.result:
        _analysis(exp.result)
    _actions(exp)
    copy_link({"id": exp.id}, "experiment")
    links_section("experiment", exp.id, "experiment")


with boundary("Experiment"):
    render()
