"""A share link's view (``?share=<token>``): one experiment or one pipeline version, read-only.

``app/main.py`` routes a visit with ``?share=`` here and registers no other page, so the
visitor gets no navigation, no login and no actions. What is shown is decided by the signed
token alone (``ShareService.open``), never by other query parameters.
"""

from __future__ import annotations

import streamlit as st

from app.widgets import backend, figures, numbers
from app.widgets import experiments as ex
from app.widgets.boundary import boundary
from app.widgets.share import share_token
from core.domain.errors import ShareLinkError
from core.services.shares import EXPERIMENT, ShareScope

VERDICT_STYLE = {"PROMOTE": st.success, "REJECT": st.error, "INCONCLUSIVE": st.warning}


def _experiment(scope: ShareScope) -> None:
    svc = backend.services()
    exp = svc.experiments.get(scope.actor, scope.ref)
    st.title(exp.name)
    st.caption(f"`{exp.id}` · **{exp.state.value}** · {exp.baseline} → {exp.candidate} · {exp.target.describe()} · "
               f"{exp.timing.duration_s:g}s every {exp.timing.interval_s:g}s · owner {exp.owner}"
               + (" · dry run (nothing deployed)" if exp.dry_run else ""))
    if exp.description:
        st.text(exp.description)  # plain text: a shared page renders no author-controlled markdown links
    if exp.error:
        st.error(f"Failed: {exp.error}")
    st.dataframe(ex.timeline(exp), hide_index=True, width="stretch")
    samples = svc.experiments.samples(scope.actor, exp.id)
    if samples:
        ex.live_charts(samples, exp.timing.interval_s, "shared")
    else:
        st.info("No measurements were recorded yet.")
    result = exp.result or {}
    if result:
        verdict = str(result.get("verdict", "—"))
        VERDICT_STYLE.get(verdict, st.info)(f"**Verdict: {verdict}**\n\n" + "\n".join(
            f"- {r}" for r in result.get("reasons") or []))
        crit = ex.criteria_rows(result)
        if crit:
            st.dataframe(crit, hide_index=True, width="stretch")
        cost = ex.cost_rows(result)
        if cost:
            st.plotly_chart(figures.cost_bars(cost, "Cost per price card ($/month)"), width="stretch")
            st.dataframe(cost, hide_index=True, width="stretch", column_config=numbers.columns(cost[0]))


def _pipeline(scope: ShareScope) -> None:
    name, _, number = scope.ref.partition("@")
    rec = backend.services().pipelines.version(scope.actor, name, int(number))
    st.title(rec.ref)
    st.caption(f"saved by {rec.author} on {rec.created_at:%Y-%m-%d %H:%M} UTC"
               + (f" · commit `{rec.commit_id[:12]}`" if rec.commit_id else ""))
    if rec.message:
        st.text(rec.message)
    st.subheader("Pipeline graph")
    st.json(rec.graph, expanded=False)
    if rec.collector_yaml:
        st.subheader("Collector configuration")
        st.code(rec.collector_yaml, language="yaml")


def render() -> None:
    token = share_token(st.query_params)
    try:
        scope = backend.services().shares.open(token)
    except ShareLinkError as exc:
        st.title("Shared link")
        st.error(str(exc))
        return
    st.caption(f"Shared read-only view · link expires {scope.expires_at:%Y-%m-%d %H:%M} UTC")
    (_experiment if scope.kind == EXPERIMENT else _pipeline)(scope)


with boundary("Shared view"):
    render()
