"""Pipeline Builder: palette → canvas → parameter form, live validation, YAML, estimate, save."""

from __future__ import annotations

import streamlit as st

from app import guard
from app.widgets import backend, budget, canvas, figures, numbers, pipeline_tools
from app.widgets.boundary import boundary
from app.widgets.numbers import count, percent
from app.widgets.params import render_param_form
from app.widgets.share import builder_query, copy_link, links_section
from core.catalog.compiler import validate_graph
from core.catalog.registry import REGISTRY
from core.catalog.templates import TEMPLATE_NAMES, get_template, is_template
from core.domain.errors import ConcurrencyError, PhoenixError, ValidationError
from core.domain.pipeline import Pipeline

K_PIPE = "builder.pipeline"
K_SEL = "builder.selected"
K_FORCE = "builder.force"
K_ORIGIN = "builder.origin"
K_STALE = "builder.stale"  # a save refused: another version was saved after this one was opened
K_LOADED_QP = "builder.loaded_qp"
K_LINK_NOTE = "builder.link_note"
K_EST_SIG = "builder.estimate_sig"
K_EST_FILLED = "builder.estimate_filled"
CANVAS_KEY = "builder_canvas"


def _set(p: Pipeline, force: bool = True) -> None:
    st.session_state[K_PIPE] = p.to_dict()
    if force:
        st.session_state[K_FORCE] = True


def _pipeline() -> Pipeline:
    d = st.session_state.get(K_PIPE)
    if d is None:
        return Pipeline(name="my-pipeline")
    try:
        return Pipeline.from_dict(d)
    except ValidationError:
        # A name typed into the form may be invalid; keep the graph, keep the typo visible.
        p = Pipeline.from_dict({**d, "name": "my-pipeline"})
        p.name = d.get("name", "")
        return p


def _load(p: Pipeline, origin: dict[str, object]) -> None:
    # Positions saved for smaller nodes would overlap: lay those out again (positions are
    # not part of what the Diff compares).
    _set(canvas.auto_layout(p) if canvas.cramped(p) else p)
    st.session_state[K_ORIGIN] = origin
    st.session_state[K_SEL] = None


def _restore_from_query() -> None:
    """``?pipeline=NAME[&version=N]`` opens that template, saved version, or a saved pipeline's latest."""
    qp = st.query_params
    marker = f"{qp.get('pipeline')}@{qp.get('version')}"
    if not qp.get("pipeline"):
        return
    if st.session_state.get(K_LOADED_QP) == marker:
        # The link was read on an earlier run; if it named nothing, keep saying so while it is
        # the page's link (the canvas reruns the page at once, which would hide a one-off warning).
        if note := st.session_state.get(K_LINK_NOTE):
            st.warning(note)
        return
    st.session_state[K_LOADED_QP] = marker
    st.session_state.pop(K_LINK_NOTE, None)
    try:
        shared = builder_query(qp)  # hostile links are refused with a sentence
        if shared is None:
            return
        name, version = shared
        if version is None and is_template(name):
            p = get_template(name)
            _load(p, {"kind": "template", "name": name, "yaml": p.to_yaml()})
        else:
            p, rec = backend.load_pipeline_version(name, version)
            _load(p, {"kind": "version", "name": name, "version": rec.number, "yaml": p.to_yaml()})
    except PhoenixError as exc:
        st.session_state[K_LINK_NOTE] = (f"Could not open the shared pipeline: {exc}. "
                                         "The canvas shows the pipeline you had before (or a blank one).")
        st.warning(st.session_state[K_LINK_NOTE])


