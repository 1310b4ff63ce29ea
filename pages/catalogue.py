"""Pipeline catalogue: built-in templates and saved pipelines, versions, diffs, measured results."""

from __future__ import annotations

import streamlit as st

from app import guard
from app.widgets import backend, pipeline_tools
from app.widgets.boundary import boundary
from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.domain.pipeline import Pipeline


@st.cache_data(ttl=30, show_spinner=False)
def _measured(database_url: str) -> dict[str, dict]:
    """Latest measured series reduction per candidate pipeline, from completed experiments."""
    out: dict[str, dict] = {}
    svc = backend.services()
    for r in svc.experiments.list(states=["Completed"], limit=500):
        name = r.candidate.partition("@")[0]
        if name in out:
            continue
        result = svc.experiments.get(r.id).result or {}
        if result.get("series_reduction_pct") is not None:
            out[name] = {"reduction": result["series_reduction_pct"], "experiment": r.id,
                         "verdict": result.get("verdict")}
    return out


def _templates(measured: dict[str, dict]) -> None:
    st.subheader("Built-in templates")
    for name in TEMPLATE_NAMES:
        p = get_template(name)
        with st.container(border=True):
            a, b = st.columns([4, 1])
            a.markdown(f"**{name}** — {len(p.nodes)} nodes: "
                       + " → ".join(n.type for n in [p.receiver(), *p.chain()]))
            a.caption(p.description)
            m = measured.get(name)
            b.metric("Last measured", f"{m['reduction']:.1f}%" if m else "—",
                     m["verdict"] if m else "no experiment yet", delta_color="off")
            b.markdown(f"[Open in builder](builder?pipeline={name})")


def _saved(measured: dict[str, dict]) -> None:
    st.subheader("Saved pipelines")
    records = [r for r in backend.list_pipelines() if r.latest_version]
    if not records:
        st.info("No saved pipelines yet. Open a template in the Pipeline Builder, change it and save it under a "
                "new name: every save is an immutable version with a git commit.")
        return
    for rec in records:
        with st.expander(f"{rec.name} · v{rec.latest_version}", expanded=len(records) == 1):
            if rec.description:
                st.caption(rec.description)
            m = measured.get(rec.name)
            if m:
                st.markdown(f"Last measured reduction **{m['reduction']:.1f}%** ({m['verdict']}, "
                            f"experiment `{m['experiment']}`)")
            versions = backend.list_versions(rec.name)
            st.dataframe([{"version": v.number, "message": v.message, "author": v.author,
                           "commit": (v.commit_id or "")[:12], "saved": v.created_at.isoformat(timespec="seconds"),
                           "open": f"builder?pipeline={rec.name}&version={v.number}"} for v in reversed(versions)],
                         hide_index=True, width="stretch",
                         column_config={"open": st.column_config.LinkColumn("open", display_text="builder")})
            if len(versions) > 1:
                nums = [v.number for v in versions]
                a, b = st.columns(2)
                old = a.selectbox("Diff from", nums, index=len(nums) - 2, key=f"cat.old.{rec.name}")
                new = b.selectbox("to", nums, index=len(nums) - 1, key=f"cat.new.{rec.name}")
                va = next(v for v in versions if v.number == old)
                vb = next(v for v in versions if v.number == new)
                graph = pipeline_tools.unified_diff(Pipeline.from_dict(va.graph).to_yaml(),
                                                    Pipeline.from_dict(vb.graph).to_yaml(), f"v{old}", f"v{new}")
                st.markdown("Pipeline definition")
                st.code(graph or "no changes", language="diff")
                st.markdown("Generated collector YAML")
                st.code(pipeline_tools.unified_diff(va.collector_yaml, vb.collector_yaml, f"v{old}", f"v{new}")
                        or "no changes", language="diff")


def render() -> None:
    guard.page("catalogue")
    st.title("Pipeline catalogue")
    measured = _measured(backend.settings().database_url)
    t1, t2 = st.tabs(["Templates", "Saved pipelines"])
    with t1, boundary("templates"):
        _templates(measured)
    with t2, boundary("saved pipelines"):
        _saved(measured)


with boundary("Pipeline catalogue"):
    render()
