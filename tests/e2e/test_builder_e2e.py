"""Build a pipeline on the real canvas: palette → drag → connect handles → validation → save."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, no_exceptions, shot, wait_idle

pytestmark = pytest.mark.e2e
FLOW = "iframe[title='streamlit_flow.streamlit_flow']"


def _drag(page, src, dst) -> None:
    page.locator(FLOW).scroll_into_view_if_needed()
    a, b = src.bounding_box(), dst.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    page.mouse.up()


def _settle(page) -> None:
    """Let the canvas round trip finish: Python rerun, component update, its value back."""
    wait_idle(page)
    page.wait_for_timeout(800)
    wait_idle(page)


def test_build_connect_validate_and_save(page, browser, server) -> None:
    login(page, server, "operator", "builder")
    page.get_by_text("the canvas is empty").first.wait_for()
    flow = page.frame_locator(FLOW)
    nodes = flow.locator(".react-flow__node")
    for n, (group, label) in enumerate((("Add receiver", "+ Host metrics (process)"),
                                        ("Add exporters", "+ Prometheus (pull)")), start=1):
        page.get_by_role("button", name=group).click()
        page.get_by_role("button", name=label).click()
        expect(nodes).to_have_count(n)
        _settle(page)
    page.get_by_text("is not reachable from the receiver").first.wait_for()
    assert flow.locator(".react-flow__edge").count() == 0
    expect(flow.locator(".react-flow__node", has_text="problem")).not_to_have_count(0)  # error badges

    # Drag the exporter down a little: the position comes back to Python.
    exporter = flow.locator(".react-flow__node[data-id='prometheus']")
    page.locator(FLOW).scroll_into_view_if_needed()
    box = exporter.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 8)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + 60, steps=10)
    page.mouse.up()
    _settle(page)

    # Connect the receiver's source handle to the exporter's target handle.
    src = flow.locator(".react-flow__node[data-id='hostmetrics'] .react-flow__handle.source")
    dst = flow.locator(".react-flow__node[data-id='prometheus'] .react-flow__handle.target")
    _drag(page, src, dst)
    page.get_by_text("Pipeline is valid.").wait_for()
    expect(flow.locator(".react-flow__edge")).to_have_count(1)
    expect(flow.locator(".react-flow__node", has_text="problem")).to_have_count(0)  # badges cleared
    no_exceptions(page)

    # Clicking a node on the canvas selects it for the parameter form.
    flow.locator(".react-flow__node[data-id='hostmetrics']").click()
    expect(page.get_by_text("Host metrics (process) — ")).to_be_visible()
    expect(page.get_by_label("collection_interval (seconds)", exact=True).and_(page.locator("input"))).to_have_value("10s")

    # Name it, write a message, save: a version number and a commit id come back.
    name = page.get_by_label("Pipeline name")
    name.fill("e2e-pipeline")
    name.press("Enter")
    wait_idle(page)
    page.get_by_role("tab", name="Save").click()
    msg = page.get_by_label("Version message (required)")
    msg.fill("built in the browser")
    msg.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Save as new version").click()
    saved = page.get_by_text("Saved e2e-pipeline version 1")
    saved.wait_for()
    assert "git commit" in saved.inner_text()
    assert "version=1" in page.url and "pipeline=e2e-pipeline" in page.url
    page.get_by_role("tab", name="Collector YAML").click()

    # The version's share link opens the same graph in a fresh browser context.
    link = page.locator("code", has_text="version=1").first.inner_text().strip()
    other = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        p2 = other.new_page()
        assert link.startswith(server.url + "/")
        login(p2, server, "viewer", link[len(server.url) + 1:])  # a viewer reads what an operator saved
        p2.get_by_text("Pipeline is valid.").wait_for()
        f2 = p2.frame_locator(FLOW)
        expect(f2.locator(".react-flow__node")).to_have_count(2)
        expect(f2.locator(".react-flow__edge")).to_have_count(1)
        assert p2.get_by_label("Pipeline name").input_value() == "e2e-pipeline"
    finally:
        other.close()


def test_template_summaries_side_panel_estimate_badges_thresholds_and_diff(page, server) -> None:
    login(page, server, "operator", "builder?pipeline=process-topk-v1")
    page.get_by_text("Pipeline is valid.").wait_for()
    flow = page.frame_locator(FLOW)
    topk = flow.locator(".react-flow__node[data-id='topk']")
    expect(topk).to_contain_text("Top-K per host", timeout=60_000)  # a loaded machine draws the canvas late
    expect(topk).to_contain_text("10 by memory")  # each node says what its params do
    expect(flow.locator(".react-flow__node[data-id='batch']")).to_contain_text("8,192 items or 1s")
    expect(topk).not_to_contain_text("series")  # no figures before an estimate

    # The parameter form sits beside the canvas, not under it.
    canvas_box = page.locator(FLOW).bounding_box()
    node_box = page.get_by_role("heading", name="Node", exact=True).bounding_box()
    assert node_box["x"] >= canvas_box["x"] + canvas_box["width"] - 5
    assert canvas_box["y"] - 80 <= node_box["y"] < canvas_box["y"] + canvas_box["height"]

    page.get_by_role("tab", name="Diff").click()
    expect(page.get_by_text("no changes", exact=True)).to_be_visible()  # loading is not editing
    page.get_by_role("tab", name="Collector YAML").click()
    expect(page.get_by_text("this YAML holds the documented DEFAULT thresholds")).to_be_visible()

    # Estimate: per-node series badges on the canvas, and the computed thresholds in the YAML.
    page.get_by_role("tab", name="Estimate impact").click()
    page.get_by_role("button", name="Estimate impact").click()
    expect(topk).to_contain_text(re.compile(r"[\d,]+ → [\d,]+ series"), timeout=60_000)
    expect(topk).to_contain_text("tuned")
    expect(flow.locator(".react-flow__node[data-id='rollup']")).to_contain_text(re.compile(r"→ [\d,]+ series"))
    wait_idle(page)
    no_exceptions(page)
    page.get_by_role("tab", name="Collector YAML").click()
    expect(page.get_by_text("Thresholds in this YAML were computed from data")).to_be_visible()
    expect(page.locator("code", has_text="computed by Phoenix from simulated fleet").first).to_be_visible()
    shot(page, "builder", page.get_by_role("heading", name="Pipeline Builder"))
    page.get_by_role("tab", name="Diff").click()
    diff = page.locator("code", has_text="(loaded)").first.inner_text()
    lines = diff.splitlines()
    removed = [x for x in lines if x.startswith("-") and not x.startswith("---")]
    added = [x for x in lines if x.startswith("+") and not x.startswith("+++")]
    assert removed == ["-    computed: {}"], diff  # the one real change: the thresholds are now computed
    assert any(x.lstrip("+ ").startswith("memory_bytes:") for x in added), diff

    # A new K makes the thresholds computed for the old one stale: they go, the note says so.
    topk.click()
    expect(page.get_by_text("Top-K per host — ")).to_be_visible()
    k = page.get_by_label("k", exact=True)
    k.fill("20")
    page.get_by_role("button", name="Apply parameters").click()
    expect(topk).to_contain_text("20 by memory")
    expect(topk).not_to_contain_text("tuned")
    page.get_by_role("tab", name="Collector YAML").click()
    expect(page.get_by_text("this YAML holds the documented DEFAULT thresholds")).to_be_visible()
    no_exceptions(page)