def _start_from() -> None:
    saved = backend.list_pipeline_names()
    options = ["(blank canvas)"] + [f"template: {n}" for n in TEMPLATE_NAMES] + [f"saved: {n}" for n in saved]
    c1, c2, c3 = st.columns([3, 1, 2])
    choice = c1.selectbox("Start from", options, key="builder.start", label_visibility="collapsed")
    if c2.button("Load", key="builder.load", width="stretch"):
        if choice == "(blank canvas)":
            _load(Pipeline(name="my-pipeline"), {"kind": "blank"})
            st.query_params.clear()
        elif choice.startswith("template: "):
            name = choice.removeprefix("template: ")
            p = get_template(name)
            _load(p, {"kind": "template", "name": name, "yaml": p.to_yaml()})
            st.query_params.from_dict({"pipeline": name})
        else:
            name = choice.removeprefix("saved: ")
            p, rec = backend.load_pipeline_version(name, None)
            _load(p, {"kind": "version", "name": name, "version": rec.number, "yaml": p.to_yaml()})
            st.query_params.from_dict({"pipeline": name, "version": str(rec.number)})
        st.rerun()
    with c3.popover("Import / export YAML", width="stretch"):
        up = st.file_uploader("Import pipeline YAML or JSON", type=["yaml", "yml", "json"], key="builder.import")
        if up is not None and st.button("Import", key="builder.import_go"):
            try:
                # Raw bytes: the shared parser checks size, UTF-8, depth and aliases itself.
                p = Pipeline.from_text(up.getvalue(), source=up.name)
            except ValidationError as exc:
                st.error("Import refused:\n" + "\n".join(f"- {m}" for m in exc.problems))
            else:
                _load(p, {"kind": "import", "name": up.name, "yaml": p.to_yaml()})
                st.rerun()
        st.download_button("Export pipeline YAML", _pipeline().to_yaml(), file_name=f"{_pipeline().name}.yaml",
                           mime="application/x-yaml", key="builder.export")


def _palette(p: Pipeline) -> None:
    cols = st.columns(3)
    for col, (kind, types) in zip(cols, canvas.palette_groups().items(), strict=False):
        with col.popover(f"Add {canvas.KIND_LABELS[kind].lower()}", width="stretch"):
            for t in types:
                if st.button(f"+ {t.title}", key=f"palette.{t.type_name}", help=t.description, width="stretch"):
                    q, nid = canvas.add_node(p, t.type_name)
                    _set(q)
                    st.session_state[K_SEL] = nid
                    st.rerun()


def _node_editor(p: Pipeline, per_node: dict[str, list[str]]) -> None:
    ids = [n.id for n in p.nodes]
    if not ids:
        st.info("Add a receiver, processors and an exporter from the palette, then connect their handles.")
        return
    sel = st.session_state.get(K_SEL)
    idx = ids.index(sel) if sel in ids else 0
    node_id = st.selectbox("Selected node", ids, index=idx, key=f"builder.node_select.{sel}")
    if node_id != sel:
        st.session_state[K_SEL] = node_id
    node = p.node(node_id)
    t = REGISTRY.get(node.type)
    if t is None:
        st.error(f"Unknown node type {node.type!r}")
        return
    st.caption(f"{t.title} — {t.description}")
    for msg in per_node.get(node_id, []):
        st.error(msg)
    result = render_param_form(t, node.params, key=f"form.{node_id}")
    if result is not None:
        params, errors = result
        for e in errors:
            st.error(e)
        if not errors:
            params = pipeline_tools.drop_stale_tuning(node.type, node.params, params)
            _set(canvas.set_params(p, node_id, params))
            st.rerun()
    c1, c2 = st.columns(2)
    if c1.button("Delete node", key="builder.delete_node", disabled=node.type == "hostmetrics" and len(ids) > 1,
                 width="stretch"):
        _set(canvas.delete_node(p, node_id))
        st.session_state[K_SEL] = None
        st.rerun()
    if c2.button("Auto-layout", key="builder.layout", width="stretch"):
        _set(canvas.auto_layout(p))
        st.rerun()
    with st.expander("Edges"):
        a, b, c = st.columns([2, 2, 1])
        src = a.selectbox("From", ids, key="builder.edge_src")
        dst = b.selectbox("To", ids, key="builder.edge_dst", index=min(1, len(ids) - 1))
        if c.button("Connect", key="builder.connect"):
            _set(canvas.connect(p, src, dst))
            st.rerun()
        for e in p.edges:
            x, y = st.columns([4, 1])
            x.write(f"{e.source} → {e.target}")
            if y.button("✕", key=f"builder.del_edge.{e.source}.{e.target}", help="Delete this edge"):
                _set(canvas.disconnect(p, e.source, e.target))
                st.rerun()


