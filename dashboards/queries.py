"""Read the generated dashboards back: every panel query, with its variables filled in, and the
metric names it selects (parsed with promql-parser, the Rust PromQL parser's Python binding).

Shared by the unit test (every name is known) and the integration test (every query returns
data from a real Prometheus).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import promql_parser
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: What Grafana would put in for each variable when "All" is picked; ``$__rate_interval`` is
#: at least four scrape intervals (10 s in prometheus.yml's datasource ``timeInterval``).
DEFAULT_VALUES: Mapping[str, str] = {"__rate_interval": "1m", "experiment": ".*", "variant": ".*",
                                     "price_per_series": "0.008"}  # fmt: skip
_VARIABLE = re.compile(r"\$(__\w+|\w+)|\$\{(\w+)\}")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref: str
    expr: str

    def where(self) -> str:
        return f"dashboard {self.dashboard!r}, panel {self.panel!r}, query {self.ref}: {self.expr}"


def dashboard_files() -> list[Path]:
    return sorted(HERE.glob("*.json"))


def panel_queries(paths: list[Path] | None = None) -> Iterator[PanelQuery]:
    for path in paths or dashboard_files():
        doc = json.loads(path.read_text(encoding="utf-8"))
        for panel in doc["panels"]:
            for target in panel.get("targets", []):
                yield PanelQuery(doc["title"], panel["title"], target["refId"], target["expr"])


def variable_queries(paths: list[Path] | None = None) -> Iterator[PanelQuery]:
    """The PromQL inside each ``label_values(<selector>, label)`` template variable."""
    for path in paths or dashboard_files():
        doc = json.loads(path.read_text(encoding="utf-8"))
        for var in doc.get("templating", {}).get("list", []):
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", str(var.get("query", "")))
            if var.get("type") == "query" and m:
                yield PanelQuery(doc["title"], f"variable ${var['name']}", "query", m.group(1))


def substitute(expr: str, values: Mapping[str, str] = DEFAULT_VALUES) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)


@dataclass(frozen=True)
class Selected:
    """A metric a selector picks: an exact name, or a ``__name__`` regex."""

    name: str
    regex: bool = False


def selected_metrics(expr: str) -> list[Selected]:
    """Every metric name (or name regex) a PromQL expression selects; raises ValueError on bad PromQL."""
    found: list[Selected] = []

    def visit(node: object, *_: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                found.append(Selected(node.name))
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    found.append(Selected(m.value, regex=str(m.op) != "MatchOp.Equal"))

    promql_parser.walk(promql_parser.parse(expr), visit, None)
    return found


# ---------------------------------------------------------------- the names that exist


def phoenix_names() -> set[str]:
    """Phoenix's own series names: each instrument with the suffixes prometheus_client writes."""
    from prometheus_client.metrics import MetricWrapperBase

    from core.observability import metrics

    names: set[str] = set(metrics.SCRAPE_TIME_METRICS)
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            kind, base = value._type, value._name  # noqa: SLF001 - prometheus_client keeps them private
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}[kind]
            names.update(base + s for s in suffixes)
    return names


def recording_rules(path: Path = ROOT / "k8s" / "prometheus" / "rules.yml") -> set[str]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {r["record"] for g in doc["groups"] for r in g["rules"] if "record" in r}


def external_names(path: Path = HERE / "external_metrics.yaml") -> dict[str, str]:
    """Collector and client-library names, each with where it was read from."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {name: source["source"] for source in doc["sources"] for name in source["names"]}


def only_after_failure(path: Path = HERE / "external_metrics.yaml") -> set[str]:
    """Collector names that exist only once something failed (a healthy run has no such series)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {name for source in doc["sources"] if source.get("only_after_failure") for name in source["names"]}


def known_names() -> set[str]:
    return phoenix_names() | recording_rules() | set(external_names())


def unknown_names(expr: str, known: set[str]) -> list[str]:
    """Names (or name regexes matching no known name) in ``expr`` that are not in ``known``."""
    missing = []
    for sel in selected_metrics(expr):
        if sel.regex:
            if not any(re.fullmatch(sel.name, k) for k in known):
                missing.append(f"~{sel.name}")
        elif sel.name not in known:
            missing.append(sel.name)
    return missing
