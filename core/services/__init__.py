"""Every use case, one shape: pages, the CLI and the coming HTTP API call these and nothing below.

- A service class per area (``ExperimentService``, ``PipelineService``, ``PromotionService``,
  ``ReportService``, ``SystemService``), built once by ``core.bootstrap`` from a unit-of-work
  factory (``core.domain.ports.UnitOfWork``) and the ports it needs (GitOps, …).
- Methods take a pydantic request (``core.services.requests``) and the acting user, and
  return dataclasses (``Experiment``, ``SavedVersion``, ``ProductionRecord``, records).
- Each state change is one unit of work with its audit entry.
"""