def _estimate_tab(p: Pipeline, problems: list[str]) -> None:
    if problems:
        st.info("Fix the validation problems to estimate this pipeline.")
        return
    host_ok = pipeline_tools.host_snapshot_available()
    where = st.radio("Estimate on", ["Simulated fleet", "This host"] if host_ok else ["Simulated fleet"],
                     horizontal=True, key="builder.est_where")
    if not host_ok:
        st.caption("This host: the host snapshot module is not available in this build.")
    hosts, procs = 10, 200
    if where == "Simulated fleet":
        a, b = st.columns(2)
        hosts = a.number_input("Hosts", 1, 2000, 10, key="builder.est_hosts")
        procs = b.number_input("Processes per host", 10, 2000, 200, key="builder.est_procs")
    if st.button("Estimate impact", type="primary", key="builder.estimate"):
        with st.status("Estimating…", expanded=False) as status:
            status.write("Taking the snapshot")
            snap = (pipeline_tools.fleet_snapshot(int(hosts), int(procs)) if where == "Simulated fleet"
                    else pipeline_tools.host_snapshot())
            status.write("Evaluating the pipeline")
            report = pipeline_tools.run_estimate(p, snap, source=where.lower(), estimates=backend.estimates())
            status.update(label="Estimate ready", state="complete")
        # What the estimate computed goes into the pipeline: the YAML, the diff and the
        # saved version then carry the thresholds the figures were measured with.
        tuned, filled = pipeline_tools.apply_tuned(p, report)
        st.session_state["builder.estimate_report"] = report
        st.session_state[K_EST_SIG] = pipeline_tools.graph_signature(tuned)
        st.session_state[K_EST_FILLED] = filled
        if filled:
            _set(tuned)
        st.rerun()  # the canvas above shows the per-node badges
    report = st.session_state.get("builder.estimate_report")
    if report and report.get("pipeline") == p.name:
        if st.session_state.get(K_EST_SIG) != pipeline_tools.graph_signature(p):
            st.caption("The pipeline changed since this estimate: estimate again for current figures.")
        filled = st.session_state.get(K_EST_FILLED) or []
        if filled:
            st.caption(f"Computed from this snapshot and written into {', '.join(filled)} "
                       "(see the Collector YAML tab; saving stores them with the version).")
        show_estimate(report)


def show_estimate(report: dict) -> None:
    m = st.columns(4)
    m[0].metric("Series out", count(report["series_out"]), f"-{percent(report['reduction_pct'])}",
                delta_color="inverse")
    m[1].metric("Series in", count(report["series_in"]))
    m[2].metric("Data points / min", count(report["dpm_out"]), f"of {count(report['dpm_in'])}", delta_color="off")
    crit = report.get("critical") or {}
    cov = crit.get("coverage_pct")
    m[3].metric("Critical coverage", percent(cov),
                f"{crit.get('covered', 0)}/{crit.get('critical_processes', 0)} processes", delta_color="off")
    exp = report.get("exporters") or {}
    if exp:
        st.dataframe(pipeline_tools.exporter_rows(exp), hide_index=True, width="stretch")
    rows = pipeline_tools.cost_rows(report)
    if rows:
        st.plotly_chart(figures.cost_bars(rows), width="stretch")
        st.dataframe(rows, hide_index=True, width="stretch", column_config=numbers.columns(rows[0]))
    learned = pipeline_tools.learned_rows(report)
    if learned:
        st.caption("Why intelligent keeps these processes")
        st.dataframe(learned, hide_index=True, width="stretch")
    budget.estimate_budget(report)
    tc = report.get("top_contributors") or {}
    if tc:
        st.plotly_chart(figures.contributors_bars(tc.get("before", []), tc.get("after", [])),
                        width="stretch")
    for w in report.get("warnings") or []:
        st.caption(f"⚠ {w}")


