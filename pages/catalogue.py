"""Pipeline catalogue: built-in templates and saved pipelines, versions, diffs, measured results."""

from __future__ import annotations

import streamlit as st

from app import guard
from app.widgets import backend, numbers, pipeline_tools
from app.widgets.boundary import boundary
from app.widgets.numbers import percent
from app.widgets.share import missing_note
from core.catalog.templates import TEMPLATE_NAMES, get_template
from core.domain.pipeline import Pipeline


@st.cache_data(ttl=30, show_spinner=False)
def _measured(database_url: str) -> dict[str, dict]:
    """Latest measured series reduction per candidate pipeline, from completed experiments."""
    out: dict[str, dict] = {}
    for e in backend.completed_experiments(limit=300):  # newest first, one query with results
        name = str(e.candidate).partition("@")[0]
        result = e.result or {}
        if name not in out and result.get("series_reduction_pct") is not None:
            out[name] = {"reduction": result["series_reduction_pct"], "experiment": e.id,
                         "verdict": result.get("verdict")}
    return out


@st.cache_data(ttl=3600, show_spinner=False)
def _template_rows() -> list[dict]:
    rows = []
    for name in TEMPLATE_NAMES:
        p = get_template(name)
        listed = pipeline_tools.node_types(p)
        rows.append({"name": name, "chain": " → ".join(listed), "nodes": len(listed), "description": p.description})
    return rows


def _saved_rows(database_url: str) -> list[dict]:  # one query; not cached so a save shows at once
    return [{"name": r.name, "latest": r.latest_version, "description": r.description}
            for r in backend.list_pipelines() if r.latest_version]


def _templates(measured: dict[str, dict]) -> None:
    st.subheader("Built-in templates")
    for t in _template_rows():
        name = t["name"]
        with st.container(border=True):
            a, b = st.columns([4, 1])
            a.markdown(f"**{name}** — {t['nodes']} nodes: {t['chain']}")
            a.caption(t["description"])
            m = measured.get(name)
            b.metric("Last measured", percent(m["reduction"]) if m else "—",
                     m["verdict"] if m else "no experiment yet", delta_color="off")
            b.markdown(f"[Open in builder](builder?pipeline={name})")


def _saved(measured: dict[str, dict]) -> None:
    st.subheader("Saved pipelines")
    rows = _saved_rows(backend.settings().database_url)
    if not rows:
        st.info("No saved pipelines yet. Open a template in the Pipeline Builder, change it and save it under a "
                "new name: every save is an immutable version with a git commit.")
        return
    st.dataframe([{**r, "last measured %": (measured.get(r["name"]) or {}).get("reduction")} for r in rows],
                 hide_index=True, width="stretch", column_config=numbers.columns(["last measured %"]))
    names = [r["name"] for r in rows]
    want = st.query_params.get("saved")
    if note := missing_note(st.query_params, "saved", names, "saved pipeline", names[0]):
        st.warning(note)
    name = st.selectbox("Version history of", names, index=names.index(want) if want in names else 0,
                        key="cat.pipeline")
    m = measured.get(name)
    if m:
        st.markdown(f"Last measured reduction **{percent(m['reduction'])}** ({m['verdict']}, experiment `{m['experiment']}`)")
    versions = backend.list_versions(name)
    st.dataframe([{"version": v.number, "message": v.message, "author": v.author,
                   "commit": (v.commit_id or "")[:12], "saved": v.created_at.isoformat(timespec="seconds"),
                   "open": f"builder?pipeline={name}&version={v.number}"} for v in reversed(versions)],
                 hide_index=True, width="stretch",
                 column_config={"open": st.column_config.LinkColumn("open", display_text="builder")})
    if len(versions) > 1:
        nums = [v.number for v in versions]
        a, b = st.columns(2)
        old = a.selectbox("Diff from", nums, index=len(nums) - 2, key=f"cat.old.{name}")
        new = b.selectbox("to", nums, index=len(nums) - 1, key=f"cat.new.{name}")
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
