"""The finish of the pages: promote asks for confirmation (diff against production, a reason),
price cards are edited in a form, links to missing things warn, the catalogue's node counts
agree with the nodes it lists, numbers carry separators and units. (test_experiment_e2e also
promotes a measured run and checks the reports' font and CSV.)"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, login, no_exceptions, shot, wait_idle

pytestmark = pytest.mark.e2e

# Completed experiments with a PROMOTE verdict, written to the server's database as they are:
# added already Completed, so the server's scheduler never runs them, and no run's timing
# (on a loaded machine) decides whether Promote is offered.
_COMPLETED = """
import sys
from core.bootstrap import bootstrap
from core.domain.experiment import Experiment
from core.settings import Settings
s = bootstrap(Settings.from_env())
for candidate in sys.argv[1:]:
    e = Experiment.create(name="seeded " + candidate, baseline="process-baseline-v1", candidate=candidate,
                          owner="e2e-admin")
    e.start("e2e"); e.mark_running("e2e"); e.begin_analysis("e2e")
    e.complete({"verdict": "PROMOTE", "reasons": ["seeded by the e2e test"]}, "e2e")
    with s.uow() as uow:
        uow.experiments.add(e)
        uow.commit()
    print(e.id)
s.close()
"""


def _completed(server, *candidates: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", _COMPLETED, *candidates], cwd=ROOT, env=server.env, check=True,
                         capture_output=True, text=True, timeout=120)
    return out.stdout.split()


def _promote_dialog(page, server, exp_id: str):
    login(page, server, "admin", f"experiment?id={exp_id}")
    page.get_by_role("button", name="Promote", exact=True).click()
    return page.get_by_role("dialog")


def test_promote_confirms_with_the_diff_against_production_and_a_reason(page, server) -> None:
    first, second = _completed(server, "process-aggregated-v1", "process-topk-v1")
    dialog = _promote_dialog(page, server, first)
    expect(dialog.get_by_text("+++ candidate process-aggregated-v1")).to_be_visible()
    dialog.get_by_role("button", name="Confirm promotion").click()
    expect(dialog.get_by_text("a promotion needs a reason")).to_be_visible()  # nothing promoted yet
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text("In production since")).to_have_count(0)
    page.get_by_role("button", name="Promote", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Reason").fill("aggregated – first → production")
    dialog.get_by_role("button", name="Confirm promotion").click()
    expect(page.get_by_text("Reason: aggregated – first → production")).to_be_visible()
    # The next candidate for the same target: the dialog names what it replaces and diffs against it.
    dialog = _promote_dialog(page, server, second)
    expect(dialog.get_by_text(f"Replaces process-aggregated-v1 (from experiment {first}) in production for "
                              "target local with process-topk-v1.")).to_be_visible()
    expect(dialog.get_by_text("--- production/local: process-aggregated-v1")).to_be_visible()
    dialog.get_by_role("textbox", name="Reason").fill("x" * 10)
    no_exceptions(page)
    shot(page, "promote", dialog)
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("In production since")).to_have_count(0)


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
