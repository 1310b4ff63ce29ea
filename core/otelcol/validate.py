"""Validate a collector config with the real Phoenix collector (``<bin> validate --config``).

The schema check (core.render.schema_validate) stays the fast first pass; this is the judge:
the collector's own unmarshalling refuses unknown keys, duplicate YAML keys, bad OTTL and
dangling component references exactly as a deployed collector would.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core.otelcol.distribution import BUILD_COMMAND, built_binary, pinned_release
from core.render.k8s_experiment import ExperimentBundle
from core.render.k8s_validate import validate_manifests_text
from core.render.schema_validate import validate_collector_yaml

# Placeholder values for ${env:NAME} references: validate resolves them; secrets never are real here.
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)")
_ROOT_PATH = re.compile(r"^(\s*root_path:\s*)(\S+)\s*$", re.MULTILINE)
_NOISE = re.compile(r"^\d{4}-\d\d-\d\dT\S+\s+(info|warn|debug)\s", re.IGNORECASE)


@dataclass(frozen=True)
class BinaryVerdict:
    ok: bool
    problems: list[str]
    validator: str  # e.g. "phoenix-otelcol v0.159.0 validate"
    notes: list[str] = field(default_factory=list)


def _for_this_host(config_yaml: str) -> tuple[str, list[str]]:
    """The hostmetrics receiver stats its ``root_path`` while validating; a DaemonSet's
    ``/hostfs`` does not exist on this host, so check that one value as ``/`` and say so.
    The edit is textual: re-dumping through PyYAML would hide what the collector must judge
    (duplicate keys, quoting)."""
    notes: list[str] = []

    def swap(match: re.Match[str]) -> str:
        root = match.group(2).strip("'\"")
        if Path(root).is_dir():
            return match.group(0)
        notes.append(f"root_path {root} does not exist on this host: validated as /")
        return f"{match.group(1)}/"

    return _ROOT_PATH.sub(swap, config_yaml), notes


def validate_with_binary(config_yaml: str, binary: Path | None = None, timeout: float = 60.0) -> BinaryVerdict | None:
    """The real collector's verdict on ``config_yaml``; None when no binary is built."""
    binary = binary or built_binary()
    if binary is None:
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEW_RELIC", "PHOENIX_SECRET"))}
    for name in _ENV_REF.findall(config_yaml):
        env.setdefault(name, "phoenix-validate-placeholder")
    config_yaml, notes = _for_this_host(config_yaml)
    with tempfile.TemporaryDirectory(prefix="phoenix-validate-") as tmp:
        path = Path(tmp) / "collector.yaml"
        path.write_text(config_yaml, encoding="utf-8")
        try:
            res = subprocess.run([str(binary), "validate", f"--config=file:{path}"], capture_output=True,
                                 text=True, timeout=timeout, env=env, cwd=tmp, check=False)
        except subprocess.TimeoutExpired:
            return BinaryVerdict(False, [f"the collector did not finish validating within {timeout:.0f} s"],
                                 _name(binary), notes)
    if res.returncode == 0:
        return BinaryVerdict(True, [], _name(binary), notes)
    lines = [ln.strip() for ln in (res.stderr + "\n" + res.stdout).splitlines() if ln.strip()]
    problems = [ln.replace(str(path), "collector.yaml") for ln in lines if not _NOISE.match(ln)]
    return BinaryVerdict(False, problems or [f"the collector refused the config (exit {res.returncode})"],
                         _name(binary), notes)


def _name(binary: Path) -> str:
    return f"phoenix-otelcol v{pinned_release()} validate"


@dataclass(frozen=True)
class CollectorCheck:
    """Both passes over one collector config: the vendored schemas, then the real binary."""

    problems: list[str]
    validators: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        """Which validators ran, in words (the CLI and the builder show it)."""
        return " + ".join(self.validators)


def check_collector_yaml(config_yaml: str) -> CollectorCheck:
    """Schema pass first (fast, names the key); when it passes and the binary is built, the
    collector's own ``validate`` on the exact text."""
    schema = f"schemas v{pinned_release()}"
    problems = validate_collector_yaml(config_yaml)
    if problems:
        return CollectorCheck(problems, [schema])
    verdict = validate_with_binary(config_yaml)
    if verdict is None:
        return CollectorCheck([], [schema], [f"the real collector is not built, so only the schemas ran: {BUILD_COMMAND}"])
    return CollectorCheck(verdict.problems, [schema, verdict.validator], verdict.notes)


def check_experiment_bundle(bundle: ExperimentBundle) -> list[str]:
    """Strict Kubernetes validation of an experiment's manifests and, for each embedded
    config, the schemas and the real collector's ``validate`` (when built)."""
    problems = [f"{role}.yaml: {p}" for role, text in bundle.configs.items()
                for p in check_collector_yaml(text).problems]  # fmt: skip
    problems += validate_manifests_text({f"k8s/{n}": t for n, t in bundle.manifests.items()})
    return problems
