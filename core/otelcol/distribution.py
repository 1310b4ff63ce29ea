"""Build, locate and describe the Phoenix collector distribution (``collector/builder-config.yaml``).

The binary is built once with the OpenTelemetry Collector Builder into a cache outside the work
tree, keyed by the manifest's hash, so every clone, CI run and ``make test`` on this machine reuses
it. Go and the module proxy are the only things a build needs.

Cache layout: ``$PHOENIX_OTELCOL_CACHE`` (default ``$XDG_CACHE_HOME/phoenix/otelcol`` or
``~/.cache/phoenix/otelcol``) / ``<manifest sha256[:16]>`` / ``phoenix-otelcol`` + ``build.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.domain.errors import PermanentError, TemporaryError
from core.resources import package_path

BINARY_NAME = "phoenix-otelcol"
BUILD_COMMAND = "make collector  (or: phoenix otelcol build)"


def manifest_path() -> Path:
    return package_path("collector", "builder-config.yaml")


def manifest_text() -> str:
    return manifest_path().read_text(encoding="utf-8")


def manifest_hash(text: str | None = None) -> str:
    """Key of the build cache: the manifest's content (comments and output_path don't change a build)."""
    manifest = yaml.safe_load(text if text is not None else manifest_text())
    manifest.get("dist", {}).pop("output_path", None)
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def pinned_release() -> str:
    """The one collector release every component of the distribution is pinned to (e.g. ``0.159.0``)."""
    return str(yaml.safe_load(manifest_text())["dist"]["version"])


def cache_root() -> Path:
    explicit = os.environ.get("PHOENIX_OTELCOL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "phoenix" / "otelcol"


def build_dir() -> Path:
    return cache_root() / manifest_hash()


def binary_path() -> Path:
    return build_dir() / BINARY_NAME


def built_binary() -> Path | None:
    """The built binary for the current manifest, or None."""
    path = binary_path()
    return path if path.is_file() and os.access(path, os.X_OK) else None


@dataclass(frozen=True)
class BuildInfo:
    path: str
    release: str
    manifest_hash: str
    build_seconds: float
    size_bytes: int
    go_version: str
    reused: bool


def build_info() -> dict[str, object] | None:
    meta = build_dir() / "build.json"
    if not meta.is_file():
        return None
    return dict(json.loads(meta.read_text(encoding="utf-8")))


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time per cache (a test session and a CLI call may race)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with (cache_root() / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None)
    if go is None:
        raise PermanentError("cannot build the collector: no Go toolchain (`go`) on PATH; "
                             "experiments fall back to the emulator (PHOENIX_COLLECTOR=emulator)")
    return go


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path, what: str) -> None:
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        res = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if res.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise TemporaryError(f"{what} failed (exit {res.returncode}); last lines of {log}:\n" + "\n".join(tail))


def build(force: bool = False) -> BuildInfo:
    """Build the distribution unless the cache already holds it for this manifest."""
    with _build_lock():
        existing = built_binary()
        if existing and not force:
            info = build_info() or {}
            return BuildInfo(str(existing), pinned_release(), manifest_hash(),
                             float(info.get("build_seconds", 0.0)), existing.stat().st_size,
                             str(info.get("go_version", "")), reused=True)
        go = _go()
        release = pinned_release()
        target = build_dir()
        target.mkdir(parents=True, exist_ok=True)
        tools = cache_root() / "tools" / release
        env = {**os.environ, "GOBIN": str(tools), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
        env["PATH"] = f"{Path(go).parent}{os.pathsep}{env.get('PATH', '')}"
        log = target / "build.log"
        log.write_text("")
        started = time.monotonic()
        builder = tools / "builder"
        if not builder.is_file():
            _run([go, "install", f"go.opentelemetry.io/collector/cmd/builder@v{release}"], target, env, log,
                 f"installing the collector builder v{release}")
        with tempfile.TemporaryDirectory(prefix="phoenix-otelcol-", dir=target) as tmp:
            work = Path(tmp)
            manifest = yaml.safe_load(manifest_text())
            manifest["dist"]["output_path"] = str(work / "src")
            (work / "builder-config.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
            _run([str(builder), "--config", str(work / "builder-config.yaml")], work, env, log,
                 f"building the Phoenix collector v{release}")
            produced = work / "src" / BINARY_NAME
            if not produced.is_file():
                raise TemporaryError(f"the builder finished without producing {produced}; see {log}")
            os.replace(produced, target / BINARY_NAME)
        seconds = round(time.monotonic() - started, 1)
        go_version = subprocess.run([go, "version"], capture_output=True, text=True, check=False).stdout.strip()
        size = (target / BINARY_NAME).stat().st_size
        (target / "build.json").write_text(json.dumps({
            "release": release, "manifest_hash": manifest_hash(), "build_seconds": seconds,
            "size_bytes": size, "go_version": go_version,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=2))
        return BuildInfo(str(target / BINARY_NAME), release, manifest_hash(), seconds, size, go_version,
                         reused=False)


def require_binary() -> Path:
    found = built_binary()
    if found is None:
        raise PermanentError(f"the Phoenix collector v{pinned_release()} is not built; build it with: {BUILD_COMMAND}")
    return found


def binary_version(path: Path) -> str:
    res = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30, check=False)
    return (res.stdout or res.stderr).strip()
