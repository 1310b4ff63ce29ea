"""Per-experiment reports: CSV samples, self-contained HTML, PDF (see ``render``).

Pure: ``build`` gathers what a report shows, ``render`` formats it. Fetching the experiment
is the report use case's job (``core.services.reports``).
"""

from __future__ import annotations

from core.reports.data import ReportData, build
from core.reports.render import FORMATS, render

__all__ = ["FORMATS", "ReportData", "build", "render"]
