"""Experiment wizard: basics → pipelines → target & load → criteria & review → create."""

from __future__ import annotations

import streamlit as st

from app import guard
from app.widgets import backend, pipeline_tools, wizard
from app.widgets.boundary import boundary
from app.widgets.numbers import count, percent
from app.widgets.share import page_link
from core.catalog.templates import TEMPLATE_NAMES

K_DRAFT, K_STEP, K_CREATED = "wiz.draft", "wiz.step", "wiz.created"


@guard.action("experiment.create")
def create_experiment(draft: dict) -> str:
    exp = backend.services().experiments.create(guard.current_user(), **wizard.create_kwargs(draft))
    return exp.id


@st.cache_data(ttl=600, show_spinner=False)
def _preview(ref: str) -> dict:
    p = backend.resolve_pipeline(ref)
    return pipeline_tools.run_estimate(p, pipeline_tools.fleet_snapshot(3, 150), source="wizard preview",
                                       estimates=backend.estimates())


def _default_policy_label() -> str:
    return wizard.default_policy_label(backend.configuration().effective().critical_policy)


def _pipeline_options() -> list[str]:
    saved = []
    for name in backend.list_pipeline_names():
        saved += [f"{name}@{v.number}" for v in backend.list_versions(name)]
    return list(TEMPLATE_NAMES) + saved


def _step_basics(d: dict) -> None:
    d["name"] = st.text_input("Name", d["name"], key="wiz.0.name", max_chars=120)
    d["description"] = st.text_area("Description", d["description"], key="wiz.0.description")
    d["owner"] = st.text_input("Owner", d["owner"], key="wiz.0.owner", placeholder=guard.current_user().name)


def _step_pipelines(d: dict) -> None:
    opts = _pipeline_options()
    a, b = st.columns(2)
    for col, field, label in ((a, "baseline", "Baseline (control)"), (b, "candidate", "Candidate")):
        with col:
            cur = d[field] if d[field] in opts else opts[0]
            d[field] = st.selectbox(label, opts, index=opts.index(cur), key=f"wiz.1.{field}")
    if st.checkbox("Show a side-by-side estimate preview (3 simulated hosts)", key="wiz.1.preview"):
        a, b = st.columns(2)
        for col, field in ((a, "baseline"), (b, "candidate")):
            with col, boundary("estimate preview"):
                r = _preview(d[field])
                st.metric("Series out", count(r["series_out"]), f"-{percent(r['reduction_pct'])}",
                          delta_color="inverse")
                st.metric("Critical coverage", percent(r["critical"]["coverage_pct"]))


def _step_target(d: dict, cluster: bool) -> None:
    kinds = ["local", "kubernetes"] if cluster else ["local"]
    d["target_kind"] = st.radio("Target", kinds, index=kinds.index(d["target_kind"]) if d["target_kind"] in kinds
                                else 0, format_func={"local": "This host", "kubernetes": "Kubernetes"}.get,
                                horizontal=True, key="wiz.2.target")
    if not cluster:
        st.caption("Kubernetes namespace and node selector become available when a cluster is configured "
                   "(PHOENIX_RUNTIME=kubernetes).")
    if d["target_kind"] == "kubernetes":
        d["namespace"] = st.text_input("Namespace", d["namespace"], key="wiz.2.ns")
        d["node_selector"] = st.text_input("Node selector (key=value, comma separated)", d["node_selector"],
                                           key="wiz.2.sel")
    a, b, c = st.columns(3)
    d["load"] = a.selectbox("Load profile", wizard.LOAD_PROFILES, index=wizard.LOAD_PROFILES.index(d["load"]),
                            key="wiz.2.load", help="Synthetic processes started during the run, always cleaned up.")
    d["max_processes"] = b.number_input("Max processes", 1, 2000, int(d["max_processes"]), key="wiz.2.maxp")
    if d["load"] == "custom":
        d["custom_patterns"] = st.text_area("Custom patterns (YAML)", d["custom_patterns"], key="wiz.2.custom")
    else:
        d["load_scale"] = c.number_input("Scale", 0.1, 10.0, float(d["load_scale"]), 0.1, key="wiz.2.scale")
    a, b = st.columns(2)
    d["duration"] = a.text_input("Duration", d["duration"], key="wiz.2.duration", help="e.g. 60s, 5m, 1h")
    d["interval"] = b.text_input("Measurement interval", d["interval"], key="wiz.2.interval", help="e.g. 5s")
    modes = ["default", "custom"]
    default_label = _default_policy_label()
    d["policy_mode"] = st.radio("Critical policy", modes, index=modes.index(d["policy_mode"]), horizontal=True,
                                key="wiz.2.policy_mode", format_func=lambda m: default_label if m == "default"
                                else "custom", help="Default: the policy saved in Settings.")
    if d["policy_mode"] == "custom":
        d["policy_yaml"] = st.text_area("Rules (YAML: rules: [{match, pattern, priority}])", d["policy_yaml"]
                                        or "rules:\n- match: executable_name\n  pattern: ^postgres$\n"
                                        "  priority: critical\n", key="wiz.2.policy")


