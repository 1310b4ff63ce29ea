"""What the API takes and answers: request bodies (with examples) and response models.

Request models check shapes only (``extra="forbid"``: an unknown field is a 422 naming it);
the routes hand them to the services' own requests (``core.services.requests``), where the
domain keeps the rules and their wording. Response models are built from the services'
dataclasses, never from raw store rows.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from core.catalog.templates import get_template
from core.domain.accounts import MAX_PASSWORD, MIN_PASSWORD, TokenRecord, UserRecord
from core.domain.accounts import NAME_RE as ACCOUNT_NAME_RE
from core.domain.critical import MAX_RULES
from core.domain.experiment import Experiment, State
from core.domain.pipeline import MAX_DESCRIPTION as MAX_PIPELINE_DESCRIPTION
from core.domain.pipeline import MAX_EDGES, MAX_NODES, MAX_POSITION, NODE_ID_RE, Pipeline
from core.domain.pipeline import NAME_RE as PIPELINE_NAME_RE
from core.domain.production import ProductionRecord
from core.domain.records import AuditEntry, PipelineRecord, PipelineVersionRecord, ShareLinkRecord
from core.domain.samples import MeasurementSample
from core.services.experiments import ExperimentAnalysis, ExperimentSummary
from core.services.pipelines import SavedVersion
from core.services.settings import PriceCardView, SettingView

#: Text a path or filter may hold: printable, no control characters (a database refuses NUL).
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"
EXPERIMENT_ID = r"^[A-Za-z0-9._-]{1,64}$"
PIPELINE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
ROLE_NAMES = Literal["viewer", "operator", "admin"]
#: Text with at least one character that is not a space (what the services' ``strip()`` keeps).
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"
#: A password the policy takes: no NUL, no newline (its length is checked by min/max length).
PASSWORD = r"^[^\x00\n]*$"
#: A page cursor as ``core.api.paging`` writes it: base64url payload, ``.``, a 16-byte base64url MAC.
#: Whether it verifies (was given out by this server) no schema can say.
PAGE_CURSOR = r"^[A-Za-z0-9_-]{1,470}\.[A-Za-z0-9_-]{22}$"
#: An experiment stream's event id (``core.services.live.Cursor``): ``<transitions>.<sample id>``
#: (left out: from the beginning).
EXPERIMENT_EVENT_ID = r"^[0-9]{1,19}\.[0-9]{1,19}$"
#: The all-experiments feed's event id: a number (left out: from now on).
FEED_EVENT_ID = r"^[0-9]{1,20}$"
#: If-Match for an experiment: its version as the ETag of GET gives it, e.g. ``"3"``.
IF_MATCH_VERSION = r'^(W/)?"[0-9]{1,9}"$'
#: If-Match for the price cards: the tag of the stored document (``default`` before any is stored).
IF_MATCH_PRICE_CARDS = r'^(W/)?"(default|[0-9a-f]{32})"$'
#: A token's lifetime as the accounts take it: 60 s to 366 days in seconds, minutes or hours.
TOKEN_TTL = (r"^((6[0-9]|[7-9][0-9]|[1-9][0-9]{2,5})s"
             r"|([1-9][0-9]{0,4}|[1-4][0-9]{5}|5[01][0-9]{4}|52[0-6][0-9]{3}|5270[0-3][0-9]|527040)m"
             r"|([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-7][0-9]|878[0-4])h)$")
#: Printable ASCII with at least one character that is not a space (a token's label).
LABEL = r"^[ -~]*[!-~][ -~]*$"
#: An experiment id a share link may name, and a pipeline version (``NAME@N``): ``core.services.shares``.
SHARE_EXPERIMENT_REF = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}$"
SHARE_PIPELINE_REF = r"^[a-z0-9][a-z0-9._-]{0,79}@[1-9][0-9]{0,8}$"


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


#: An experiment state as a filter takes it, in any letter case.
STATE_NAME = f"^({'|'.join(_any_case(s.value) for s in State)})$"


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


# ------------------------------------------------------------------ errors

class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "type": "urn:phoenix:problem:validation", "title": "The request is not valid", "status": 422,
        "detail": "duration s: must be positive", "problems": ["duration s: must be positive"]}]})

    type: str = Field(description="a stable code: urn:phoenix:problem:<code> (docs/api.md, Errors)")
    title: str
    status: int
    detail: str
    problems: list[str] | None = Field(None, description="validation only: one sentence per problem")
    reference: str | None = Field(None, description="5xx only: the request's correlation id (X-Request-ID), "
                                  "which the server's log lines carry (docs/observability.md)")


# ------------------------------------------------------------------ auth

class Token(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class RefreshIn(BaseModel):
    model_config = _examples({"refresh_token": "eyJhbGciOiJIUzI1NiIs..."})

    refresh_token: str = Field(max_length=4096)


# ------------------------------------------------------------------ experiments

class CriticalRuleIn(BaseModel):
    """One rule of a critical policy: processes whose ``match`` field matches ``pattern`` get ``priority``."""

    model_config = _examples({"match": "executable_name", "pattern": "^postgres$", "priority": "critical"})

    match: Literal["executable_name", "command_line", "owner"]
    pattern: str = Field(min_length=1, max_length=500)
    priority: Literal["critical", "high", "medium", "low"]


class ExperimentIn(BaseModel):
    """A new experiment: the fields of ``CreateExperiment``; ``load``, ``target`` and ``criteria``
    in their JSON form (docs/architecture.md)."""

    model_config = _examples({"name": "topk vs baseline", "baseline": "process-baseline-v1",
                              "candidate": "process-topk-v1", "duration_s": 600, "interval_s": 15})

    name: str = Field(max_length=200)
    baseline: str = Field(max_length=200)
    candidate: str = Field(max_length=200)
    owner: str | None = Field(None, max_length=200)
    description: str = Field("", max_length=10_000)
    duration_s: float = 60.0
    interval_s: float = 5.0
    load: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    criteria: dict[str, Any] | None = None
    critical_rules: list[CriticalRuleIn] | None = Field(None, max_length=200)


class CancelIn(BaseModel):
    model_config = _examples({"reason": "wrong candidate"})

    reason: str = Field("", max_length=2000)


class PromoteIn(BaseModel):
    model_config = _examples({"force": False, "reason": None},
                             {"force": True, "reason": "measured by hand on the staging fleet"})

    force: bool = False
    reason: str | None = Field(None, max_length=2000)


class TransitionOut(BaseModel):
    """One state change of an experiment."""

    model_config = ConfigDict(populate_by_name=True)

    experiment_id: str
    from_: str = Field(alias="from")
    to: str
    actor: str
    reason: str
    at: datetime


class ExperimentOut(BaseModel):
    id: str
    name: str
    state: str
    owner: str
    description: str
    baseline: str
    candidate: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float
    interval_s: float
    dry_run: bool
    version: int
    verdict: str | None
    result: dict[str, Any] | None
    error: str | None
    target: dict[str, Any]
    load_profile: dict[str, Any]
    criteria: dict[str, Any]
    #: None: the default critical policy applies
    critical_policy: list[dict[str, str]] | None
    #: every state transition, oldest first
    events: list[TransitionOut]

    @classmethod
    def of(cls, e: Experiment) -> ExperimentOut:
        return cls(id=e.id, name=e.name, state=e.state.value, owner=e.owner, description=e.description,
                   baseline=str(e.baseline), candidate=str(e.candidate), created_at=e.created_at,
                   started_at=e.started_at, finished_at=e.finished_at, duration_s=e.timing.duration_s,
                   interval_s=e.timing.interval_s, dry_run=e.dry_run, version=e.version,
                   verdict=(e.result or {}).get("verdict"), result=e.result, error=e.error,
                   target=e.target.to_dict(), load_profile=e.load.to_dict(), criteria=e.criteria.to_dict(),
                   critical_policy=e.critical_rules,
                   events=[TransitionOut(**{"from": ev.from_state}, experiment_id=ev.experiment_id, to=ev.to_state, actor=ev.actor,
                                         reason=ev.reason, at=ev.at) for ev in e.events])


class ExperimentRow(BaseModel):
    id: str
    name: str
    state: str
    owner: str
    baseline: str
    candidate: str
    created_at: datetime
    finished_at: datetime | None
    dry_run: bool
    verdict: str | None

    @classmethod
    def of(cls, s: ExperimentSummary) -> ExperimentRow:
        return cls(id=s.id, name=s.name, state=s.state, owner=s.owner, baseline=s.baseline,
                   candidate=s.candidate, created_at=s.created_at, finished_at=s.finished_at,
                   dry_run=s.dry_run, verdict=s.verdict)


class ExperimentPage(BaseModel):
    items: list[ExperimentRow]
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null on the last")


class AnalysisOut(BaseModel):
    experiment_id: str
    state: str
    verdict: str | None
    result: dict[str, Any]
    criteria: dict[str, Any]
    finished_at: datetime | None

    @classmethod
    def of(cls, a: ExperimentAnalysis) -> AnalysisOut:
        return cls(experiment_id=a.experiment_id, state=a.state, verdict=a.verdict, result=a.result,
                   criteria=a.criteria, finished_at=a.finished_at)


class SampleOut(BaseModel):
    variant: str
    t: datetime
    series: int
    datapoints: int
    bytes: int
    collector_cpu_pct: float | None
    collector_rss_mb: float | None
    critical_coverage_pct: float | None

    @classmethod
    def of(cls, s: MeasurementSample) -> SampleOut:
        return cls(variant=s.variant, t=s.t, series=s.series, datapoints=s.datapoints, bytes=s.bytes,
                   collector_cpu_pct=s.collector_cpu_pct, collector_rss_mb=s.collector_rss_mb,
                   critical_coverage_pct=s.critical_coverage_pct)


class ProductionOut(BaseModel):
    target: str
    pipeline: str
    version: int | None
    ref: str
    experiment_id: str
    promoted_at: str
    actor: str
    commit_id: str
    forced: bool
    reason: str | None
    verdict: str | None

    @classmethod
    def of(cls, r: ProductionRecord) -> ProductionOut:
        return cls(target=r.target, pipeline=r.pipeline, version=r.version, ref=r.ref, experiment_id=r.experiment_id,
                   promoted_at=r.promoted_at, actor=r.actor, commit_id=r.commit_id, forced=r.forced,
                   reason=r.reason, verdict=r.verdict)


# ------------------------------------------------------------------ pipelines

#: A valid pipeline for the examples: the top-k template under a name of its own.
_PIPELINE_EXAMPLE: dict[str, Any] = {**get_template("process-topk-v1").to_dict(), "name": "my-topk"}


class PositionIn(BaseModel):
    """Where a node sits on the builder's canvas (other keys are kept: the canvas may add some)."""

    model_config = ConfigDict(extra="allow")

    x: float = Field(0, ge=-MAX_POSITION, le=MAX_POSITION, strict=True)
    y: float = Field(0, ge=-MAX_POSITION, le=MAX_POSITION, strict=True)


