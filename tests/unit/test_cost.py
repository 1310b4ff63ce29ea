"""Cost model: each formula against hand-computed figures, and price-card validation."""

from __future__ import annotations

import copy

import pytest

from core import cost
from core.domain.errors import ValidationError


def card(model: str, **params) -> cost.PriceCard:
    return cost.PriceCard(id=f"t-{model}", vendor=model, model=model, params=params,
                          source="https://example.test/p", as_of="2026-11-28")


GRAFANA = card("grafana_cloud", usd_per_1000_series=6.5, free_series=10_000, included_dpm_per_series=1.0)
DD_PRO = card("datadog", usd_per_100_custom_metrics=5.0, allotment_per_host=100)
DD_ENT = card("datadog", usd_per_100_custom_metrics=5.0, allotment_per_host=200)
NEW_RELIC = card("new_relic", usd_per_gb=0.30, free_gb_per_month=100, bytes_per_gb=1e9, bytes_from="otlphttp")
PROM = card("prometheus", bytes_per_sample=1.5, retention_days=15, usd_per_gb_month_storage=0.08,
            memory_bytes_per_series=8192, usd_per_gb_month_memory=3.5)


def test_grafana_series_above_free_tier():
    # 30,000 series at 1 DPM: (30,000 − 10,000) / 1,000 × $6.50 = $130
    line = cost.monthly_cost(GRAFANA, series=30_000, dpm=30_000, bytes_per_month=None, hosts=10)
    assert line.usd_per_month == pytest.approx(130.0)
    assert line.billable_quantity == 30_000


def test_grafana_bills_dpm_above_the_included_one_per_series():
    # 15 s scrapes: 4 DPM per series → billable = 120,000 → 110 × $6.50 = $715
    line = cost.monthly_cost(GRAFANA, series=30_000, dpm=120_000, bytes_per_month=None, hosts=10)
    assert line.usd_per_month == pytest.approx(715.0)


def test_grafana_within_free_tier_is_free():
    assert cost.monthly_cost(GRAFANA, 5_000, 5_000, None, 1).usd_per_month == 0.0


def test_datadog_allotment_per_host_pro_and_enterprise():
    # 10 hosts, 3,500 custom metrics: Pro allots 1,000 → 2,500 / 100 × $5 = $125; Enterprise 2,000 → $75
    assert cost.monthly_cost(DD_PRO, 3_500, 3_500, None, 10).usd_per_month == pytest.approx(125.0)
    assert cost.monthly_cost(DD_ENT, 3_500, 3_500, None, 10).usd_per_month == pytest.approx(75.0)
    assert cost.monthly_cost(DD_PRO, 900, 900, None, 10).usd_per_month == 0.0


def test_new_relic_whole_gb_above_free_tier():
    # 250.9e9 bytes → 250 GB (rounded down) → 150 GB over → $45
    line = cost.monthly_cost(NEW_RELIC, 1, 1, 250.9e9, 1)
    assert line.usd_per_month == pytest.approx(45.0)
    assert line.billable_quantity == 250
    assert cost.monthly_cost(NEW_RELIC, 1, 1, 100.9e9, 1).usd_per_month == 0.0


def test_prometheus_storage_and_memory():
    # storage: 10,000 DPM × 21,600 min × 1.5 B = 0.324 GB × $0.08 = $0.02592
    # memory: 10,000 × 8,192 B = 0.08192 GB × $3.50 = $0.28672
    line = cost.monthly_cost(PROM, 10_000, 10_000, None, 1)
    assert line.details["storage_gb"] == pytest.approx(0.324)
    assert line.details["memory_gb"] == pytest.approx(0.08192)
    assert line.usd_per_month == pytest.approx(0.31264)


def test_project_a_fleet_what_if():
    # 100 hosts × 350 series at 1 DPM = 35,000 series; 100 B/point → 153.3e9 B/month
    lines = {ln.card_id: ln for ln in cost.project(100, 350, 1.0, {"otlphttp": 100.0}, [GRAFANA, DD_PRO, NEW_RELIC])}
    assert lines["t-grafana_cloud"].usd_per_month == pytest.approx(162.5)
    assert lines["t-datadog"].usd_per_month == pytest.approx(1_250.0)
    assert lines["t-new_relic"].details["bytes_per_month"] == pytest.approx(153.3e9)
    assert lines["t-new_relic"].usd_per_month == pytest.approx(15.9)


