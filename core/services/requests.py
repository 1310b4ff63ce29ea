"""What entry points hand the services: pydantic models at the boundary.

Pages, the CLI and the coming HTTP API build these and pass them to the service methods,
so all three are checked the same way. The models check shapes and types only; the
domain (``Experiment.create``, ``check_message``, …) keeps the rules and their wording, so
a value of the right type but wrong meaning still gets the domain's one clear message.
Results come back as plain dataclasses (``Experiment``, ``SavedVersion``,
``ProductionRecord``), never string-keyed dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Self, TypeVar

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, InstanceOf

from core.domain.criteria import LoadProfile, SuccessCriteria, Target
from core.domain.errors import ValidationError
from core.domain.pipeline import Pipeline

T = TypeVar("T")


class Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def of(cls, **fields: object) -> Self:
        """Build the request; a wrong type or an unknown field is a ``ValidationError`` naming it."""
        try:
            return cls(**fields)
        except pydantic.ValidationError as exc:
            raise ValidationError([_problem(e) for e in exc.errors()]) from None


def _problem(err: Mapping[str, object]) -> str:
    loc = err.get("loc")
    where = ".".join(str(p) for p in loc) if isinstance(loc, tuple) and loc else "request"
    return f"{where.replace('_', ' ')}: {err.get('msg', 'is not valid')}"


def _from_json(kind: Callable[[dict[str, Any]], T]) -> Callable[[object], object]:
    """JSON (a dict) becomes the domain object through its own ``from_dict`` (and its own errors)."""

    def convert(value: object) -> object:
        return kind(value) if isinstance(value, dict) else value

    return convert


#: A domain value object given as itself (pages, CLI) or as its JSON form (the HTTP API).
LoadField = Annotated[InstanceOf[LoadProfile], BeforeValidator(_from_json(LoadProfile.from_dict))]
TargetField = Annotated[InstanceOf[Target], BeforeValidator(_from_json(Target.from_dict))]
CriteriaField = Annotated[InstanceOf[SuccessCriteria], BeforeValidator(_from_json(SuccessCriteria.from_dict))]
PipelineField = Annotated[InstanceOf[Pipeline], BeforeValidator(_from_json(Pipeline.from_dict))]


class CreateExperiment(Request):
    """A new experiment. ``owner`` defaults to the acting user."""

    name: str
    baseline: str
    candidate: str
    owner: str | None = None
    description: str = ""
    duration_s: float = 60.0
    interval_s: float = 5.0
    load: LoadField | None = None
    target: TargetField | None = None
    criteria: CriteriaField | None = None
    critical_rules: list[dict[str, str]] | None = None


class CancelExperiment(Request):
    """``expected_version``: cancel only if the experiment is still at that version (If-Match)."""

    experiment_id: str
    reason: str = ""
    expected_version: int | None = None


class RerunExperiment(Request):
    """Run a finished experiment again: same pipelines, target, load, timing, criteria and policy."""

    experiment_id: str


class ExperimentTable(Request):
    """One page of the experiment table (``ExperimentService.table``): filters, a sort
    column of ``core.domain.ports.TABLE_SORTS``, and a page of ``page_size`` rows."""

    states: list[str] | None = None
    owner: str | None = None
    pipeline: str | None = None
    verdict: str | None = None
    sort: str = "created"
    descending: bool = True
    page: Annotated[int, pydantic.Field(ge=0, le=100_000)] = 0
    page_size: Annotated[int, pydantic.Field(ge=1, le=200)] = 25


class SavePipelineVersion(Request):
    """``expected_version``: save only if the pipeline's latest version is still that one
    (0: it must not exist yet); a save in between is a ConcurrencyError, not a silent overwrite."""

    pipeline: PipelineField
    # Optional here so a missing message gets the domain's one wording ("a version message is required").
    message: str | None = None
    expected_version: Annotated[int, pydantic.Field(ge=0)] | None = None


class EstimatePipeline(Request):
    """What to estimate on an uploaded snapshot: a saved or built-in pipeline by ref
    (``name`` / ``name@N``), or a pipeline given as JSON (``graph``); exactly one."""

    pipeline: str | None = None
    graph: PipelineField | None = None
    source: str = "snapshot"

    @pydantic.model_validator(mode="after")
    def _one_pipeline(self) -> Self:
        if (self.pipeline is None) == (self.graph is None):
            raise ValueError("give exactly one of pipeline (a name or name@N) and graph (pipeline JSON)")
        return self


class Promote(Request):
    """Make an experiment's candidate the production pipeline of its target."""

    experiment_id: str
    force: bool = False
    reason: str | None = None


class ExperimentReport(Request):
    """One experiment's report in ``format`` (csv | html | pdf, ``core.reports.render.FORMATS``)."""

    experiment_id: str
    format: str


class AddSnapshot(Request):
    """Store a process snapshot in a history scope (``phoenix snapshot add``)."""

    scope: str = "default"
    source: str = "snapshot"


class RetrainPipeline(Request):
    """Learn a saved pipeline's intelligent nodes again from a scope's stored snapshots."""

    pipeline: str
    scope: str = "default"


class UsageFile(Request):
    """One uploaded or read file: its name (shown in messages) and its content."""

    name: str = pydantic.Field(min_length=1, max_length=512)
    text: str = pydantic.Field(max_length=16 * 1024 * 1024)


class Recommend(Request):
    """``phoenix recommend``: Prometheus rule files, Grafana dashboards (JSON) and, optionally,
    a Prometheus whose rules API to read. ``problems`` carries what the entry point could not
    read (a junk file in a dashboard directory), so one report lists every problem."""

    rule_files: list[UsageFile] = []
    dashboards: list[UsageFile] = []
    prometheus_url: str | None = None  # the CLI's --prometheus URL (refused from a server's callers)
    settings_prometheus: bool = False  # read the Prometheus configured in Settings (PHOENIX_PROMETHEUS_URL)
    problems: list[str] = []
    source: str = "snapshot"