class NodeIn(BaseModel):
    """One node: ``type`` names a catalog entry, ``params`` its settings (the catalog checks both)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=NODE_ID_RE.pattern, description="unique within the pipeline")
    type: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] | None = None
    position: PositionIn | None = None


class EdgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=200, description="a node id")
    target: str = Field(max_length=200, description="a node id")
    id: Any = Field(None, description="kept for the builder; not used")


class PipelineJSON(BaseModel):
    """A pipeline as JSON: the shape ``Pipeline.from_dict`` reads (docs/pipeline-semantics.md).
    Whether its nodes and edges make a valid pipeline is the catalog's to say."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_PIPELINE_EXAMPLE]})

    name: str = Field(pattern=PIPELINE_NAME_RE.pattern)
    description: str | None = Field(None, max_length=MAX_PIPELINE_DESCRIPTION)
    nodes: list[NodeIn] = Field(max_length=MAX_NODES)
    edges: list[EdgeIn] = Field(default_factory=list, max_length=MAX_EDGES)
    critical_policy: list[CriticalRuleIn] | None = Field(None, max_length=MAX_RULES)

    @model_validator(mode="before")
    @classmethod
    def _in_the_domains_words(cls, data: Any) -> Any:
        # The domain reads the shape first, so a remote command says what the local one says
        # (its ValidationError is no ValueError: it passes pydantic and answers as a problem).
        Pipeline.from_dict(data)
        return data

    def as_dict(self) -> dict[str, Any]:
        """What was sent, for ``Pipeline.from_dict`` (keys left out stay out)."""
        return self.model_dump(mode="json", exclude_unset=True)


