"""Generate Phoenix's Grafana dashboards and their provisioning files (``make dashboards``).

The five dashboards are written from the specs below with grafana-foundation-sdk (Grafana's
own generated builders, so the JSON matches the dashboard schema of Grafana 11.6) into
``dashboards/<uid>.json``; ``dashboards/provisioning/`` gets a Prometheus datasource with a
fixed uid (every panel names it) and a file provider pointing at the JSON. The output is
committed; ``tests/unit/test_dashboards.py`` regenerates it and fails on any difference, and
checks every metric name a panel uses against Phoenix's registry, the recording rules and
``dashboards/external_metrics.yaml``. ``tests/integration/test_dashboards_prometheus.py``
runs every panel query against a real Prometheus scraping Phoenix and a real experiment.

    python dashboards/build.py            # (re)write the files
    python dashboards/build.py --check    # exit 1 naming the files that differ
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus as gp
from grafana_foundation_sdk.builders import stat as gstat
from grafana_foundation_sdk.builders import table as gtable
from grafana_foundation_sdk.builders import timeseries as gts
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

HERE = Path(__file__).resolve().parent
DATASOURCE_UID = "phoenix-prometheus"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

#: Scrape jobs of Phoenix's own processes (k8s/prometheus/prometheus.yml); the collectors'
#: jobs are ``phoenix-collectors*`` and must not count as "Phoenix is up".
PHOENIX_JOBS = 'job=~"phoenix-(api|scheduler|ui|operator)"'
#: Selectors the template variables fill in (``.*`` when "All" is picked).
EXP = 'phoenix_experiment_id=~"$experiment"'
EXP_VAR = f'{EXP}, phoenix_variant=~"$variant"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class PanelSpec:
    title: str
    description: str
    queries: Sequence[Query]
    kind: str = "timeseries"  # timeseries | stat | table
    unit: str = "short"
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class Section:
    title: str
    panels: Sequence[PanelSpec]


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    sections: Sequence[Section]
    variables: Sequence[str] = field(default_factory=tuple)  # experiment, variant, price_per_series


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


# ---------------------------------------------------------------- System Health

SYSTEM_HEALTH = DashboardSpec(
    uid="phoenix-system-health",
    title="Phoenix / System Health",
    description="Is Phoenix itself healthy: processes, API, gRPC, scheduler, database, cache, collectors.",
    sections=(
        Section("Processes", (
            PanelSpec("Phoenix processes up", "1 per scrape target of the API, scheduler and UI jobs; 0 = down.",
                      (q(f"sum by (job) (up{{{PHOENIX_JOBS}}})", "{{job}}"),), kind="stat", width=6, height=5),
            PanelSpec("Running versions", "phoenix_build_info of each running process, by role and version.",
                      (q("sum by (process, version) (phoenix_build_info)", "{{process}} {{version}}"),),
                      kind="stat", width=6, height=5),
            PanelSpec("Resident memory", "RSS of each Phoenix process (prometheus_client process collector).",
                      (q(f"process_resident_memory_bytes{{{PHOENIX_JOBS}}}", "{{job}} {{instance}}"),),
                      unit="bytes", width=6, height=5),
            PanelSpec("CPU", "CPU cores each Phoenix process uses.",
                      (q(f"rate(process_cpu_seconds_total{{{PHOENIX_JOBS}}}[{RATE}])", "{{job}} {{instance}}"),),
                      unit="short", width=6, height=5),
        )),
        Section("REST API", (
            PanelSpec("Request rate by route", "Requests answered per second, by route template.",
                      (q(f"sum by (route) (rate(phoenix_api_requests_total[{RATE}]))", "{{route}}"),),
                      unit="reqps", width=8),
            PanelSpec("Error ratio", "Share of answers that are server errors (5xx) and client errors (4xx).",
                      (q(f'(sum(rate(phoenix_api_requests_total{{status=~"5.."}}[{RATE}])) or vector(0))'
                         f" / sum(rate(phoenix_api_requests_total[{RATE}]))", "5xx"),
                       q(f'(sum(rate(phoenix_api_requests_total{{status=~"4.."}}[{RATE}])) or vector(0))'
                         f" / sum(rate(phoenix_api_requests_total[{RATE}]))", "4xx")),
                      unit="percentunit", width=8),
            PanelSpec("p95 latency by route", "95th percentile of request latency, by route template.",
                      (q("histogram_quantile(0.95, sum by (le, route) "
                         f"(rate(phoenix_api_request_seconds_bucket[{RATE}])))", "{{route}}"),),
                      unit="s", width=8),
        )),
        Section("gRPC API", (
            PanelSpec("Call rate by method and code", "gRPC calls answered per second.",
                      (q(f"sum by (method, code) (rate(phoenix_grpc_requests_total[{RATE}]))",
                         "{{method}} {{code}}"),), unit="reqps"),
            PanelSpec("p95 latency by method", "95th percentile of gRPC call latency.",
                      (q("histogram_quantile(0.95, sum by (le, method) "
                         f"(rate(phoenix_grpc_request_seconds_bucket[{RATE}])))", "{{method}}"),), unit="s"),
        )),
        Section("Scheduler", (
            PanelSpec("Tick duration p95", "95th percentile of one tick (claim, steps, store), per scheduler.",
                      (q("histogram_quantile(0.95, sum by (le, job, instance) "
                         f"(rate(phoenix_scheduler_tick_seconds_bucket[{RATE}])))", "{{job}} {{instance}}"),),
                      unit="s", width=8),
            PanelSpec("Lag", "How late the latest tick started after it was due.",
                      (q("max by (job, instance) (phoenix_scheduler_lag_seconds)", "{{job}} {{instance}}"),),
                      unit="s", width=8),
            PanelSpec("Last tick age", "Seconds since each scheduler last finished a tick (alert: > 5 min).",
                      (q("time() - max by (job, instance) (phoenix_scheduler_last_tick_timestamp_seconds)",
                         "{{job}} {{instance}}"),), unit="s", width=8),
            PanelSpec("Ticks by outcome", "Ticks per second, ok and error.",
                      (q(f"sum by (outcome) (rate(phoenix_scheduler_ticks_total[{RATE}]))", "{{outcome}}"),),
                      unit="short", width=8),
            PanelSpec("Lease takeovers (1h)", "Experiments claimed after another scheduler's lease expired.",
                      (q("sum by (instance) (increase(phoenix_scheduler_lease_takeovers_total[1h]))",
                         "{{instance}}"),), width=8),
            PanelSpec("Claimed experiments", "Experiments claimed by each scheduler's latest tick.",
                      (q("sum by (instance) (phoenix_scheduler_claimed_experiments)", "{{instance}}"),), width=8),
        )),
        Section("Database, cache, experiments", (
            PanelSpec("Database up", "1 while the database answers the scrape-time probe, per process.",
                      (q("min by (job) (phoenix_database_up)", "{{job}}"),), kind="stat", width=6, height=6),
            PanelSpec("Connection pool", "Pool connections by state against the pool size.",
                      (q("max by (state) (phoenix_db_pool_connections)", "{{state}}"),
                       q("max(phoenix_db_pool_size)", "pool size")), width=6, height=6),
            PanelSpec("Cache hit ratio", "Share of cache lookups answered from the cache, by cache.",
                      (q(f'sum by (cache) (rate(phoenix_cache_requests_total{{result="hit"}}[{RATE}]))'
                         f" / sum by (cache) (rate(phoenix_cache_requests_total[{RATE}]))", "{{cache}}"),),
                      unit="percentunit", width=6, height=6),
            PanelSpec("Experiments by state", "Experiments in the database, by state (scrape-time).",
                      (q("max by (state) (phoenix_experiments)", "{{state}}"),), width=6, height=6),
            PanelSpec("State transitions (1h)", "Transitions committed in the last hour, by target state.",
                      (q("sum by (to_state) (increase(phoenix_experiment_transitions_total[1h]))",
                         "{{to_state}}"),), width=8),
            PanelSpec("Collectors running", "Collector processes each runtime supervises.",
                      (q("sum by (runtime) (phoenix_collectors_running)", "{{runtime}}"),), width=8),
            PanelSpec("Collector restarts (1h)", "Collectors the local runtime restarted after they exited.",
                      (q("sum by (phoenix_experiment_id, phoenix_variant) "
                         "(increase(phoenix_collector_restarts_total[1h]))",
                         "{{phoenix_experiment_id}} {{phoenix_variant}}"),), width=8),
        )),
        Section("UI, estimates, shared cache", (
            PanelSpec("UI page runs", "Streamlit script runs per second, by page.",
                      (q(f"sum by (page) (rate(phoenix_ui_page_runs_total[{RATE}]))", "{{page}}"),), width=6),
            PanelSpec("UI errors (1h)", "Errors the UI showed, by page and kind (user = a refused input, "
                      "bug = a traceback in the log under the reference shown).",
                      (q("sum by (page, kind) (increase(phoenix_ui_errors_total[1h]))", "{{page}} {{kind}}"),),
                      width=6),
            PanelSpec("Estimate p95", "95th percentile duration of computed estimates (cache misses).",
                      (q("histogram_quantile(0.95, sum by (le) "
                         f"(rate(phoenix_estimate_seconds_bucket[{RATE}])))", "p95"),), unit="s", width=6),
            PanelSpec("Shared cache backend", "1 while Redis answers the cache, 0 while each process falls back "
                      "to its own memory (degraded).",
                      (q("min by (backend) (phoenix_cache_backend_up)", "{{backend}}"),), kind="stat", width=6),
        )),
    ),
)

# ---------------------------------------------------------------- A/B Experiment Comparison

AB_COMPARISON = DashboardSpec(
    uid="phoenix-ab-comparison",
    title="Phoenix / A/B Experiment Comparison",
    description="Baseline vs candidate of one experiment: what each keeps, what each costs to run.",
    variables=("experiment", "variant"),
    sections=(
        Section("Headline", (
            PanelSpec("Series reduction (live)", "1 - candidate/baseline process series, from the recording rule.",
                      (q(f"phoenix:series_reduction:ratio{{{EXP}}}", "{{phoenix_experiment_id}}"),),
                      kind="stat", unit="percentunit", width=6, height=5),
            PanelSpec("Series reduction (analysis)", "The analysed result of each variant.",
                      (q(f"phoenix_experiment_series_reduction_ratio{{{EXP_VAR}}}", "{{phoenix_variant}}"),),
                      kind="stat", unit="percentunit", width=6, height=5),
            PanelSpec("Critical coverage", "Share of critical processes each variant keeps in full (must be 100%).",
                      (q(f"phoenix_experiment_critical_coverage_ratio{{{EXP_VAR}}}", "{{phoenix_variant}}"),),
                      kind="stat", unit="percentunit", width=6, height=5),
            PanelSpec("Projected monthly savings", "Dollars a month the variant saves, from the analysis.",
                      (q(f"phoenix_experiment_projected_monthly_savings_dollars{{{EXP_VAR}}}",
                         "{{phoenix_variant}}"),), kind="stat", unit="currencyUSD", width=6, height=5),
        )),
        Section("Side by side", (
            PanelSpec("Process series", "Active process_* series each variant exports.",
                      (q(f"phoenix:process_series:count{{{EXP_VAR}}}", "{{phoenix_variant}}"),)),
            PanelSpec("Exported points per second", "Data points each variant's exporters send.",
                      (q(f"phoenix:exported_points:rate1m{{{EXP_VAR}}}", "{{phoenix_variant}}"),), unit="short"),
            PanelSpec("Collector CPU", "CPU cores of each variant's own collector process.",
                      (q(f"phoenix:collector_cpu:rate1m{{{EXP_VAR}}}", "{{phoenix_variant}}"),), unit="short"),
            PanelSpec("Collector memory", "RSS of each variant's collector process.",
                      (q(f"max by (phoenix_variant) (otelcol_process_memory_rss{{{EXP_VAR}}})",
                         "{{phoenix_variant}}"),), unit="bytes"),
        )),
    ),
)

# ---------------------------------------------------------------- Pipeline Performance

PIPELINE_PERFORMANCE = DashboardSpec(
    uid="phoenix-pipeline-performance",
    title="Phoenix / Pipeline Performance",
    description="The collectors' own telemetry: points in, through each processor, out; queues; cost.",
    variables=("experiment", "variant"),
    sections=(
        Section("Receivers", (
            PanelSpec("Accepted points per second", "Points each collector's receivers accepted.",
                      (q("sum by (phoenix_variant, receiver) "
                         f"(rate(otelcol_receiver_accepted_metric_points{{{EXP_VAR}}}[{RATE}]))",
                         "{{phoenix_variant}} {{receiver}}"),)),
            PanelSpec("Refused points per second", "Points receivers refused (back-pressure or bad data).",
                      (q("sum by (phoenix_variant, receiver) "
                         f"(rate(otelcol_receiver_refused_metric_points{{{EXP_VAR}}}[{RATE}]))",
                         "{{phoenix_variant}} {{receiver}}"),)),
        )),
        Section("Processors", (
            PanelSpec("Items into each processor", "Items per second entering each processor.",
                      (q("sum by (phoenix_variant, processor) "
                         f"(rate(otelcol_processor_incoming_items{{{EXP_VAR}}}[{RATE}]))",
                         "{{phoenix_variant}} {{processor}}"),)),
            PanelSpec("Items out of each processor", "Items per second leaving each processor.",
                      (q("sum by (phoenix_variant, processor) "
                         f"(rate(otelcol_processor_outgoing_items{{{EXP_VAR}}}[{RATE}]))",
                         "{{phoenix_variant}} {{processor}}"),)),
        )),
        Section("Exporters", (
            PanelSpec("Sent points per second", "Points each exporter sent.",
                      (q("sum by (phoenix_variant, exporter) "
                         f"(rate(otelcol_exporter_sent_metric_points{{{EXP_VAR}}}[{RATE}]))",
                         "{{phoenix_variant}} {{exporter}}"),), width=8),
            PanelSpec("Failed points per second", "Points in failed send attempts of each exporter (a dead "
                      "downstream, retries included), and points receivers failed to pass on.",
                      (q("sum by (phoenix_variant, exporter) "
                         f"(rate(otelcol_exporter_send_failed_metric_points{{{EXP_VAR}}}[{RATE}]))",
                         "{{phoenix_variant}} {{exporter}}"),
                       q("sum by (phoenix_variant, receiver) "
                         f"(rate(otelcol_receiver_failed_metric_points{{{EXP_VAR}}}[{RATE}]))",
                         "{{phoenix_variant}} {{receiver}}")), width=8),
            PanelSpec("Queue size vs capacity", "Batches waiting in each exporter's sending queue.",
                      (q(f"max by (phoenix_variant, exporter) (otelcol_exporter_queue_size{{{EXP_VAR}}})",
                         "{{phoenix_variant}} {{exporter}} size"),
                       q(f"max by (phoenix_variant, exporter) (otelcol_exporter_queue_capacity{{{EXP_VAR}}})",
                         "{{phoenix_variant}} {{exporter}} capacity")), width=8),
        )),
        Section("Collector cost", (
            PanelSpec("CPU by variant", "CPU cores each collector process uses.",
                      (q("sum by (phoenix_variant) "
                         f"(rate(otelcol_process_cpu_seconds{{{EXP_VAR}}}[{RATE}]))", "{{phoenix_variant}}"),)),
            PanelSpec("RSS by variant", "Resident memory of each collector process.",
                      (q(f"max by (phoenix_variant) (otelcol_process_memory_rss{{{EXP_VAR}}})",
                         "{{phoenix_variant}}"),), unit="bytes"),
        )),
    ),
)

# ---------------------------------------------------------------- Cost Analysis

PRICE = "$price_per_series"

COST_ANALYSIS = DashboardSpec(
    uid="phoenix-cost-analysis",
    title="Phoenix / Cost Analysis",
    description="What the process metrics cost per month, and what each experiment's candidate would save.",
    variables=("experiment", "variant", "price_per_series"),
    sections=(
        Section("Savings", (
            PanelSpec("Projected monthly savings by experiment", "From each experiment's analysis.",
                      (q("sum by (phoenix_experiment_id) "
                         f"(phoenix_experiment_projected_monthly_savings_dollars{{{EXP}, phoenix_variant=\"candidate\"}})",
                         "{{phoenix_experiment_id}}"),), kind="table", unit="currencyUSD"),
            PanelSpec("Total projected monthly savings", "Sum over the selected experiments.",
                      (q(f'sum(phoenix_experiment_projected_monthly_savings_dollars{{{EXP}, phoenix_variant="candidate"}})',
                         "total"),), kind="stat", unit="currencyUSD"),
        )),
        Section("Series and cost", (
            PanelSpec("Series in vs out", "Process series the tap collected (input) and each variant exports.",
                      (q(f"sum by (phoenix_variant) (phoenix:process_series:count{{{EXP}}})", "{{phoenix_variant}}"),)),
            PanelSpec("Estimated monthly cost", "Series × the price per active series per month (variable).",
                      (q(f"sum by (phoenix_variant) (phoenix:process_series:count{{{EXP_VAR}}}) * {PRICE}",
                         "{{phoenix_variant}}"),), unit="currencyUSD"),
            PanelSpec("Live monthly saving", "(baseline − candidate series) × price: what promoting now would save.",
                      (q(f'(sum by (phoenix_experiment_id) (phoenix:process_series:count{{{EXP}, phoenix_variant="baseline"}})'
                         f' - sum by (phoenix_experiment_id) (phoenix:process_series:count{{{EXP}, phoenix_variant="candidate"}}))'
                         f" * {PRICE}", "{{phoenix_experiment_id}}"),), unit="currencyUSD"),
            PanelSpec("Exported points per second", "The other cost driver: ingest volume per variant.",
                      (q(f"phoenix:exported_points:rate1m{{{EXP_VAR}}}", "{{phoenix_variant}}"),)),
        )),
    ),
)

# ---------------------------------------------------------------- Cardinality Tracking

# phoenix_variant!="": "All" (.*) also matches an absent label, and Phoenix's own processes
# export process_resident_memory_bytes & co. without one.
PROCESS_SERIES = f'{{__name__=~"process_.*", phoenix_variant!="", {EXP_VAR}}}'

CARDINALITY = DashboardSpec(
    uid="phoenix-cardinality",
    title="Phoenix / Cardinality Tracking",
    description="Where the process series come from: metric names, hosts, and how fast they grow.",
    variables=("experiment", "variant"),
    sections=(
        Section("Now", (
            PanelSpec("Active series per metric and variant", "process_* series by metric name and variant.",
                      (q(f"count by (__name__, phoenix_variant) ({PROCESS_SERIES})",
                         "{{__name__}} {{phoenix_variant}}"),), kind="table"),
            PanelSpec("Top process metrics by series", "The ten metric names with the most series.",
                      (q(f"topk(10, count by (__name__) ({PROCESS_SERIES}))", "{{__name__}}"),), kind="table"),
            PanelSpec("Series per host", "Process series per host and variant.",
                      (q(f"count by (host_name, phoenix_variant) ({PROCESS_SERIES})",
                         "{{host_name}} {{phoenix_variant}}"),)),
            PanelSpec("Processes per variant", "Distinct PIDs each variant still reports.",
                      (q(f"count by (phoenix_variant) (count by (phoenix_variant, process_pid) ({PROCESS_SERIES}))",
                         "{{phoenix_variant}}"),)),
        )),
        Section("Growth", (
            PanelSpec("Cardinality growth (per hour)", "Slope of the series count over 10 minutes, per hour.",
                      (q(f"deriv(phoenix:process_series:count{{{EXP_VAR}}}[10m]) * 3600", "{{phoenix_variant}}"),)),
            PanelSpec("Series change over 1h", "Series count now minus one hour ago (delta of the gauge).",
                      (q(f"delta(phoenix:process_series:count{{{EXP_VAR}}}[1h])", "{{phoenix_variant}}"),)),
        )),
    ),
)

DASHBOARDS: tuple[DashboardSpec, ...] = (PIPELINE_PERFORMANCE, AB_COMPARISON, COST_ANALYSIS, SYSTEM_HEALTH,
                                         CARDINALITY)

# ---------------------------------------------------------------- builders


def _variable(name: str) -> gd.QueryVariable | gd.TextBoxVariable:
    if name == "price_per_series":
        # Grafana Cloud list price: $8 per 1,000 active series a month.
        return (gd.TextBoxVariable(name).label("Price per active series per month ($)").default_value("0.008"))
    if name == "experiment":
        query = "label_values(phoenix:process_series:count, phoenix_experiment_id)"
    else:
        query = 'label_values(phoenix:process_series:count{phoenix_experiment_id=~"$experiment"}, phoenix_variant)'
    return (gd.QueryVariable(name).label(name.capitalize()).query(query).datasource(DATASOURCE)
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*"))


def _target(query: Query, ref: str, instant: bool) -> gp.Dataquery:
    t = gp.Dataquery().expr(query.expr).legend_format(query.legend or "__auto").ref_id(ref).datasource(DATASOURCE)
    return t.instant() if instant else t.range()


def _panel(spec: PanelSpec, panel_id: int) -> gts.Panel | gstat.Panel | gtable.Panel:
    builder: gts.Panel | gstat.Panel | gtable.Panel
    if spec.kind == "stat":
        builder = gstat.Panel()
    elif spec.kind == "table":
        builder = gtable.Panel()
    else:
        builder = gts.Panel()
    builder = (builder.id(panel_id).title(spec.title).description(spec.description).datasource(DATASOURCE).unit(spec.unit)
               .span(spec.width).height(spec.height))
    for i, query in enumerate(spec.queries):
        builder = builder.with_target(_target(query, chr(ord("A") + i), instant=spec.kind == "table"))
    return builder


def build_dashboard(spec: DashboardSpec) -> dm.Dashboard:
    d = (gd.Dashboard(spec.title).uid(spec.uid).description(spec.description).tags(["phoenix"])
         .time("now-6h", "now").refresh("30s").timezone("browser").editable()
         .tooltip(dm.DashboardCursorSync.CROSSHAIR))
    for name in spec.variables:
        d = d.with_variable(_variable(name))
    panel_id = 0  # unique within the dashboard: Grafana links and alerts address panels by id
    for section in spec.sections:
        panel_id += 1
        d = d.with_row(gd.Row(section.title).id(panel_id))
        for panel in section.panels:
            panel_id += 1
            d = d.with_panel(_panel(panel, panel_id))
    return d.build()


# ---------------------------------------------------------------- files

DATASOURCES_YAML = f"""\
# Grafana datasource provisioning (generated by dashboards/build.py; do not edit).
# Every dashboard panel names the datasource uid {DATASOURCE_UID!r}. Grafana expands $VAR and
# ${{VAR}} in provisioning files (no defaults): set PHOENIX_PROMETHEUS_URL in Grafana's
# environment, e.g. http://prometheus:9090.
apiVersion: 1
datasources:
  - name: Phoenix Prometheus
    uid: {DATASOURCE_UID}
    type: prometheus
    access: proxy
    url: ${{PHOENIX_PROMETHEUS_URL}}
    isDefault: true
    editable: false
    jsonData:
      timeInterval: 10s
"""

DASHBOARDS_YAML = """\
# Grafana dashboard provisioning (generated by dashboards/build.py; do not edit).
# Mount dashboards/*.json at the path below (e.g. /var/lib/grafana/dashboards/phoenix).
apiVersion: 1
providers:
  - name: phoenix
    folder: Phoenix
    type: file
    disableDeletion: true
    allowUiUpdates: false
    updateIntervalSeconds: 60
    options:
      path: /var/lib/grafana/dashboards/phoenix
      foldersFromFilesStructure: false
"""


def render_all() -> dict[str, str]:
    """Relative path under dashboards/ → file content, for every generated file."""
    files = {f"{spec.uid}.json": json.dumps(build_dashboard(spec), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
             for spec in DASHBOARDS}
    files["provisioning/datasources.yaml"] = DATASOURCES_YAML
    files["provisioning/dashboards.yaml"] = DASHBOARDS_YAML
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write (default: dashboards/)")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in render_all().items():
        path = args.out / rel
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run `make dashboards`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
