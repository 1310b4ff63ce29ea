"""Settings helpers (no Streamlit): the price card table, the policy tester, connection checks.

What is edited is stored by ``core.services.settings`` (database, audited); this module
only turns its values into table rows and back, and checks the connections.
"""

from __future__ import annotations

import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from core.cost import MODEL_PARAMS, PriceCard, load_price_cards, price_card_document, validate_price_cards
from core.domain.critical import (  # noqa: F401 - pages import load_policy_text from here
    CriticalPolicy,
    deciding_rule,
    load_policy_text,
)
from core.domain.errors import PhoenixError, ValidationError
from core.numbers import count
from core.redact import mask_url, redact
from core.services.settings import Sourced, policy_text  # noqa: F401 - the Settings page shows policy_text


def cards_as_rows(cards: list[PriceCard] | None) -> list[dict[str, Any]]:
    """Cards as editable table rows (None: the built-in cards)."""
    return [{"id": c.id, "vendor": c.vendor, "plan": c.plan, "model": c.model, "params": yaml.safe_dump(
        c.params, default_flow_style=True, sort_keys=False).strip(), "source": c.source, "as_of": c.as_of,
        "notes": c.notes} for c in (load_price_cards() if cards is None else cards)]


def rows_to_cards(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Edited table rows back to the card file shape; ValidationError lists the problems."""
    cards, problems = [], []
    for i, r in enumerate(rows):
        try:
            params = yaml.safe_load(r.get("params") or "{}")
        except yaml.YAMLError:
            problems.append(f"row {i + 1} ({r.get('id')}): params is not valid YAML")
            continue
        card = {k: r.get(k) for k in ("id", "vendor", "plan", "model", "source", "as_of", "notes")
                if r.get(k) not in (None, "")}
        card["params"] = params
        cards.append(card)
    data = {"cards": cards}
    problems += validate_price_cards(data)
    if problems:
        raise ValidationError(problems)
    return data


# --------------------------------------------------------------------------- the price card form

#: What each pricing model's formula is about, shown under the model picker.
MODEL_TEXT = {"grafana_cloud": "billable active series (or DPM ÷ included DPM), minus a free tier",
              "datadog": "custom metrics (every exported series) above a per-host allotment",
              "new_relic": "ingested bytes (GB) above a free monthly amount",
              "prometheus": "self-hosted: storage for the samples retained, memory for active series"}
#: Text params beside the numeric ones (``core.cost.validate_price_cards`` checks them too).
TEXT_PARAMS = {"new_relic": {"bytes_from": "otlphttp"}}
_WORDS = {"usd": "USD", "gb": "GB", "dpm": "DPM", "per": "per"}


@dataclass(frozen=True)
class ParamField:
    key: str
    label: str
    numeric: bool


def param_label(key: str) -> str:
    """``usd_per_1000_series`` → ``USD per 1000 series``."""
    words = [_WORDS.get(w, w) for w in key.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def param_fields(model: str) -> list[ParamField]:
    """The form fields of a pricing model: its numeric params (each ≥ 0), then its text ones."""
    numeric = [ParamField(k, param_label(k), True) for k in MODEL_PARAMS.get(model, ())]
    return numeric + [ParamField(k, param_label(k), False) for k in TEXT_PARAMS.get(model, {})]


def card_values(card: PriceCard | None, model: str) -> dict[str, Any]:
    """The form's starting values: the card's (for its own model), else empty fields and zeros."""
    params = dict(card.params) if card is not None and card.model == model else {}
    values: dict[str, Any] = {"id": card.id if card else "", "vendor": card.vendor if card else "",
                              "plan": card.plan if card else "", "model": model,
                              "source": card.source if card else "", "as_of": card.as_of if card else "",
                              "notes": card.notes if card else ""}
    for f in param_fields(model):
        default = TEXT_PARAMS.get(model, {}).get(f.key, "") if not f.numeric else 0.0
        values[f.key] = params.get(f.key, default)
    return values


def _number(value: Any) -> Any:
    # 10000.0 from a number field is stored as 10000, as the bundled cards write it.
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


def upsert_card(cards: list[PriceCard], original_id: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """The card document with the form's card added (``original_id`` None) or replacing
    ``original_id``; ``ValidationError`` lists every problem in plain words (the same checks
    as a card file: ``core.cost.validate_price_cards``)."""
    model = str(values.get("model") or "")
    card: dict[str, Any] = {k: (values.get(k) or "").strip() if isinstance(values.get(k), str) else values.get(k)
                            for k in ("id", "vendor", "plan", "model", "source", "notes")}
    as_of = values.get("as_of")
    card["as_of"] = as_of.isoformat() if hasattr(as_of, "isoformat") else str(as_of or "").strip()
    card["params"] = {f.key: _number(values.get(f.key)) if f.numeric else str(values.get(f.key) or "").strip()
                      for f in param_fields(model)}
    card = {k: v for k, v in card.items() if v not in ("", None) or k in ("id", "params")}
    doc = price_card_document([c for c in cards if c.id != original_id])
    if original_id is None and any(c["id"] == card["id"] for c in doc["cards"]):
        raise ValidationError(f"a card with id {card['id']!r} exists already: pick it above to edit it")
    position = next((i for i, c in enumerate(cards) if c.id == original_id), len(doc["cards"]))
    doc["cards"].insert(position, card)
    problems = validate_price_cards(doc)
    if problems:
        raise ValidationError(problems)
    return doc


def remove_card(cards: list[PriceCard], card_id: str) -> dict[str, Any]:
    """The card document without ``card_id``; the last card cannot go (estimates need one)."""
    rest = [c for c in cards if c.id != card_id]
    if not rest:
        raise ValidationError("the last price card cannot be deleted: cost estimates need at least one")
    return price_card_document(rest)


def card_summary_rows(cards: list[PriceCard]) -> list[dict[str, Any]]:
    """The cards as a read-only table: what each is and what it charges (params as a sentence)."""
    def shown(v: Any) -> str:  # 10000 → "10,000"; 0.08 → "0.08"
        return count(v, 4).rstrip("0").rstrip(".") if isinstance(v, int | float) else str(v)

    def price(c: PriceCard) -> str:
        return ", ".join(f"{param_label(k)} {shown(v)}" for k, v in c.params.items())
    return [{"id": c.id, "vendor": c.vendor, "plan": c.plan, "model": c.model, "prices": price(c),
             "source": c.source, "as of": c.as_of} for c in cards]


def source_rows(items: list[tuple[str, Sourced[Any]]]) -> list[dict[str, str]]:
    """One row per setting: where its value comes from and what that hides (the precedence, visible)."""
    rows = []
    for name, s in items:
        rows.append({"setting": name.replace("_", " "), "source": s.source, "from": s.origin,
                     "overrides": ", ".join(s.hidden) or "—", "value": "❌ " + s.error if s.error else _shown(s.value)})
    return rows


def shown_url(s: Sourced[Any]) -> str:
    """A URL setting as it may be shown: masked, or what it is when unset."""
    return mask_url(s.value) if isinstance(s.value, str) and s.value else "not set"


def _shown(value: Any) -> str:
    if isinstance(value, CriticalPolicy):
        return f"{len(value.rules)} rules ({len(value.critical_rules)} critical), default {value.default_priority}"
    if isinstance(value, list):
        return f"{len(value)} cards: " + ", ".join(c.id for c in value[:6]) + (" …" if len(value) > 6 else "")
    if isinstance(value, str):
        return mask_url(value)
    return "not set" if value is None else str(value)


def test_process(policy: CriticalPolicy, executable_name: str, command_line: str = "", owner: str = "") -> dict[str, Any]:
    """The priority ``policy`` gives one process, and the rule that decided it."""
    s = lambda v: pd.Series([v or None], dtype="object")  # noqa: E731 - tiny adapter
    # Both answers come from RE2 (core.domain.user_regex), as in the runtime measurement.
    priority = policy.classify(s(executable_name), s(command_line), s(owner), default=policy.default_priority)[0]
    rule = deciding_rule(policy, executable_name or None, command_line or None, owner or None)
    return {"priority": priority, "rule": rule.to_dict() if rule else None}


@dataclass
class Check:
    name: str
    ok: bool | None  # None = not configured (optional)
    detail: str
    config: str


def _ready_request(prometheus_url: str) -> urllib.request.Request:
    """GET <url>/-/ready; credentials in the URL become a Basic auth header (urllib cannot take them inline)."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(prometheus_url.rstrip("/"))
    userinfo, at, hostport = parts.netloc.rpartition("@")
    headers = {}
    if at:
        user, _, password = userinfo.partition(":")
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
        parts = parts._replace(netloc=hostport)
    return urllib.request.Request(urlunsplit(parts) + "/-/ready", headers=headers)


def connection_checks(settings: Any, db_probe: Any = None, prometheus_url: str | None = None) -> list[Check]:
    """Database, Prometheus (``prometheus_url``: the one in use, from the settings service),
    Kubernetes, git repository and collector binary."""
    out: list[Check] = []
    url = settings.masked_database_url()
    if db_probe is None:
        out.append(Check("Database", None, "not checked", url))
    else:
        try:
            db_probe()
            out.append(Check("Database", True, "connected", url))
        except PhoenixError as exc:  # already one masked line
            out.append(Check("Database", False, str(exc), url))
        except Exception as exc:  # noqa: BLE001 - any failure is the status to show
            first = (str(exc).strip().splitlines() or [""])[0]
            out.append(Check("Database", False, redact(f"{type(exc).__name__}: {first}", settings.database_url), url))
    if prometheus_url:
        prom = mask_url(prometheus_url)
        try:
            with urllib.request.urlopen(_ready_request(prometheus_url), timeout=2) as r:
                out.append(Check("Prometheus", r.status == 200, f"HTTP {r.status}", prom))
        except (OSError, ValueError) as exc:  # ValueError: a URL urllib cannot use
            out.append(Check("Prometheus", False, redact(str(exc), prometheus_url), prom))
    else:
        out.append(Check("Prometheus", None, "not configured: measurements come from the database",
                         "no Prometheus URL (Settings or PHOENIX_PROMETHEUS_URL)"))
    if settings.runtime == "kubernetes":
        out.append(Check("Kubernetes", None, "the Kubernetes runtime runs experiments (cluster targets enabled)",
                         settings.kubeconfig or settings.kube_context or "in-cluster or default kubeconfig"))
    elif settings.kube_context:
        out.append(Check("Kubernetes", None, "context configured (cluster targets enabled)", settings.kube_context))
    else:
        out.append(Check("Kubernetes", None, "not configured: experiments run on this host",
                         "PHOENIX_KUBE_CONTEXT unset"))
    repo = Path(settings.gitops_repo)
    if (repo / ".git").is_dir():
        try:
            head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True, timeout=5)
            detail = f"HEAD {head.stdout.strip()}" if head.returncode == 0 else "repository without commits yet"
            out.append(Check("Git repository", True, detail, str(repo)))
        except (OSError, subprocess.SubprocessError) as exc:
            out.append(Check("Git repository", False, str(exc), str(repo)))
    else:
        out.append(Check("Git repository", None, "created on the first pipeline save", str(repo)))
    try:
        binary = settings.collector_binary()
    except PhoenixError as exc:
        out.append(Check("Collector", False, str(exc), f"PHOENIX_COLLECTOR={settings.collector}"))
    else:
        if binary and Path(binary).is_file():
            out.append(Check("Collector", True, "real collectors run experiments (tap + baseline + candidate)",
                             binary))
        elif binary:
            out.append(Check("Collector", False, "configured binary not found", binary))
        else:
            out.append(Check("Collector", None, "the collector emulator runs experiments "
                             "(build the real one with: make collector)", f"PHOENIX_COLLECTOR={settings.collector}"))
    return out