class PipelineVersionIn(BaseModel):
    """``pipeline``: the pipeline JSON (its ``name`` must be the one in the URL); ``message``: why."""

    model_config = _examples({"pipeline": _PIPELINE_EXAMPLE, "message": "keep the top 20"})

    pipeline: PipelineJSON
    message: str = Field(max_length=10_000, pattern=NOT_BLANK, description="what changed and why")
    expected_version: int | None = Field(
        None, ge=0, le=2**31 - 1,
        description="the latest version this edit started from (0: the pipeline must not exist yet); "
                    "409 when someone saved another version in between, instead of silently reverting theirs")

    def as_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline.as_dict(), "message": self.message, "expected_version": self.expected_version}


class PipelineOut(BaseModel):
    name: str
    description: str
    builtin: bool
    latest_version: int | None

    @classmethod
    def of(cls, r: PipelineRecord) -> PipelineOut:
        return cls(name=r.name, description=r.description, builtin=r.builtin, latest_version=r.latest_version)


class PipelineVersionOut(BaseModel):
    pipeline: str
    number: int
    graph: dict[str, Any]
    collector_yaml: str
    commit_id: str | None
    message: str
    author: str
    created_at: datetime

    @classmethod
    def of(cls, r: PipelineVersionRecord) -> PipelineVersionOut:
        return cls(pipeline=r.pipeline, number=r.number, graph=r.graph, collector_yaml=r.collector_yaml,
                   commit_id=r.commit_id, message=r.message, author=r.author, created_at=r.created_at)


