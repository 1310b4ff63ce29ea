"""What a user installs must work: runtime imports are pinned in requirements.txt, nothing
pinned is unused, and every resource the code reads ships inside the package."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

from core import resources
from core.commands.ui import config_options

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("core", "app", "pages")
# Pinned but never imported by name, each for a stated reason (see the comments in requirements.txt).
LOADED_INDIRECTLY = {"psycopg": "SQLAlchemy's postgresql+psycopg dialect", "protobuf": "opentelemetry-proto",
                     "authlib": "Streamlit's st.login (OIDC sign-in)", "httpx": "Authlib's client in st.login"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_normal(re.split(r"[\[=<>~ ]", line, maxsplit=1)[0]))
    return names


def _imported_top_modules() -> set[str]:
    mods: set[str] = set()
    for pkg in RUNTIME_PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    mods.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    mods.add(node.module.split(".")[0])
    return mods - set(sys.stdlib_module_names) - set(RUNTIME_PACKAGES)


def test_every_runtime_import_is_pinned_and_every_pin_is_used() -> None:
    dists = md.packages_distributions()
    imported = {_normal(d) for m in _imported_top_modules() for d in dists.get(m, [m])}
    pins = _pins()
    assert imported - pins == set(), "imported at runtime but not in requirements.txt"
    assert pins - imported - set(LOADED_INDIRECTLY) == set(), "pinned in requirements.txt but never imported"


def test_dev_requirements_hold_no_runtime_import() -> None:
    dev = {_normal(re.split(r"[\[=<>~ ]", ln, maxsplit=1)[0])
           for ln in (ROOT / "requirements-dev.txt").read_text().splitlines()
           if ln.strip() and not ln.startswith(("#", "-r"))}
    dists = md.packages_distributions()
    imported = {_normal(d) for m in _imported_top_modules() for d in dists.get(m, [m])}
    assert dev & imported == set()


def test_resources_are_inside_the_package() -> None:
    core_dir = Path(resources.__file__).parent
    for path in (resources.TEMPLATES_ROOT, resources.PIPELINE_TEMPLATES_DIR, resources.REPORT_TEMPLATES_DIR,
                 resources.CRD_DIR):
        assert path.is_dir() and core_dir in path.parents
    assert len(list(resources.PIPELINE_TEMPLATES_DIR.glob("*.yaml"))) == 7


def test_kustomize_crds_are_the_packaged_crds() -> None:
    """k8s/crds is the kustomize base's copy of the CRDs the package validates against."""
    packaged = {p.name: p.read_bytes() for p in resources.CRD_DIR.glob("*.yaml")}
    kustomize = {p.name: p.read_bytes() for p in (ROOT / "k8s" / "crds").glob("*.phoenix.io.yaml")}
    assert packaged and packaged == kustomize


def test_package_data_globs_cover_every_resource_file() -> None:
    """Every non-Python file under core/ is matched by a package-data pattern (else a wheel drops it)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = [f"core/{g}" for g in config["core"]] + [f"core/data/{g}" for g in config["core.data"]]
    shipped = {path for p in patterns for path in ROOT.glob(p)}
    resource_files = {path for path in (ROOT / "core").rglob("*")
                      if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts}
    assert resource_files - shipped == set()


def test_streamlit_config_becomes_command_line_options() -> None:
    opts = config_options({"theme": {"base": "light", "sidebar": {"x": "#fff"}}, "server": {"headless": True}})
    assert opts == ["--theme.base=light", "--theme.sidebar.x=#fff", "--server.headless=true"]


def test_pinned_authlib_is_what_streamlit_login_accepts() -> None:
    """st.login needs Authlib >= 1.3.2 and its Starlette client (which needs httpx)."""
    import warnings

    from streamlit.auth_util import is_authlib_installed

    with warnings.catch_warnings():  # Authlib 1.9 nudges towards httpx2; Streamlit's "auth" extra names httpx
        warnings.simplefilter("ignore")
        from authlib.integrations import starlette_client  # noqa: F401 - the import is the check

    assert is_authlib_installed()
    pins = dict(re.split(r"==", ln.split("#", 1)[0].strip(), maxsplit=1)
                for ln in (ROOT / "requirements.txt").read_text().splitlines() if "==" in ln.split("#", 1)[0])
    assert md.version("Authlib") == pins["Authlib"] and md.version("httpx") == pins["httpx"]


def test_secrets_file_becomes_a_streamlit_option(tmp_path: Path) -> None:
    from core.commands.ui import secrets_options
    from core.domain.errors import PermanentError

    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nclient_secret = "s3cret-value"\n', encoding="utf-8")
    assert secrets_options({}) == []
    assert secrets_options({"PHOENIX_SECRETS_FILE": str(secrets)}) == [f"--secrets.files={secrets}"]
    secrets.write_text('[auth]\nclient_secret = s3cret-value\n', encoding="utf-8")
    with pytest.raises(PermanentError, match="not valid TOML") as bad:
        secrets_options({"PHOENIX_SECRETS_FILE": str(secrets)})
    assert "s3cret" not in str(bad.value)  # the error names the position, never the content
    with pytest.raises(PermanentError, match="PHOENIX_SECRETS_FILE=.*cannot read"):
        secrets_options({"PHOENIX_SECRETS_FILE": str(tmp_path / "missing.toml")})