def test_project_scales_linearly_above_free_tiers():
    small = cost.project(1_000, 350, 1.0, 100.0, [DD_PRO])[0].usd_per_month
    large = cost.project(2_000, 350, 1.0, 100.0, [DD_PRO])[0].usd_per_month
    assert large == pytest.approx(2 * small)


def test_project_estimate_before_after_and_keyword_delegation():
    kwargs = dict(series_out=35_000, series_in=350_000, dpm_out=35_000, dpm_in=350_000, hosts=100,
                  bytes_per_month={"otlphttp": 200e9})
    result = cost.project(cards=[GRAFANA, NEW_RELIC], **kwargs)
    assert result == cost.project_estimate(cards=[GRAFANA, NEW_RELIC], **kwargs)
    g, nr = result["cards"]
    assert g["before_usd"] == pytest.approx(2_210.0) and g["after_usd"] == pytest.approx(162.5)
    assert g["saving_usd"] == pytest.approx(2_047.5)
    # before bytes scaled by dpm_in / dpm_out: 2,000 GB → 1,900 over → $570; after 200 GB → $30
    assert nr["before_usd"] == pytest.approx(570.0) and nr["after_usd"] == pytest.approx(30.0)


def test_project_estimate_without_bytes_says_why_new_relic_is_missing():
    result = cost.project_estimate(series_out=10, series_in=20, dpm_out=10, dpm_in=20, hosts=1,
                                   bytes_per_month={}, cards=[NEW_RELIC])
    row = result["cards"][0]
    assert row["after_usd"] is None
    assert row["note"] == "no byte-sending exporter measured; New Relic cost not computed"


def test_default_cards_load_and_each_has_source_and_date():
    cards = cost.load_price_cards()
    assert {c.model for c in cards} == set(cost.MODEL_PARAMS)
    assert all(c.source.startswith("https://") and len(c.as_of) == 10 for c in cards)
    grafana = next(c for c in cards if c.model == "grafana_cloud")
    assert grafana.params["usd_per_1000_series"] == 6.5


DOC = {"cards": [{"id": "g", "vendor": "Grafana", "model": "grafana_cloud", "source": "https://x.test",
                  "as_of": "2026-11-28",
                  "params": {"usd_per_1000_series": 6.5, "free_series": 10000, "included_dpm_per_series": 1}}]}


def test_valid_document_has_no_problems():
    assert cost.validate_price_cards(copy.deepcopy(DOC)) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["cards"][0].pop("source"), "card 'g': 'source' must be an http(s) URL"),
        (lambda d: d["cards"][0].update(as_of="last week"), "card 'g': 'as_of' must be a date YYYY-MM-DD, got 'last week'"),
        (lambda d: d["cards"][0].update(model="splunk"),
         "card 'g': 'model' must be one of grafana_cloud, datadog, new_relic, prometheus, got 'splunk'"),
        (lambda d: d["cards"][0]["params"].update(free_series=-1), "card 'g': params.free_series must be zero or more, got -1"),
        (lambda d: d["cards"][0]["params"].update(included_dpm_per_series=0),
         "card 'g': params.included_dpm_per_series must be positive, got 0"),
        (lambda d: d["cards"][0]["params"].pop("usd_per_1000_series"),
         "card 'g': params.usd_per_1000_series must be a number, got None"),
        (lambda d: d["cards"].append(copy.deepcopy(d["cards"][0])), "card 'g': duplicate id"),
        (lambda d: d.update(cards=[]), "'cards' must be a non-empty list"),
    ],
)
def test_validation_messages(mutate, expected):
    doc = copy.deepcopy(DOC)
    mutate(doc)
    assert expected in cost.validate_price_cards(doc)


def test_not_a_mapping():
    assert cost.validate_price_cards(["x"]) == ["the document must be a mapping with a 'cards' list"]


def test_project_needs_its_inputs():
    with pytest.raises(ValidationError):
        cost.project(10)