class VersionSummary(BaseModel):
    pipeline: str
    number: int
    commit_id: str | None
    message: str
    author: str
    created_at: datetime

    @classmethod
    def of(cls, r: PipelineVersionRecord) -> VersionSummary:
        return cls(pipeline=r.pipeline, number=r.number, commit_id=r.commit_id, message=r.message,
                   author=r.author, created_at=r.created_at)


class SavedVersionOut(BaseModel):
    name: str
    number: int
    commit_id: str

    @classmethod
    def of(cls, s: SavedVersion) -> SavedVersionOut:
        return cls(name=s.name, number=s.number, commit_id=s.commit_id)


class Validation(BaseModel):
    valid: bool
    problems: list[str]


class Rendered(BaseModel):
    collector_yaml: str


class DiffOut(BaseModel):
    pipeline: str
    from_version: int
    to_version: int
    diff: str = Field(description="a unified diff of the two versions' GitOps files")


class EstimateOut(BaseModel):
    """What ``phoenix estimate --json`` prints: series in/out, reduction, cost per price card, …"""

    pipeline: str
    series_in: int
    series_out: int
    reduction_pct: float
    report: dict[str, Any] = Field(description="the whole report (docs/pipeline-semantics.md)")

    @classmethod
    def of(cls, report: dict[str, Any]) -> EstimateOut:
        return cls(pipeline=str(report.get("pipeline", "")), series_in=int(report.get("series_in") or 0),
                   series_out=int(report.get("series_out") or 0),
                   reduction_pct=float(report.get("reduction_pct") or 0.0), report=report)


class RecommendOut(BaseModel):
    """What ``phoenix recommend --json`` prints (docs/recommend.md)."""

    pipeline: dict[str, Any] = Field(description="the recommended pipeline (pipeline JSON)")
    counts: dict[str, int] = Field(description="queries kept, not kept, ignored (other metrics) and in error")
    series_in: int
    series_out: int
    report: dict[str, Any] = Field(description="the whole report: estimate, queries with reasons, problems")

    @classmethod
    def of(cls, report: dict[str, Any]) -> RecommendOut:
        est = report.get("estimate") or {}
        return cls(pipeline=report["pipeline"], counts=report["counts"], series_in=int(est.get("series_in") or 0),
                   series_out=int(est.get("series_out") or 0), report=report)


# ------------------------------------------------------------------ settings

class SettingOut(BaseModel):
    name: str
    value: Any = Field(description="URLs with their passwords masked; price cards as their document")
    source: Literal["default", "database", "environment"]
    origin: str
    error: str | None

    @classmethod
    def of(cls, v: SettingView) -> SettingOut:
        return cls(name=v.name, value=v.value, source=v.source, origin=v.origin, error=v.error)


class SettingIn(BaseModel):
    """The new value (null: back to the default). ``critical_policy`` is its YAML text;
    ``price_cards`` a card document; ``retention_days`` a number; the URLs text."""

    model_config = _examples({"value": 45}, {"value": "http://prometheus:9090"}, {"value": None})

    value: Annotated[StrictStr, Field(max_length=1 << 20)] | StrictInt | None


class PriceCardsOut(BaseModel):
    cards: list[dict[str, Any]]
    source: Literal["default", "database", "environment"]
    origin: str

    @classmethod
    def of(cls, v: PriceCardView) -> PriceCardsOut:
        return cls(cards=list(v.document.get("cards", [])), source=v.source, origin=v.origin)


