"""Overview: every experiment at a glance (state, age, baseline → candidate, verdict)."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from app import guard
from app.services import get_services
from app.widgets.boundary import boundary
from core.domain.accounts import Actor
from core.domain.experiment import ACTIVE_STATES, State

REFRESH_S = 3
CACHE_TTL_S = 2  # many viewers share one query per TTL; short enough to feel live
RECENT = 100  # the overview lists the newest; the Experiments page finds any other


def _age(t: datetime, now: datetime) -> str:
    s = max(0, int((now - t).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit} ago"
    return f"{s}s ago"


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _load(database_url: str, _actor: Actor) -> tuple[dict[str, int], list, bool, str]:
    # Keyed by URL so two databases never share a cache entry (every viewer sees the same list).
    svc = get_services()
    return (svc.experiments.counts_by_state(_actor), svc.experiments.list(_actor, limit=RECENT), svc.dry_run,
            svc.runtime)


def _kpis(counts: dict[str, int]) -> None:
    active = sum(counts.get(s.value, 0) for s in ACTIVE_STATES)
    cols = st.columns(5)
    cols[0].metric("Experiments", sum(counts.values()))
    cols[1].metric("Active", active, help="Pending, Initializing, Running or Analyzing")
    cols[2].metric("Completed", counts.get(State.COMPLETED.value, 0))
    cols[3].metric("Failed", counts.get(State.FAILED.value, 0))
    cols[4].metric("Cancelled", counts.get(State.CANCELLED.value, 0))


def _empty_state() -> None:
    st.info(
        "No experiments yet. An experiment runs a **baseline** and a **candidate** collector "
        "pipeline side by side on the same input, then compares series, cost and critical-process "
        "coverage."
    )
    st.markdown(
        "Design one in the [experiment wizard](wizard), or create one from the command line; "
        "the scheduler takes it from there:"
    )
    st.code(
        "phoenix experiment create --name first-try \\\n"
        "  --baseline process-baseline-v1 --candidate process-topk-v1 \\\n"
        "  --duration 60s --interval 5s",
        language="bash",
    )


@st.fragment(run_every=REFRESH_S)
def _experiments() -> None:
    with boundary("the experiment list"):
        counts, rows, dry_run, runtime = _load(get_services().settings.database_url, guard.current_user())
        _kpis(counts)
        if not rows:
            _empty_state()
            return
        now = datetime.now(UTC)
        table = [
            {
                "ID": r.id,
                "Name": r.name,
                "State": r.state,
                "Verdict": r.verdict or "",
                "Baseline → Candidate": f"{r.baseline} → {r.candidate}",
                "Age": _age(r.created_at, now),
                "Owner": r.owner,
                "Mode": "dry run" if r.dry_run else "live",
                "Details": f"experiment?id={r.id}",
            }
            for r in rows
        ]
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={"Details": st.column_config.LinkColumn("Details", display_text="open")},
        )
        failed = [r for r in rows if r.state == State.FAILED.value and r.error][:3]
        for r in failed:
            st.warning(f"**{r.name}** ({r.id}) failed: {r.error}")
        total = sum(counts.values())
        shown = f"the {len(rows)} newest of {total} experiments · " if total > len(rows) else ""
        st.caption(f"{shown}Refreshes every {REFRESH_S}s · runtime `{runtime}`" + (" (dry run)" if dry_run else ""))


def render() -> None:
    guard.page("overview")
    st.title("Overview")
    with boundary("Overview"):
        svc = get_services()
        if svc.dry_run:
            st.warning(
                "Dry-run runtime: experiments move through every state, but no collectors or load are "
                "started on this host, so their results carry no measurements.",
                icon=":material/science:",
            )
        _experiments()
        _insights()


@st.cache_data(ttl=15, show_spinner=False)
def _gather(database_url: str, _actor: Actor):
    from app.widgets import insights

    return insights.gather(get_services(), _actor)


def _insights() -> None:
    """Measured results and alerts (added by the web-app part)."""
    from app.widgets import experiments as ex
    from app.widgets import numbers
    from app.widgets.numbers import percent
    from app.widgets.share import page_link

    svc = get_services()
    data = _gather(svc.settings.database_url, guard.current_user())
    c = st.columns(3)
    c[0].metric("Running now", len(data.running_now))
    c[1].metric("Best measured reduction", percent(data.best_reduction_pct), data.best_experiment, delta_color="off")
    numbers.metric_money(c[2], "Projected savings of promoted pipelines", data.projected_savings_usd,
                         delta=data.savings_basis or None)
    for alert in data.alerts:
        st.error(alert)
    if not sum(svc.experiments.counts_by_state(guard.current_user()).values()) and guard.allowed(
            "experiment.create") and st.button(
            "Create a first experiment from the templates", key="overview.first"):
        new_id = ex.create_first_experiment()
        st.cache_data.clear()
        page_link("experiment.py", "Open it", {"id": new_id})


render()