def _based_on(p: Pipeline) -> int | None:
    """The saved version this edit started from, when it is one of this pipeline's."""
    origin = st.session_state.get(K_ORIGIN) or {}
    if origin.get("kind") == "version" and origin.get("name") == p.name and isinstance(origin.get("version"), int):
        return int(origin["version"])
    return None


def _save(p: Pipeline, message: str, expected: int | None) -> None:
    try:
        saved = backend.save_pipeline_version(p, message, expected_version=expected)
    except ConcurrencyError:
        latest = backend.latest_version_number(p.name)
        st.session_state[K_STALE] = {"name": p.name, "based_on": expected, "latest": latest}
        st.rerun()
    st.session_state.pop(K_STALE, None)
    st.session_state["builder.saved"] = saved
    st.session_state[K_ORIGIN] = {"kind": "version", "name": p.name, "version": saved.number,
                                  "yaml": p.to_yaml()}
    st.query_params.from_dict({"pipeline": p.name, "version": str(saved.number)})
    st.session_state[K_LOADED_QP] = f"{p.name}@{saved.number}"  # already open: no reload
    st.rerun()  # redraw with the version's share link


def _save_tab(p: Pipeline, problems: list[str]) -> None:
    msg = st.text_input("Version message (required)", key="builder.save_msg",
                        placeholder="what changed and why")
    if not guard.allowed("pipeline.save"):
        st.info("Saving a pipeline needs the operator role.")
        return
    if st.button("Save as new version", type="primary", key="builder.save", disabled=bool(problems)):
        if not msg.strip():
            st.error("A version message is required.")
            return
        _save(p, msg.strip(), _based_on(p))
    stale = st.session_state.get(K_STALE)
    if stale and stale.get("name") == p.name:
        # Someone saved a version after this one was opened: saving would silently revert theirs.
        st.warning(f"**{p.name}** is at version **{stale['latest']}** now; you opened version "
                   f"**{stale['based_on']}**. Your edits are still here. Open version {stale['latest']} in "
                   f"another tab to compare, or save yours on top of it.")
        if st.button(f"Save on top of version {stale['latest']}", key="builder.save_over"):
            if not msg.strip():
                st.error("A version message is required.")
            else:
                _save(p, msg.strip(), int(stale["latest"]))
    saved = st.session_state.get("builder.saved")
    if saved and saved.name == p.name:
        st.success(f"Saved **{saved.name}** version **{saved.number}** — git commit "
                   f"`{(saved.commit_id or 'n/a')[:12]}`")
    if problems:
        st.caption("Saving is enabled once the pipeline validates.")


