"""The experiments table: filters, sorting and paging done by the store; a selected row opens it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, login, no_exceptions, shot, wait_idle

pytestmark = pytest.mark.e2e
OWNER = "e2e-table-owner"
COUNT = 27  # one more than a page and a bit: the second page has two rows
# Finished experiments written straight into the server's database (terminal: no scheduler
# picks them up), each with a different measured reduction.
_SEED = """
import sys
from datetime import timedelta
from core.bootstrap import bootstrap
from core.domain.experiment import Experiment, utcnow
from core.settings import Settings
s = bootstrap(Settings.from_env())
t0 = utcnow()
with s.uow() as uow:
    for i in range(int(sys.argv[2])):
        e = Experiment.create(name=f"table-{i:02d}", baseline="process-baseline-v1", candidate="process-topk-v1",
                              owner=sys.argv[1], now=t0 - timedelta(minutes=i))
        e.start("seed"), e.mark_running("seed"), e.begin_analysis("seed")
        e.complete({"verdict": "PROMOTE" if i % 2 else "REJECT", "series_reduction_pct": (i * 37) % 97 + 0.5}, "seed")
        uow.experiments.add(e)
    uow.commit()
s.close()
"""


def _grid_names(page) -> list[str]:
    """The name column as the data grid's accessible cells show it (rows top to bottom)."""
    grid = page.locator("[data-testid='stDataFrame']").first
    cells = grid.locator("[role='gridcell']")
    return [t for t in cells.all_inner_texts() if t.startswith("table-")]


def test_filter_sort_page_and_open_a_row(page, server) -> None:
    subprocess.run([sys.executable, "-c", _SEED, OWNER, str(COUNT)], cwd=ROOT, env=server.env, check=True,
                   timeout=120)
    reductions = {f"table-{i:02d}": (i * 37) % 97 + 0.5 for i in range(COUNT)}
    login(page, server, "viewer", "experiment")
    owner = page.get_by_label("Owner", exact=True)
    owner.fill(OWNER)
    owner.press("Enter")
    wait_idle(page)
    page.get_by_label("Sort by").click()
    page.get_by_role("option", name="series reduction").click()
    wait_idle(page)
    best_first = sorted(reductions, key=lambda n: reductions[n], reverse=True)
    expect(page.get_by_text("Page 1", exact=True)).to_be_visible()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stDataFrame] [role=gridcell]').length > 0")
    shown = _grid_names(page)
    assert shown[:5] == best_first[:5], shown[:5]  # sorted by the store across all 27, not this page only
    no_exceptions(page)
    shot(page, "experiments", page.get_by_role("heading", name="Experiments"))

    page.get_by_role("button", name="Next →").click()
    wait_idle(page)
    expect(page.get_by_text("Page 2", exact=True)).to_be_visible()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stDataFrame] [role=gridcell]').length > 0")
    assert _grid_names(page) == best_first[25:]
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    page.get_by_role("button", name="← Previous").click()
    expect(page.get_by_text("Page 1", exact=True)).to_be_visible()
    wait_idle(page)

    # Select the first row (the grid's row-marker column): its experiment opens.
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)
    page.get_by_role("heading", name=best_first[0]).wait_for()
    assert "id=exp-" in page.url
    no_exceptions(page)
