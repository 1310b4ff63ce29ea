"""Price cards and monthly cost projections (which cards apply: docs/configuration.md).

Pure functions over dataclasses; the only I/O is reading the YAML price-card file. Each
card has a ``model`` that fixes its formula (all amounts in USD per 730-hour month):

- ``grafana_cloud``: billable = max(series, dpm / included_dpm_per_series);
  usd = max(0, billable − free_series) / 1000 × usd_per_1000_series.
- ``datadog``: custom metrics = series (one per metric name + tag-value combination);
  usd = max(0, series − hosts × allotment_per_host) / 100 × usd_per_100_custom_metrics.
- ``new_relic``: gb = floor(bytes_per_month / bytes_per_gb) (New Relic rounds the month
  down to whole GB); usd = max(0, gb − free_gb_per_month) × usd_per_gb.
- ``prometheus``: storage_gb = dpm × 60 × 24 × retention_days × bytes_per_sample / 1e9;
  memory_gb = series × memory_bytes_per_series / 1e9;
  usd = storage_gb × usd_per_gb_month_storage + memory_gb × usd_per_gb_month_memory.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from core.domain.errors import ValidationError

MINUTES_PER_MONTH = 730 * 60  # vendors bill a 730-hour month
DEFAULT_CARD_FILE = "price_cards.yaml"

# Required numeric params per model (all must be ≥ 0); other keys noted beside.
MODEL_PARAMS: dict[str, tuple[str, ...]] = {
    "grafana_cloud": ("usd_per_1000_series", "free_series", "included_dpm_per_series"),
    "datadog": ("usd_per_100_custom_metrics", "allotment_per_host"),
    "new_relic": ("usd_per_gb", "free_gb_per_month", "bytes_per_gb"),  # + bytes_from (exporter type)
    "prometheus": (
        "bytes_per_sample",
        "retention_days",
        "usd_per_gb_month_storage",
        "memory_bytes_per_series",
        "usd_per_gb_month_memory",
    ),
}
POSITIVE_PARAMS = {"included_dpm_per_series", "bytes_per_gb"}  # divisors
_URL = re.compile(r"^https?://\S+$")


@dataclass(frozen=True)
class PriceCard:
    id: str
    vendor: str
    model: str
    params: dict[str, Any]
    source: str
    as_of: str
    plan: str = ""
    notes: str = ""

    @property
    def label(self) -> str:
        return f"{self.vendor} — {self.plan}" if self.plan else self.vendor


@dataclass(frozen=True)
class CostLine:
    """One card's monthly cost for one usage figure, with the quantity it billed."""

    card_id: str
    vendor: str
    plan: str
    usd_per_month: float
    billable_quantity: float
    unit: str
    formula: str
    source: str
    as_of: str
    details: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- loading


def bundled_price_card_text() -> str:
    """The price-card YAML shipped in ``core/data`` (the built-in default)."""
    return resources.files("core.data").joinpath(DEFAULT_CARD_FILE).read_text(encoding="utf-8")


def load_price_cards(path: str | Path | None = None) -> list[PriceCard]:
    """Cards from ``path`` or, when None, the defaults shipped in ``core/data``."""
    if path is None:
        text = bundled_price_card_text()
        where = f"core/data/{DEFAULT_CARD_FILE}"
    else:
        p = Path(path)
        if not p.is_file():
            raise ValidationError(f"price card file not found: {p}")
        text = p.read_text(encoding="utf-8")
        where = str(p)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(f"{where}: not valid YAML: {exc}") from exc
    return parse_price_cards(data, where)


def parse_price_cards(data: Any, where: str) -> list[PriceCard]:
    """Cards from a parsed price-card document; ValidationError names ``where`` in every problem."""
    problems = validate_price_cards(data)
    if problems:
        raise ValidationError([f"{where}: {p}" for p in problems])
    return [_card(c) for c in data["cards"]]


def price_card_document(cards: list[PriceCard]) -> dict[str, Any]:
    """``cards`` back to the file shape, JSON-ready (dates as text), for storing in the database."""
    out = []
    for c in cards:
        doc: dict[str, Any] = {"id": c.id, "vendor": c.vendor, "model": c.model, "params": dict(c.params),
                               "source": c.source, "as_of": c.as_of}
        doc.update({k: v for k, v in (("plan", c.plan), ("notes", c.notes)) if v})
        out.append(doc)
    return {"cards": out}


