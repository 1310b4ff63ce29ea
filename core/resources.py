"""Files that ship inside the ``core`` package (templates, CRDs, schemas, price cards, migrations).

Found with ``importlib.resources`` so a non-editable install (the Docker image, ``make smoke``)
reads them from site-packages exactly as a checkout reads them from the work tree. Phoenix is
installed as plain files (never a zip), so each resource is a real directory on disk, which
Jinja2, Alembic and the glob-based loaders need.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(*parts: str) -> Path:
    """The on-disk path of ``core/<parts...>``."""
    return Path(str(files("core").joinpath(*parts)))


TEMPLATES_ROOT = package_path("templates")
PIPELINE_TEMPLATES_DIR = TEMPLATES_ROOT / "pipelines"
REPORT_TEMPLATES_DIR = TEMPLATES_ROOT / "reports"
CRD_DIR = package_path("k8s", "crds")
#: DejaVu TTFs (and their licence) the PDF reports embed: Unicode text on any host.
FONTS_DIR = package_path("data", "fonts")
