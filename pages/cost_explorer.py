"""Cost explorer: what-if across fleet size × processes × interval × pipeline × price card."""

from __future__ import annotations

import streamlit as st

from app import guard
from app.widgets import backend, figures, numbers, whatif
from app.widgets.boundary import boundary
from app.widgets.numbers import count, percent
from app.widgets.share import COST_INTERVALS, copy_link, cost_explorer_query, missing_note
from core.catalog.templates import TEMPLATE_NAMES


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def _per_host(pipeline_ref: str, procs: int, interval: int) -> whatif.PerHost:
    return whatif.per_host(backend.resolve_pipeline(pipeline_ref), procs, interval, estimates=backend.estimates())


@st.cache_data(ttl=300, show_spinner=False)
def _cards() -> list:
    return backend.price_cards()  # Settings' cards (a broken source is a clear error on the page)


def render() -> None:
    guard.page("cost explorer")
    st.title("Cost explorer")
    st.caption("What a pipeline would cost across a fleet, from the engine run on a simulated sample "
               f"of {whatif.SAMPLE_HOSTS} hosts and scaled to the fleet size.")
    pipelines = list(TEMPLATE_NAMES) + [n for n in backend.list_pipeline_names() if n not in TEMPLATE_NAMES]
    cards = _cards()
    card_ids = ["all"] + [c.id for c in cards]
    shared = cost_explorer_query(st.query_params, pipelines, card_ids)  # hostile values fall back to defaults
    for note in (missing_note(st.query_params, "pipeline", pipelines, "pipeline", shared["pipeline"]),
                 missing_note(st.query_params, "card", card_ids, "price card", "every price card"
                              if shared["card"] == "all" else shared["card"])):
        if note:
            st.warning(note)
    c = st.columns(5)
    hosts = c[0].number_input("Fleet size (hosts)", 1, 100_000, shared["hosts"], key="ce.hosts")
    procs = c[1].number_input("Processes per host", 10, 2000, shared["procs"], key="ce.procs")
    interval = c[2].select_slider("Collection interval (s)", list(COST_INTERVALS), value=shared["interval"],
                                  key="ce.interval")
    pipeline = c[3].selectbox("Pipeline", pipelines, index=pipelines.index(shared["pipeline"]), key="ce.pipeline")
    card = c[4].selectbox("Price card", card_ids, index=card_ids.index(shared["card"]),
                          format_func=lambda i: "all vendors" if i == "all" else next(
                              x.label for x in cards if x.id == i), key="ce.card")
    state = {"hosts": str(hosts), "procs": str(procs), "interval": str(interval), "pipeline": pipeline, "card": card}
    if dict(st.query_params) != state:
        st.query_params.from_dict(state)

    with st.spinner("Evaluating the pipeline on the sample fleet…"):
        ph = _per_host(pipeline, int(procs), int(interval))
    chosen = cards if card == "all" else [x for x in cards if x.id == card]
    m = st.columns(4)
    m[0].metric("Series per host", count(ph.series_out), f"-{percent(ph.reduction_pct)}", delta_color="inverse")
    m[1].metric("Fleet series", count(ph.series_out * hosts), f"of {count(ph.series_in * hosts)}",
                delta_color="off")
    m[2].metric("Data points / min (fleet)", count(ph.series_out * ph.dpm_per_series_out * hosts))
    m[3].metric("Critical coverage", percent(ph.critical_coverage_pct))
    rows = whatif.cost_table(ph, int(hosts), chosen)
    st.plotly_chart(figures.cost_bars(rows, f"$/month at {hosts:,} hosts"), width="stretch")
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={**numbers.columns(rows[0] if rows else ()),
                                "source": st.column_config.LinkColumn("source")})
    st.plotly_chart(figures.what_if_lines(whatif.sweep(ph, chosen), "hosts", "after", "vendor",
                                          "$/month after the pipeline by fleet size", "$ / month"),
                    width="stretch")
    copy_link(state, "cost explorer view")


with boundary("Cost explorer"):
    render()