def validate_price_cards(data: Any) -> list[str]:
    """Every problem in a parsed price-card document, as readable sentences."""
    if not isinstance(data, dict):
        return ["the document must be a mapping with a 'cards' list"]
    cards = data.get("cards")
    if not isinstance(cards, list) or not cards:
        return ["'cards' must be a non-empty list"]
    problems: list[str] = []
    seen: set[str] = set()
    for i, card in enumerate(cards, start=1):
        where = f"card {i}"
        if not isinstance(card, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        cid = card.get("id")
        if not isinstance(cid, str) or not cid.strip():
            problems.append(f"{where}: 'id' is required")
        else:
            where = f"card {cid!r}"
            if cid in seen:
                problems.append(f"{where}: duplicate id")
            seen.add(cid)
        if not isinstance(card.get("vendor"), str) or not card["vendor"].strip():
            problems.append(f"{where}: 'vendor' is required")
        source = card.get("source")
        if not isinstance(source, str) or not _URL.match(source):
            problems.append(f"{where}: 'source' must be an http(s) URL")
        as_of = card.get("as_of")
        if isinstance(as_of, dt.date):
            as_of = as_of.isoformat()
        try:
            dt.date.fromisoformat(str(as_of))
        except ValueError:
            problems.append(f"{where}: 'as_of' must be a date YYYY-MM-DD, got {as_of!r}")
        model = card.get("model")
        if model not in MODEL_PARAMS:
            problems.append(f"{where}: 'model' must be one of {', '.join(MODEL_PARAMS)}, got {model!r}")
            continue
        params = card.get("params")
        if not isinstance(params, dict):
            problems.append(f"{where}: 'params' must be a mapping")
            continue
        for key in MODEL_PARAMS[model]:
            value = params.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                problems.append(f"{where}: params.{key} must be a number, got {value!r}")
            elif value < 0 or (key in POSITIVE_PARAMS and value == 0):
                bound = "positive" if key in POSITIVE_PARAMS else "zero or more"
                problems.append(f"{where}: params.{key} must be {bound}, got {value!r}")
        if model == "new_relic" and not isinstance(params.get("bytes_from", "otlphttp"), str):
            problems.append(f"{where}: params.bytes_from must be an exporter type such as 'otlphttp'")
    return problems


def _card(c: dict[str, Any]) -> PriceCard:
    as_of = c["as_of"].isoformat() if isinstance(c["as_of"], dt.date) else str(c["as_of"])
    return PriceCard(
        id=c["id"],
        vendor=c["vendor"],
        model=c["model"],
        params=dict(c["params"]),
        source=c["source"],
        as_of=as_of,
        plan=str(c.get("plan", "")),
        notes=str(c.get("notes", "")),
    )


# --------------------------------------------------------------------------- formulas


def monthly_cost(
    card: PriceCard, series: float, dpm: float, bytes_per_month: float | None, hosts: int
) -> CostLine:
    """Monthly cost of ``series`` active series sending ``dpm`` data points per minute
    (``bytes_per_month`` bytes) from ``hosts`` hosts under ``card``."""
    p = card.params
    common = {"card_id": card.id, "vendor": card.vendor, "plan": card.plan, "source": card.source, "as_of": card.as_of}
    if card.model == "grafana_cloud":
        by_dpm = dpm / p["included_dpm_per_series"]
        billable = max(float(series), by_dpm)
        over = max(0.0, billable - p["free_series"])
        usd = over / 1000.0 * p["usd_per_1000_series"]
        return CostLine(
            usd_per_month=usd, billable_quantity=billable, unit="active series",
            formula="max(series, dpm / included_dpm) − free, × $ per 1,000",
            details={"series": float(series), "dpm": float(dpm), "over_free": over}, **common,
        )
    if card.model == "datadog":
        allotment = hosts * p["allotment_per_host"]
        over = max(0.0, float(series) - allotment)
        usd = over / 100.0 * p["usd_per_100_custom_metrics"]
        return CostLine(
            usd_per_month=usd, billable_quantity=over, unit="custom metrics above allotment",
            formula="max(0, series − hosts × allotment) / 100 × $ per 100",
            details={"custom_metrics": float(series), "allotment": float(allotment)}, **common,
        )
    if card.model == "new_relic":
        raw_gb = (bytes_per_month or 0.0) / p["bytes_per_gb"]
        gb = math.floor(raw_gb)
        over = max(0, gb - p["free_gb_per_month"])
        usd = over * p["usd_per_gb"]
        return CostLine(
            usd_per_month=usd, billable_quantity=float(gb), unit="GB ingested",
            formula="max(0, floor(bytes / 1e9) − free GB) × $ per GB",
            details={"bytes_per_month": float(bytes_per_month or 0.0), "gb_exact": raw_gb, "gb_over_free": float(over)},
            **common,
        )
    if card.model == "prometheus":
        samples_retained = dpm * 60 * 24 * p["retention_days"]
        storage_gb = samples_retained * p["bytes_per_sample"] / 1e9
        memory_gb = series * p["memory_bytes_per_series"] / 1e9
        usd = storage_gb * p["usd_per_gb_month_storage"] + memory_gb * p["usd_per_gb_month_memory"]
        return CostLine(
            usd_per_month=usd, billable_quantity=storage_gb + memory_gb, unit="GB (storage + memory)",
            formula="dpm × minutes retained × bytes/sample × $/GB + series × bytes/series × $/GB",
            details={"storage_gb": storage_gb, "memory_gb": memory_gb}, **common,
        )
    raise ValidationError(f"price card {card.id!r}: unknown model {card.model!r}")


def project(
    fleet_hosts: int | None = None,
    series_per_host: float | None = None,
    dpm_per_series: float | None = None,
    bytes_per_point: float | dict[str, float] | None = None,
    cards: list[PriceCard] | None = None,
    **estimate_kwargs: Any,
) -> Any:
    """What-if projection: cost per card for a fleet of ``fleet_hosts`` hosts.

    series = hosts × series_per_host; dpm = series × dpm_per_series; bytes per month =
    dpm × 43,800 minutes × bytes_per_point (a number, or a dict by exporter type/encoding,
    from which each card takes its ``bytes_from`` entry, else the largest value).

    Called with the estimate's keywords (``series_out=…, series_in=…``) it delegates to
    ``project_estimate`` — the evaluator calls it that way.
    """
    if estimate_kwargs:
        return project_estimate(cards=cards, **estimate_kwargs)
    if fleet_hosts is None or series_per_host is None or dpm_per_series is None:
        raise ValidationError("project needs fleet_hosts, series_per_host and dpm_per_series")
    cards = load_price_cards() if cards is None else cards
    series = fleet_hosts * series_per_host
    dpm = series * dpm_per_series
    lines = []
    for card in cards:
        bpp = _bytes_for(card, bytes_per_point)
        month_bytes = None if bpp is None else dpm * MINUTES_PER_MONTH * bpp
        lines.append(monthly_cost(card, series, dpm, month_bytes, fleet_hosts))
    return lines


def project_estimate(
    *,
    series_out: float,
    series_in: float,
    dpm_out: float,
    dpm_in: float,
    hosts: int,
    bytes_per_month: dict[str, float] | None = None,
    cards: list[PriceCard] | None = None,
) -> dict[str, Any]:
    """Before/after cost per card for an estimate (JSON-ready).

    ``bytes_per_month`` is keyed by exporter type (bytes the pipeline's exporters send).
    The "before" bytes are scaled by dpm_in / dpm_out: the same bytes per point is assumed
    for the unreduced stream (``details.bytes_before_assumed`` says so).
    """
    cards = load_price_cards() if cards is None else cards
    bytes_per_month = bytes_per_month or {}
    rows = []
    for card in cards:
        out_bytes = _bytes_for(card, bytes_per_month) if bytes_per_month else None
        note = ""
        if card.model == "new_relic":
            wanted = card.params.get("bytes_from", "otlphttp")
            if wanted not in bytes_per_month:
                note = (
                    f"no {wanted} exporter in this pipeline; using the largest measured exporter bytes"
                    if bytes_per_month else "no byte-sending exporter measured; New Relic cost not computed"
                )
            if out_bytes is None:
                rows.append({"card_id": card.id, "vendor": card.vendor, "plan": card.plan, "note": note,
                             "before_usd": None, "after_usd": None, "saving_usd": None, "saving_pct": None,
                             "source": card.source, "as_of": card.as_of})
                continue
        in_bytes = out_bytes * (dpm_in / dpm_out) if out_bytes is not None and dpm_out else out_bytes
        before = monthly_cost(card, series_in, dpm_in, in_bytes, hosts)
        after = monthly_cost(card, series_out, dpm_out, out_bytes, hosts)
        saving = before.usd_per_month - after.usd_per_month
        rows.append({
            "card_id": card.id, "vendor": card.vendor, "plan": card.plan,
            "before_usd": round(before.usd_per_month, 2), "after_usd": round(after.usd_per_month, 2),
            "saving_usd": round(saving, 2),
            "saving_pct": round(100.0 * saving / before.usd_per_month, 2) if before.usd_per_month else 0.0,
            "unit": after.unit, "before_quantity": before.billable_quantity,
            "after_quantity": after.billable_quantity, "formula": after.formula,
            "source": card.source, "as_of": card.as_of, "note": note,
            "details": {"before": before.details, "after": after.details,
                        "bytes_before_assumed": card.model == "new_relic"},
        })
    return {"currency": "USD", "period": "month (730 h)", "hosts": hosts, "cards": rows}


def _bytes_for(card: PriceCard, bytes_per: float | dict[str, float] | None) -> float | None:
    if bytes_per is None:
        return None
    if not isinstance(bytes_per, dict):
        return float(bytes_per)
    if not bytes_per:
        return None
    wanted = card.params.get("bytes_from")
    if wanted in bytes_per:
        return float(bytes_per[wanted])
    return float(max(bytes_per.values()))
