"""The recommend use case: from the PromQL people run to a pipeline that keeps it working.

``phoenix recommend``, the Recommend page and ``POST /api/v1/pipelines/recommend`` call
``RecommendService.recommend``. It gathers the queries (``core.usage.sources``), finds the
processes they read (``core.usage.recommend``), proposes the pipeline, estimates it with what
Settings holds (``core.services.estimate``: critical policy and price cards) and checks every
query against the candidate's exported series. docs/recommend.md.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.catalog.frame import ResourceFrame
from core.catalog.templates import get_template
from core.domain.accounts import Actor
from core.domain.critical import DEFAULT_POLICY
from core.domain.errors import ValidationError
from core.engine.snapshot import load_snapshot
from core.observability.tracing import traced_service
from core.services.authz import query
from core.services.estimate import estimate_pipeline, policy_for
from core.services.pipelines import json_safe
from core.services.requests import Recommend
from core.services.settings import SettingsService
from core.usage import recommend as rec
from core.usage.sources import (
    Query,
    dashboard_text_queries,
    prometheus_rule_queries,
    rule_text_queries,
)

MAX_ROUNDS = 3  # propose → check rounds; each drops the processes of queries the last check demoted


#: Callers on a person's own machine, who may point the recommender at any Prometheus. A server
#: (REST, gRPC, the web app) fetches only the Prometheus configured in Settings: a viewer must not
#: make it request URLs of their choosing on its network.
ANY_URL_SOURCES = frozenset({"cli"})


def gather(request: Recommend, settings_url: str | None = None) -> tuple[list[Query], list[str]]:
    """Every query of the request's sources, and one line per problem met reading them."""
    queries: list[Query] = []
    problems = list(request.problems)
    for f in request.rule_files:
        found, more = rule_text_queries(f.name, f.text)
        queries += found
        problems += more
    for f in request.dashboards:
        found, more = dashboard_text_queries(f.name, f.text)
        queries += found
        problems += more
    urls = [request.prometheus_url] if request.prometheus_url else []
    if request.settings_prometheus:
        if settings_url:
            urls.append(settings_url)
        else:
            problems.append("no Prometheus is configured in Settings (PHOENIX_PROMETHEUS_URL): its rules were not read")
    for url in dict.fromkeys(urls):
        found, more = prometheus_rule_queries(url)
        queries += found
        problems += more
    return queries, problems


@traced_service
class RecommendService:
    def __init__(self, configuration: SettingsService):
        self.configuration = configuration

    @query("pipeline.read")
    def recommend(self, actor: Actor, request: Recommend, snapshot: pd.DataFrame | bytes) -> dict[str, Any]:
        """The report (JSON-safe): pipeline, estimate, queries with their verdicts, problems.
        ``snapshot`` is a loaded snapshot frame or a snapshot CSV's bytes (an upload)."""
        if isinstance(snapshot, bytes):
            snapshot = load_snapshot(snapshot)
        frame = snapshot.df if isinstance(snapshot, ResourceFrame) else snapshot
        if request.prometheus_url and actor.source not in ANY_URL_SOURCES:
            raise ValidationError("a Phoenix server reads only the Prometheus configured in Settings: "
                                  "ask for settings_prometheus instead of a URL")
        settings_url = self.configuration.prometheus_url() if request.settings_prometheus else None
        queries, problems = gather(request, settings_url)
        analysis = rec.analyse(frame, queries)
        # the policy an estimate of the base template would use: the default saved in Settings, else built-in
        base_policy = policy_for(get_template(rec.BASE_TEMPLATE), self.configuration) or DEFAULT_POLICY
        # Propose, estimate, check; when the check demotes a query, propose again without the
        # processes only it needed (fewer series) and check every kept query on that pipeline.
        # The verdicts always describe the last pipeline: the check runs on each one proposed.
        for _ in range(MAX_ROUNDS):
            pipeline = rec.propose(frame, analysis, base_policy)
            result = estimate_pipeline(pipeline, frame, self.configuration, source=request.source)
            if not rec.check(analysis, frame, result.evaluation.output_series(-1)):
                break
            rec.keep_only_kept(analysis)
        counts = {s: sum(v.status == s for v in analysis.verdicts) for s in (rec.KEPT, rec.NOT_KEPT, rec.IGNORED, rec.ERROR)}
        report = result.report
        return json_safe({
            "pipeline": result.pipeline.to_dict(),
            "estimate": {k: report.get(k) for k in ("series_in", "series_out", "reduction_pct", "dpm_in", "dpm_out",
                                                    "critical", "cost", "warnings")},
            "queries": [v.to_dict() for v in analysis.verdicts],
            "counts": counts,
            "processes": {"referenced": int((analysis.referenced & rec.last_scrape(frame)).sum()),
                          "keep_rules": rec.keep_rules(frame, analysis.referenced)},
            "labels": analysis.labels,
            "problems": problems,
        })

