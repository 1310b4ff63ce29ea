"""Every use case, one shape: pages, the CLI and the coming HTTP API call these and nothing below.

- A service class per area (``ExperimentService``, ``PipelineService``, ``PromotionService``,
  ``ReportService``, ``SystemService``, ``SettingsService``, ``AccountService``), built once by ``core.bootstrap`` from a unit-of-work
  factory (``core.domain.ports.UnitOfWork``) and the ports it needs (GitOps, …).
- Methods take the acting ``Actor`` (``core.domain.accounts``) first, then a pydantic request
  (``core.services.requests``), and return dataclasses (``Experiment``, ``SavedVersion``,
  ``ProductionRecord``, records).
- Each is declared ``@query`` or ``@mutation`` (``core.services.authz``): the role is checked
  before anything happens, and each state change is one unit of work with exactly one audit
  entry. ``AccountService`` signs users in and manages accounts and API tokens.
"""
