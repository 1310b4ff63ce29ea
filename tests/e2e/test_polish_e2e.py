"""The finish of the pages: price cards edited in a form, links to missing things warn, the
catalogue's node counts agree with the nodes it lists, numbers carry separators and units.
(Promote's confirmation and the reports' font and CSV are in test_experiment_e2e, which has a
completed experiment at hand.)"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login, no_exceptions, shot, wait_idle

pytestmark = pytest.mark.e2e


def test_settings_price_card_form_validates_then_saves(page, server) -> None:
    login(page, server, "admin", "settings")
    page.get_by_role("tab", name="Price cards").click()
    form = page.locator("[data-testid='stForm']")
    expect(form.get_by_label("USD per 1000 series")).to_be_visible()  # the first card: Grafana Cloud
    expect(page.get_by_text("params (YAML)")).to_have_count(0)  # no YAML in a grid cell any more
    # A bad edit: one sentence per problem, nothing saved.
    form.get_by_label("Source (the vendor's price page, http(s) URL)").fill("grafana.com/pricing")
    form.get_by_label("Prices as of (YYYY-MM-DD)").fill("last week")
    form.get_by_role("button", name="Save price card").click()
    wait_idle(page)
    error = page.locator("[data-testid='stAlertContentError']", has_text="Not saved")
    expect(error).to_contain_text("'source' must be an http(s) URL")
    expect(error).to_contain_text("'as_of' must be a date YYYY-MM-DD, got 'last week'")
    # A good one: the new price is saved and shown in the cards table's sentence.
    form.get_by_label("Source (the vendor's price page, http(s) URL)").fill("https://grafana.com/pricing/")
    form.get_by_label("Prices as of (YYYY-MM-DD)").fill("2026-12-01")
    price = form.get_by_label("USD per 1000 series")
    price.fill("7.25")
    form.get_by_role("button", name="Save price card").click()
    wait_idle(page)
    expect(page.get_by_text("Price card grafana-cloud-pro saved.")).to_be_visible()
    expect(page.locator("[data-testid='stForm']").get_by_label("USD per 1000 series")).to_have_value("7.25")
    # The model picker redraws the price fields for the chosen formula.
    page.get_by_role("combobox", name="Edit price card").click()
    page.get_by_role("option", name="+ new card").click()
    wait_idle(page)
    page.get_by_role("combobox", name="Pricing model").click()
    page.get_by_role("option", name="new_relic").click()
    wait_idle(page)
    expect(page.locator("[data-testid='stForm']").get_by_label("USD per GB")).to_be_visible()
    expect(page.locator("[data-testid='stForm']").get_by_label("Bytes from")).to_have_value("otlphttp")
    no_exceptions(page)
    page.get_by_role("combobox", name="Edit price card").click()
    page.get_by_role("option", name="grafana-cloud-pro").click()
    wait_idle(page)
    shot(page, "settings", page.get_by_role("heading", name="Price cards"))


def test_links_to_missing_things_warn(page, server) -> None:
    login(page, server, "viewer", "builder?pipeline=nope")
    warning = page.get_by_text("Could not open the shared pipeline: no saved pipeline named 'nope'")
    expect(warning).to_be_visible()
    # The canvas component reruns the page once it has mounted: the warning outlives that rerun.
    page.locator("iframe").first.wait_for()
    wait_idle(page)
    expect(warning).to_be_visible()
    login(page, server, "viewer", "cost_explorer?pipeline=nope&card=gone")
    expect(page.get_by_text("This link asks for pipeline 'nope', which does not exist here. Showing "
                            "process-topk-v1 instead.")).to_be_visible()
    expect(page.get_by_text("This link asks for price card 'gone'")).to_be_visible()
    # numbers: separators in the fleet metrics, once the sample fleet is evaluated
    page.get_by_text("$/month at").first.wait_for(timeout=60_000)
    fleet = page.locator("[data-testid='stMetric']", has_text="Fleet series")
    expect(fleet.locator("[data-testid='stMetricValue']")).to_have_text(re.compile(r"^\d{1,3}(,\d{3})+$"))
    login(page, server, "viewer", "experiment?id=exp-nope")
    expect(page.get_by_text("No experiment 'exp-nope'")).to_be_visible()
    no_exceptions(page)


def test_catalogue_node_counts_match_the_nodes_listed(page, server) -> None:
    login(page, server, "viewer", "catalogue")
    page.get_by_role("heading", name="Built-in templates").wait_for()
    lines = page.get_by_text(re.compile(r"^process-[a-z-]+-v\d+ — \d+ nodes: ")).all_inner_texts()
    assert len(lines) >= 7, lines
    for line in lines:
        n, listed = re.search(r"— (\d+) nodes: (.*)$", line).groups()
        assert int(n) == len(listed.split(" → ")), line
        assert listed.endswith("prometheus"), line  # the exporter is listed (and counted)
    no_exceptions(page)
    shot(page, "catalogue", page.get_by_role("heading", name="Pipeline catalogue"))