def _opt(col, label: str, value, key: str, unit: str):
    on = col.checkbox(label, value is not None, key=key + ".on")
    if not on:
        return None
    return col.number_input(f"{label} ({unit})", 0.0, 1e6, float(value if value is not None else 10.0), key=key)


def _step_criteria(d: dict) -> None:
    a, b = st.columns(2)
    d["min_series_reduction_pct"] = a.number_input("Min series reduction (%)", 0.0, 100.0,
                                                   float(d["min_series_reduction_pct"]), key="wiz.3.red")
    d["min_samples"] = b.number_input("Min samples per variant", 2, 10000, int(d["min_samples"]), key="wiz.3.samples")
    d["require_full_critical_coverage"] = st.checkbox("Require 100 % critical coverage",
                                                      d["require_full_critical_coverage"], key="wiz.3.cov")
    c1, c2, c3 = st.columns(3)
    d["max_cpu_overhead_pct"] = _opt(c1, "Max collector CPU overhead", d["max_cpu_overhead_pct"], "wiz.3.cpu", "%")
    d["max_memory_overhead_mb"] = _opt(c2, "Max collector memory overhead", d["max_memory_overhead_mb"],
                                       "wiz.3.mem", "MB")
    d["min_cost_reduction_pct"] = _opt(c3, "Min cost reduction", d["min_cost_reduction_pct"], "wiz.3.cost", "%")
    if not wizard.step_problems(3, d):
        st.markdown("**Review**")
        rows = wizard.review(d, _default_policy_label())
        st.table({"": [k for k, _ in rows], "value": [v for _, v in rows]})


def render() -> None:
    guard.page("new experiment")
    st.title("New experiment")
    d = st.session_state.setdefault(K_DRAFT, wizard.new_draft())
    step = int(st.session_state.setdefault(K_STEP, 0))
    settings = backend.settings()
    # The Kubernetes runtime runs cluster targets (docs/kubernetes.md); a context alone names one.
    cluster = bool(settings.kube_context) or settings.runtime == "kubernetes"
    created = st.session_state.get(K_CREATED)
    if created:
        st.success(f"Experiment **{created}** created (Pending). The scheduler starts it on its next tick.")
        page_link("experiment.py", "Open the experiment", {"id": created})
        if st.button("Create another", key="wiz.again"):
            st.session_state.pop(K_CREATED)
            st.session_state[K_DRAFT] = wizard.new_draft()
            st.session_state[K_STEP] = 0
            st.rerun()
        return
    st.progress((step + 1) / len(wizard.STEPS), text=f"Step {step + 1} of {len(wizard.STEPS)}: "
                f"{wizard.STEPS[step]}")
    [_step_basics, _step_pipelines, lambda x: _step_target(x, cluster), _step_criteria][step](d)
    problems = wizard.step_problems(step, d, cluster)
    back, nxt = st.columns(2)
    if step > 0 and back.button("← Back", key="wiz.back", width="stretch"):
        st.session_state[K_STEP] = step - 1
        st.rerun()
    last = step == len(wizard.STEPS) - 1
    if last and not guard.allowed("experiment.create"):
        nxt.info("Creating an experiment needs the operator role.")
    elif nxt.button("Create and start" if last else "Next →", key="wiz.next", type="primary", width="stretch"):
        if problems:
            st.session_state["wiz.show_problems"] = step
        elif last:
            every = wizard.all_problems(d, cluster)
            if every:
                st.error("\n".join(f"- {m}" for m in every))
                return
            st.session_state[K_CREATED] = create_experiment(d)
            st.rerun()
        else:
            st.session_state[K_STEP] = step + 1
            st.session_state.pop("wiz.show_problems", None)
            st.rerun()
    if problems and st.session_state.get("wiz.show_problems") == step:
        st.error("Before continuing:\n" + "\n".join(f"- {m}" for m in problems))


with boundary("Experiment wizard"):
    render()