def render() -> None:
    guard.page("builder")
    st.title("Pipeline Builder")
    _restore_from_query()
    _start_from()
    p = _pipeline()
    a, b = st.columns([1, 2])
    name = a.text_input("Pipeline name", p.name, key=f"builder.name.{st.session_state.get(K_ORIGIN, {}).get('name')}")
    desc = b.text_input("Description", p.description, key=f"builder.desc.{st.session_state.get(K_ORIGIN, {}).get('name')}")
    if name != p.name or desc != p.description:
        p.name, p.description = name, desc
        _set(p, force=False)

    _palette(p)
    board, side = st.columns([3, 2])  # the parameter form sits beside the canvas
    with board:
        force = bool(st.session_state.pop(K_FORCE, False))
        res = canvas.render_canvas(CANVAS_KEY, p, lambda q: canvas.problems_by_node(q, problems_of(q))[0],
                                   st.session_state.get(K_SEL), force=force, figures=_figures(p))
        if res.changed:
            _set(res.pipeline, force=False)
            p = res.pipeline
        if res.selected_id:
            st.session_state[K_SEL] = res.selected_id
        problems = problems_of(p)
        per_node, _graph_errors = canvas.problems_by_node(p, problems)
        if problems:
            st.error(f"**{len(problems)} validation problem{'s' if len(problems) != 1 else ''}**\n\n"
                     + "\n".join(f"- {m}" for m in problems))
        else:
            st.success("Pipeline is valid.")
        shared = {k: st.query_params.get(k) for k in ("pipeline", "version") if st.query_params.get(k)}
        if shared:
            copy_link(shared, "pipeline" + (" version" if "version" in shared else " template"))
        origin = st.session_state.get(K_ORIGIN) or {}
        if origin.get("kind") == "version":  # a saved version can get signed read-only links
            with st.expander("Share links (read-only, no sign-in)"):
                links_section("pipeline", f"{origin['name']}@{origin['version']}", "pipeline version")

    with side:
        st.subheader("Node")
        _node_editor(p, per_node)
    # The text tabs span the page under the canvas and its side panel.
    rendered = pipeline_tools.render(p) if not problems else None
    t_yaml, t_k8s, t_diff, t_est, t_save = st.tabs(
        ["Collector YAML", "Kubernetes", "Diff", "Estimate impact", "Save"])
    with t_yaml:
        if rendered and rendered.collector_yaml:
            if rendered.collector_problems:
                st.error(f"The collector refuses this config ({rendered.validated_by}):\n\n"
                         + "\n".join(f"- {m}" for m in rendered.collector_problems))
            else:
                st.caption(f"Validated by {rendered.validated_by}. "
                           + " ".join(rendered.validation_notes))
            note = _tuning_note(p)
            if note:
                st.info(note)
            st.code(rendered.collector_yaml, language="yaml")
            st.download_button("Download collector.yaml", rendered.collector_yaml, "collector.yaml",
                               key="builder.dl_yaml")
        else:
            st.info("The collector YAML appears once the pipeline validates.")
    with t_k8s:
        if rendered and rendered.manifests:
            for fname, text in rendered.manifests.items():
                with st.expander(fname):
                    st.code(text, language="yaml")
        else:
            st.info("Manifests appear once the pipeline validates.")
    with t_diff:
        origin = st.session_state.get(K_ORIGIN) or {}
        if origin.get("yaml"):
            loaded = Pipeline.from_text(str(origin["yaml"]), source="the loaded pipeline")
            d = pipeline_tools.pipeline_diff(loaded, p, f"{origin.get('name')} (loaded)", "canvas")
            st.caption("Params are compared with their defaults filled in on both sides; node "
                       "positions are not compared.")
            st.code(d or "no changes", language="diff")
        else:
            st.info("Load a template or saved version to diff against it.")
    with t_est, boundary("estimate"):
        _estimate_tab(p, problems)
    with t_save, boundary("save"):
        _save_tab(p, problems)


def _figures(p: Pipeline) -> dict[str, tuple[int, int]] | None:
    """Per-node series in → out from the last estimate, only while the graph is the one estimated."""
    report = st.session_state.get("builder.estimate_report")
    if not report or st.session_state.get(K_EST_SIG) != pipeline_tools.graph_signature(p):
        return None
    return pipeline_tools.node_figures(report, p)


def _tuning_note(p: Pipeline) -> str | None:
    """What the YAML holds for data-driven params: defaults until an estimate computes them."""
    untuned = pipeline_tools.untuned_nodes(p)
    if untuned:
        return (f"{', '.join(untuned)}: this YAML holds the documented DEFAULT thresholds. Run "
                "Estimate impact: the thresholds it computes are written into this YAML.")
    if any((t := REGISTRY.get(n.type)) is not None and t.tunable for n in p.nodes):
        return "Thresholds in this YAML were computed from data (see the comments in it for source and time)."
    return None


def problems_of(p: Pipeline) -> list[str]:
    """Everything wrong with the pipeline being edited, name included."""
    problems = validate_graph(p) if p.nodes else ["the canvas is empty"]
    name_problem = canvas_name_problem(p.name)
    return [name_problem, *problems] if name_problem else problems


def canvas_name_problem(name: str) -> str | None:
    from core.domain.pipeline import NAME_RE

    if not NAME_RE.match(name or ""):
        return (f"pipeline name {name!r} must be 1-80 characters of a-z, 0-9, '.', '_' or '-' "
                "starting with a letter or digit")
    return None


with boundary("Pipeline Builder"):
    render()