class PriceCardsIn(BaseModel):
    """A price card document (the shape of ``price_cards.yaml``, docs/configuration.md)."""

    model_config = _examples({"cards": [{
        "id": "grafana-cloud-pro", "vendor": "Grafana Cloud", "plan": "Pro (metrics)", "model": "grafana_cloud",
        "params": {"usd_per_1000_series": 6.5, "free_series": 10000, "included_dpm_per_series": 1.0},
        "source": "https://grafana.com/docs/grafana-cloud/cost-management-and-billing/understand-usage-cost/metrics/",
        "as_of": "2026-11-28"}]})

    cards: list[dict[str, Any]]


# ------------------------------------------------------------------ accounts

class UserOut(BaseModel):
    name: str
    role: str
    disabled: bool
    locked_until: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, u: UserRecord) -> UserOut:
        return cls(name=u.name, role=u.role.label, disabled=u.disabled, locked_until=u.locked_until,
                   created_at=u.created_at)


class UserIn(BaseModel):
    model_config = _examples({"name": "dana", "role": "operator", "password": "a long passphrase"})

    name: str = Field(pattern=ACCOUNT_NAME_RE.pattern)
    role: ROLE_NAMES
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD, pattern=PASSWORD,
                          description="the initial password (at least 8 characters, no NUL or newline)")


class RoleIn(BaseModel):
    model_config = _examples({"role": "admin"})

    role: ROLE_NAMES


class PasswordIn(BaseModel):
    model_config = _examples({"password": "another long passphrase"})

    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD, pattern=PASSWORD,
                          description="at least 8 characters, no NUL or newline")


class TokenOut(BaseModel):
    id: str
    owner: str
    name: str
    role: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, t: TokenRecord) -> TokenOut:
        return cls(id=t.id, owner=t.owner, name=t.name, role=t.role.label, created_at=t.created_at,
                   expires_at=t.expires_at, revoked_at=t.revoked_at, last_used_at=t.last_used_at)


class TokenIn(BaseModel):
    model_config = _examples({"name": "ci", "ttl": "720h"}, {"name": "dashboards", "ttl": "1h", "role": "viewer"})

    name: str = Field(max_length=100, pattern=LABEL, description="printable ASCII, not blank")
    ttl: str = Field("2160h", max_length=20, pattern=TOKEN_TTL,
                     description="how long it lives in s, m or h: 30m, 1h, 720h, … (60s to 366 days: 8784h)")
    role: ROLE_NAMES | None = Field(None, description="at most the owner's role (default: the owner's)")


class NewToken(TokenOut):
    secret: str = Field(description="the bearer credential, shown this once; only its hash is kept")


class AuditOut(BaseModel):
    actor: str
    action: str
    subject: str
    at: datetime
    source: str
    details: dict[str, Any]
    before: Any
    after: Any

    @classmethod
    def of(cls, a: AuditEntry) -> AuditOut:
        return cls(actor=a.actor, action=a.action, subject=a.subject, at=a.at, source=a.source,
                   details=a.details, before=a.before, after=a.after)


class AuditPageOut(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None = Field(description="pass as cursor= for the next page; null on the last")


# ------------------------------------------------------------------ share links

def _share_ttl() -> Any:
    return Field(None, max_length=20, pattern=r"^[1-9][0-9]{0,5}[mhdw]$",
                 description="30m, 24h, 7d or 2w: 1 minute to 365 days (default 7d)")


class ExperimentShareIn(BaseModel):
    model_config = _examples({"kind": "experiment", "ref": "exp-1a2b3c4d", "ttl": "7d"})

    kind: Literal["experiment"]
    ref: str = Field(pattern=SHARE_EXPERIMENT_REF, description="an experiment id")
    ttl: str | None = _share_ttl()


class PipelineShareIn(BaseModel):
    model_config = _examples({"kind": "pipeline", "ref": "my-topk@3"})

    kind: Literal["pipeline"]
    ref: str = Field(pattern=SHARE_PIPELINE_REF, description="a pipeline version: NAME@N")
    ttl: str | None = _share_ttl()


#: A new share link: the grammar of ``ref`` follows ``kind``.
ShareIn = Annotated[ExperimentShareIn | PipelineShareIn, Field(discriminator="kind")]


class ShareOut(BaseModel):
    id: str
    kind: str
    ref: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, r: ShareLinkRecord) -> ShareOut:
        return cls(id=r.id, kind=r.scope_kind, ref=r.scope_ref, created_by=r.created_by, created_at=r.created_at,
                   expires_at=r.expires_at, revoked_at=r.revoked_at)


class NewShare(ShareOut):
    url: str = Field(description="the link to hand out (its signed token is the credential)")
