#!/usr/bin/env python3
"""Refresh the vendored collector schemas (core/render/schemas/) to the pinned collector release.

The release is the one ``collector/builder-config.yaml`` pins (``dist.version``: every contrib module
and the core ``v0.x`` modules; stable core modules at whatever ``v1.x`` the builder pairs with it).
Sources are the Go module cache (``go env GOMODCACHE``), never a git checkout:

1. The module version of every collector module comes from ``go list -m all`` in the builder's
   generated build: ``--build-dir DIR`` reuses one; otherwise the builder (``--builder``, ``$OCB`` or
   ``builder`` on PATH; it must be the pinned version) regenerates it into a temp dir with
   ``--skip-compilation``.
2. For every ``files:`` entry of ``refmap.yaml`` the upstream path is looked up in the longest module
   path prefix present in the cache at its pinned version (a component module missing from the
   cache, e.g. one Phoenix does not build, is fetched with ``go mod download`` unless ``--offline``).
   A differing file is copied over the vendored one; the entry's provenance (repo, path,
   module@version, sha256, git blob sha, chars) is rewritten. Files with no upstream counterpart
   at the release (fork copies) are reported and kept, with the reason in their ``note``.
3. ``refs:`` is recomputed from the ``$ref``s of the vendored schemas (the validator resolves
   cross-file refs through it), ``ottl/functions.md`` is regenerated from ``pkg/ottl`` and the
   filter/transform processors' function registrations, and the file table in
   ``UPSTREAM-INDEX.md`` is rewritten from ``refmap.yaml``.

Run ``python scripts/refresh_otelcol_schemas.py`` (``--check`` only reports and exits 1 when
something would change), then ``pytest tests/unit/test_schema_validate.py tests/unit/test_render.py``.
Stdlib + PyYAML only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "core" / "render" / "schemas"
REFMAP = SCHEMAS / "refmap.yaml"
INDEX = SCHEMAS / "UPSTREAM-INDEX.md"
FUNCTIONS_MD = SCHEMAS / "ottl" / "functions.md"
BUILDER_CONFIG = ROOT / "collector" / "builder-config.yaml"

CORE = "go.opentelemetry.io/collector"
CONTRIB = "github.com/open-telemetry/opentelemetry-collector-contrib"
CORE_REPO = "open-telemetry/opentelemetry-collector"
CONTRIB_REPO = "open-telemetry/opentelemetry-collector-contrib"
COMPONENT_KINDS = {"receiver", "processor", "exporter", "extension", "connector"}


def die(msg: str) -> None:
    sys.exit(f"refresh_otelcol_schemas: {msg}")


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


# ---- the pinned release ----------------------------------------------------------------------------
def escape_module(path: str) -> str:
    """Module cache case-encoding (``Foo`` → ``!foo``)."""
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in path)


@dataclass
class Release:
    version: str  # dist.version, e.g. v0.159.0: contrib modules and core v0.x modules
    modules: dict[str, str]  # go list -m all of the generated build
    modcache: Path
    offline: bool = False
    downloaded: list[str] = field(default_factory=list)

    @property
    def core_versions(self) -> list[str]:
        """Core module versions of this release (beta v0.x first, then stable v1.x)."""
        seen = {v for m, v in self.modules.items() if m == CORE or m.startswith(CORE + "/")}
        return sorted(seen | {self.version}, key=lambda v: (not v.startswith("v0."), v))

    def versions(self, module: str) -> list[str]:
        if module in self.modules:
            return [self.modules[module]]
        return [self.version] if module.startswith(CONTRIB) else self.core_versions

    def cached(self, module: str, version: str) -> Path | None:
        d = self.modcache / f"{escape_module(module)}@{version}"
        return d if d.is_dir() else None

    def download(self, module: str) -> None:
        """Fetch one module we know exists (a component module) at its pinned version."""
        if self.offline or any(self.cached(module, v) for v in self.versions(module)):
            return
        for v in self.versions(module):
            with tempfile.TemporaryDirectory() as tmp:
                out = run(["go", "mod", "download", "-json", f"{module}@{v}"], cwd=Path(tmp))
            try:
                info = json.loads(out.stdout or "{}")
            except json.JSONDecodeError:
                info = {}
            if info.get("Dir") and not info.get("Error"):
                self.modules.setdefault(module, v)
                self.downloaded.append(f"{module}@{v}")
                return

    def locate(self, base: str, path: str) -> tuple[str, str, Path] | tuple[None, None, str]:
        """(module, version, file) owning ``path`` in repo ``base``, or (None, None, reason)."""
        parts = path.split("/")
        if parts[0] in COMPONENT_KINDS and len(parts) > 2:
            self.download(f"{base}/{parts[0]}/{parts[1]}")
        for i in range(len(parts) - 1, -1, -1):
            module = "/".join([base, *parts[:i]])
            for v in self.versions(module):
                d = self.cached(module, v)
                if d is None:
                    continue
                f = d.joinpath(*parts[i:])
                if f.is_file():
                    return module, v, f
                return None, None, f"module {module}@{v} has no {'/'.join(parts[i:])}"
        return None, None, f"no module containing {path} is in the module cache at {self.version}"


def pinned_version() -> str:
    cfg = yaml.safe_load(BUILDER_CONFIG.read_text(encoding="utf-8"))
    return "v" + str(cfg["dist"]["version"]).lstrip("v")


def build_modules(version: str, build_dir: Path | None, builder: str | None) -> dict[str, str]:
    """``go list -m all`` of the builder's generated build for builder-config.yaml."""
    tmp = None
    try:
        if build_dir is None:
            builder = builder or os.environ.get("OCB") or shutil.which("builder") or "builder"
            got = run([builder, "version"])
            if got.returncode != 0 or version not in got.stdout + got.stderr:
                die(f"{builder} is not the {version} collector builder ({(got.stdout + got.stderr).strip()!r}); "
                    "pass --builder PATH or --build-dir DIR (a build it generated for builder-config.yaml)")
            tmp = Path(tempfile.mkdtemp(prefix="otelcol-schemas-"))
            cfg = yaml.safe_load(BUILDER_CONFIG.read_text(encoding="utf-8"))
            cfg["dist"]["output_path"] = str(tmp / "build")
            (tmp / "builder-config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
            got = run([builder, "--config", str(tmp / "builder-config.yaml"), "--skip-compilation"], cwd=tmp)
            if got.returncode != 0:
                die(f"builder failed:\n{got.stderr[-2000:]}")
            build_dir = tmp / "build"
        got = run(["go", "list", "-m", "all"], cwd=build_dir)
        if got.returncode != 0:
            die(f"go list -m all failed in {build_dir}:\n{got.stderr[-2000:]}")
        modules = {}
        for line in got.stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 2:
                modules[fields[0]] = fields[1]
        return modules
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# ---- files: ------------------------------------------------------------------------------------------
def repo_base(repo: str) -> str:
    """Module path prefix of an entry's repo (forks of contrib count as contrib)."""
    return CORE if repo.split()[0].endswith("/opentelemetry-collector") else CONTRIB


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FileResult:
    local: str
    status: str  # changed | unchanged | kept
    detail: str


def refresh_files(refmap: dict[str, Any], rel: Release, write: bool) -> list[FileResult]:
    results = []
    for i, entry in enumerate(refmap["files"]):
        local = SCHEMAS / entry["local"]
        base = repo_base(entry["repo"])
        module, version, found = rel.locate(base, entry["path"])
        if module is None:
            assert isinstance(found, str)
            new = dict(entry)
            new.setdefault("origin_note", entry.get("note"))
            new["note"] = f"no upstream counterpart at {rel.version}: {found}; kept as vendored"
            refmap["files"][i] = new
            results.append(FileResult(entry["local"], "kept", found))
            continue
        assert isinstance(found, Path)
        data = found.read_bytes()
        old = local.read_bytes() if local.exists() else b""
        mod_at = f"{module}@{version}"
        if data != old:
            was = entry.get("module") or f"{entry['repo'].split()[0]}@{str(entry.get('commit', ''))[:12]}"
            note = f"refreshed from {mod_at}; replaced the copy from {was}"
            if write:
                local.write_bytes(data)
        elif entry.get("module") == mod_at:
            note = entry.get("note") or f"from {mod_at}"
        elif entry.get("module"):
            note = f"unchanged since {entry['module']}"
        else:
            note = f"identical to the previously vendored copy ({entry['repo'].split()[0]}@{str(entry.get('commit'))[:12]})"
        refmap["files"][i] = {
            "local": entry["local"],
            "component": entry["component"],
            "repo": CORE_REPO if base == CORE else CONTRIB_REPO,
            "path": entry["path"],
            "module": mod_at,
            "sha256": hashlib.sha256(data).hexdigest(),
            "git_blob": git_blob(data),
            "chars": len(data.decode("utf-8")),
            "upstream_dir": entry.get("upstream_dir"),
            "note": note,
        }
        results.append(FileResult(entry["local"], "changed" if data != old else "unchanged", mod_at))
    return results


# ---- refs: --------------------------------------------------------------------------------------------
def _refs_in(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v)
            else:
                out.extend(_refs_in(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_refs_in(v))
    return out


def _resolve_ref(ref: str, entry: dict[str, Any], by_path: dict[tuple[str, str], str]) -> dict[str, Any] | None:
    if ref.startswith("#") or ("/" not in ref and "." not in ref):
        return None  # same-file
    dot = ref.find(".", ref.rfind("/") + 1)
    pkg, definition = ref[:dot], ref[dot + 1:]
    base = repo_base(entry["repo"])
    if ref.startswith("./"):
        form, directory = "rel", f"{entry['upstream_dir']}/{pkg[2:]}"
    elif ref.startswith("/"):
        form, directory = "root", pkg[1:]
    elif pkg.startswith(CORE + "/"):
        form, base, directory = "abs", CORE, pkg[len(CORE) + 1:]
    elif pkg.startswith(CONTRIB + "/"):
        form, base, directory = "abs", CONTRIB, pkg[len(CONTRIB) + 1:]
    else:
        return None
    upstream_path = f"{directory}/config.schema.yaml"
    local = by_path.get((base, upstream_path))
    if local is None:
        status = "missing-file"
    else:
        doc = yaml.safe_load((SCHEMAS / local).read_text(encoding="utf-8")) or {}
        defs = doc.get("$defs") or {}
        root_is_config = definition == "config" and doc.get("type") == "object"
        status = "resolved" if definition in defs or root_is_config else "missing-def"
    return {
        "from_file": entry["local"],
        "ref": ref,
        "ref_form": form,
        "upstream": f"{'core' if base == CORE else 'contrib'}:{upstream_path}#/$defs/{definition}",
        "local": local,
        "definition": definition,
        "status": status,
    }


def recompute_refs(refmap: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-local $ref of the vendored schemas (existing order kept, new ones appended)."""
    by_path = {(repo_base(f["repo"]), f["path"]): f["local"] for f in refmap["files"]}
    fresh: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in refmap["files"]:
        if not entry["local"].startswith("schemas/"):
            continue
        doc = yaml.safe_load((SCHEMAS / entry["local"]).read_text(encoding="utf-8"))
        for ref in _refs_in(doc):
            r = _resolve_ref(ref, entry, by_path)
            if r is not None:
                fresh.setdefault((r["from_file"], ref), r)
    out = [fresh.pop((r["from_file"], r["ref"])) for r in refmap.get("refs", []) if (r["from_file"], r["ref"]) in fresh]
    return out + list(fresh.values())


# ---- OTTL function names ------------------------------------------------------------------------------
_FACTORY_DEF = re.compile(r"^func\s+(\w+)\s*(?:\[[^\]\n]*\])?\s*\([^)]*\)\s*ottl\.Factory\[[^\n]*?\]\s*\{(.*?)^\}",
                          re.S | re.M)
_NEW_FACTORY = re.compile(r'ottl\.NewFactory\(\s*(?:"([^"]+)"|(\w+))')
_CALL = re.compile(r"\b(?:(\w+)\.)?([Nn]ew\w*Factory)\s*(?:\[[^\]\n]*\])?\s*\(\s*\)")
_FUNC = re.compile(r"^func\s+(\w+)\s*(?:\[[^\]\n]*\])?\s*\([^)]*\)[^{\n]*\{(.*?)^\}", re.S | re.M)


def _go_sources(d: Path) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(d.glob("*.go")) if not p.name.endswith("_test.go")}


def _factory_index(dirs: list[Path]) -> dict[str, list[tuple[Path, str]]]:
    """Factory constructor name → [(package dir, function name it registers)]."""
    index: dict[str, list[tuple[Path, str]]] = {}
    for d in dirs:
        sources = _go_sources(d)
        text = "\n".join(sources.values())
        for src in sources.values():
            for ctor, body in _FACTORY_DEF.findall(src):
                m = _NEW_FACTORY.search(body)
                if not m:
                    continue
                name = m.group(1)
                if name is None:
                    const = re.search(rf'\b{m.group(2)}\s*(?:string\s*)?=\s*"([^"]+)"', text)
                    if not const:
                        die(f"cannot resolve the function name constant {m.group(2)} in {d}")
                    name = const.group(1)
                index.setdefault(ctor, []).append((d, name))
    return index


def _names(body: str, here: Path, index: dict[str, list[tuple[Path, str]]]) -> list[str]:
    out = []
    for _pkg, ctor in _CALL.findall(body):
        hits = index.get(ctor, [])
        local = [n for d, n in hits if d == here]
        if local or len(hits) == 1:
            out.append((local or [hits[0][1]])[0])
        elif hits:
            die(f"ambiguous factory {ctor} in {here}")
    return out


def _funcs(src: str) -> dict[str, str]:
    return dict(_FUNC.findall(src))


@dataclass
class Ottl:
    editors: list[str]
    editor_like_converters: list[str]
    converters: list[str]
    unregistered: list[tuple[str, str]]
    filter_extras: dict[str, list[str]]
    filter_base: dict[str, str]
    transform_extras: list[tuple[str, str, list[str]]]
    sources: list[str]


def collect_ottl(rel: Release) -> Ottl:
    def mod_dir(module: str) -> Path:
        m, v, f = rel.locate(CONTRIB, module.removeprefix(CONTRIB + "/") + "/go.mod")
        if m is None:
            die(f"cannot find {module} at {rel.version}: {f}")
        assert isinstance(f, Path)
        return f.parent

    ottl = mod_dir(f"{CONTRIB}/pkg/ottl")
    filt = mod_dir(f"{CONTRIB}/internal/filter")
    fproc = mod_dir(f"{CONTRIB}/processor/filterprocessor")
    tproc = mod_dir(f"{CONTRIB}/processor/transformprocessor")
    funcs_dir = ottl / "ottlfuncs"
    tdirs = sorted(p.parent for p in (tproc / "internal").glob("*/*.go"))
    index = _factory_index([funcs_dir, filt / "filterottl", fproc, *dict.fromkeys(tdirs)])

    std = _funcs((funcs_dir / "functions.go").read_text(encoding="utf-8"))
    editors = _names(std["StandardFuncs"].split("converters", 1)[0], funcs_dir, index)
    conv_all = _names(std["converters"], funcs_dir, index)
    editor_like = [n for n in conv_all if n[:1].islower()]
    converters = [n for n in conv_all if not n[:1].islower()]
    registered = set(editors) | set(conv_all)
    unregistered = []
    for p, src in _go_sources(funcs_dir).items():
        for ctor, _body in _FACTORY_DEF.findall(src) if p.name.startswith("func_") else []:
            unregistered += [(n, p.name) for d, n in index.get(ctor, []) if d == funcs_dir and n not in registered]

    filter_extras: dict[str, list[str]] = {}
    filter_base: dict[str, str] = {}
    for fname, body in _funcs((filt / "filterottl" / "functions.go").read_text(encoding="utf-8")).items():
        m = re.fullmatch(r"Standard(\w+)Funcs", fname)
        if not m:
            continue
        ctx = m.group(1).lower()
        filter_base[ctx] = "StandardFuncs" if "StandardFuncs" in body else "StandardConverters"
        extras = _names(body, filt / "filterottl", index)
        if extras:
            filter_extras[ctx] = extras
    for fname, body in _funcs((fproc / "functions.go").read_text(encoding="utf-8")).items():
        extras = _names(body, fproc, index)
        if extras:
            filter_extras.setdefault(f"filterprocessor {fname}", []).extend(extras)

    transform_extras = []
    for d in dict.fromkeys(tdirs):
        f = d / "functions.go"
        if not f.exists():
            continue
        for fname, body in _funcs(f.read_text(encoding="utf-8")).items():
            extras = _names(body, d, index)
            if extras:
                transform_extras.append((f.relative_to(tproc).as_posix(), fname, extras))

    def src(module_dir: Path, rel_path: str) -> str:
        return f"`{rel_path}` ({module_dir.name.replace('@', ' @ ')})"

    sources = [
        src(ottl, "pkg/ottl/ottlfuncs/functions.go") + ": StandardFuncs, StandardConverters, converters()",
        src(ottl, "pkg/ottl/ottlfuncs/func_*.go") + ": the name each factory passes to `ottl.NewFactory`",
        src(filt, "internal/filter/filterottl/functions.go") + ": the filter processor's per-context maps",
        src(fproc, "processor/filterprocessor/functions.go") + ": calls the filterottl maps",
        *(src(tproc, f"processor/transformprocessor/{p}") + f": `{fn}()`" for p, fn, _ in transform_extras),
    ]
    return Ottl(editors, editor_like, converters, unregistered, filter_extras, filter_base, transform_extras, sources)


def render_functions_md(o: Ottl, rel: Release) -> str:
    lines = [
        "# OTTL function names (contrib `pkg/ottl/ottlfuncs` + filter/transform extras)",
        "",
        f"Names only, for collector release **{rel.version}**. Generated by",
        "`python scripts/refresh_otelcol_schemas.py` from that release's Go module sources (contrib",
        "`pkg/ottl`, `internal/filter` and the filter/transform processors; see \"Sources\"). Each name is",
        "the string a registered factory passes to `ottl.NewFactory(...)`, which is the name you write in",
        "a statement.",
        "",
        "Case convention: Editors are lower_snake_case and change telemetry. Converters are PascalCase, are",
        "pure, and return a value.",
        "",
        "## 1. Standard Editors (`ottlfuncs.StandardFuncs`, Editors block)",
        "",
        "The Editors block of `StandardFuncs` in `ottlfuncs/functions.go`:",
        "",
        *(f"- {n}" for n in o.editors),
        "",
        "Registered through the `converters()` list in functions.go, but these are Editors (lower-case). The",
        "README lists them under Editors:",
        "",
        *(f"- {n}" for n in o.editor_like_converters),
        "",
        "## 2. Standard Converters (`ottlfuncs.StandardConverters`, also included in StandardFuncs)",
        "",
        "The upper-case names of `converters()` in `ottlfuncs/functions.go`, in registration order:",
        "",
        *(f"- {n}" for n in o.converters),
        "",
    ]
    if o.unregistered:
        lines += [
            "Defined in `ottlfuncs` but in neither list above (a processor adds them for one context only;",
            "see §3 and §4): " + ", ".join(f"{n} (`{f}`)" for n, f in o.unregistered) + ".",
            "",
        ]
    bases = sorted(set(o.filter_base.values()))
    lines += [
        "## 3. Filter processor extras (`processor/filter`)",
        "",
        "The filter processor's per-context maps come from `internal/filter/filterottl/functions.go`, which",
        "`processor/filterprocessor/functions.go` calls. " + (
            "It registers only Converters, never Editors:" if bases == ["StandardConverters"]
            else "Maps built on: " + ", ".join(bases) + ":"),
        "",
        f"- every context ({', '.join(sorted(o.filter_base))}):",
        "  `ottlfuncs.StandardConverters` (all of §2)",
    ]
    for ctx, names in o.filter_extras.items():
        lines.append(f"- {ctx} context adds:")
        lines += [f"  - {n}" for n in names]
    lines += [
        "",
        "## 4. Transform processor extras (`processor/transform`)",
        "",
        "Every context gets `ottlfuncs.StandardFuncs` (Editors + Converters, §1 and §2), plus:",
    ]
    for path, fname, names in o.transform_extras:
        lines += ["", f"`{path}`, `{fname}()`:", ""]
        lines += [f"- {n}" for n in names]
    lines += ["", "## Sources", ""]
    lines += [f"- {s}" for s in o.sources]
    return "\n".join(lines) + "\n"


# ---- UPSTREAM-INDEX.md file table --------------------------------------------------------------------
def render_index_table(refmap: dict[str, Any], text: str) -> str:
    head = "| component | local file | source repo | upstream path | module@version | notes |"
    rows = [head, "| --- | --- | --- | --- | --- | --- |"]
    for f in refmap["files"]:
        prov = f"`{f['module']}`" if f.get("module") else f"`{f.get('commit')}` (not refreshed)"
        note = str(f.get("note") or "").replace("|", "\\|")
        rows.append(f"| `{f['component']}` | `{f['local']}` | {f['repo']} | `{f['path']}` | {prov} | {note} |")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| component")), None)
    if start is None:
        return text
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[:start], *rows, *lines[end:]]) + "\n"


# ---- main ------------------------------------------------------------------------------------------------
def dump_refmap(refmap: dict[str, Any]) -> str:
    return yaml.safe_dump(refmap, sort_keys=False, width=200, allow_unicode=True, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, help="a build the builder generated for builder-config.yaml")
    ap.add_argument("--builder", help="collector builder (ocb) of the pinned version")
    ap.add_argument("--offline", action="store_true", help="never run go mod download")
    ap.add_argument("--check", action="store_true", help="report only; exit 1 when something would change")
    args = ap.parse_args(argv)

    version = pinned_version()
    modcache = Path(run(["go", "env", "GOMODCACHE"]).stdout.strip() or Path.home() / "go" / "pkg" / "mod")
    rel = Release(version, build_modules(version, args.build_dir, args.builder), modcache, args.offline)
    write = not args.check

    refmap = yaml.safe_load(REFMAP.read_text(encoding="utf-8"))
    before = dump_refmap(refmap)
    results = refresh_files(refmap, rel, write)
    refmap.pop("core_mirror_head", None)
    refmap["release"] = {
        "version": version,
        "core_versions": rel.core_versions,
        "source": "Go module cache; module versions from `go list -m all` of the builder's build of "
                  "collector/builder-config.yaml",
        "refresh": "python scripts/refresh_otelcol_schemas.py",
    }
    refmap = {k: refmap[k] for k in ("note", "release", "files", "refs") if k in refmap}
    refmap["refs"] = recompute_refs(refmap)
    referenced = {r["local"] for r in refmap["refs"] if r["status"] == "resolved"}
    for f in refmap["files"]:
        kept = f["note"].startswith("no upstream counterpart")
        if kept and f["local"].startswith("schemas/contrib/") and f["local"] not in referenced:
            f["note"] = f["note"].removesuffix("; kept as vendored") + \
                "; no vendored schema references it any more; kept as vendored"
    after = dump_refmap(refmap)

    ottl = collect_ottl(rel)
    functions_md = render_functions_md(ottl, rel)
    index_md = render_index_table(refmap, INDEX.read_text(encoding="utf-8"))

    changed = [r for r in results if r.status == "changed"]
    kept = [r for r in results if r.status == "kept"]
    print(f"release {version} (core {', '.join(rel.core_versions)}); module cache {modcache}")
    for m in rel.downloaded:
        print(f"  downloaded {m}")
    for r in changed:
        print(f"  changed    {r.local}  <- {r.detail}")
    for r in kept:
        print(f"  kept       {r.local}  ({r.detail})")
    print(f"  unchanged  {sum(r.status == 'unchanged' for r in results)} file(s)")
    md_changed = functions_md != FUNCTIONS_MD.read_text(encoding="utf-8")
    print(f"  ottl/functions.md {'regenerated' if md_changed else 'unchanged'}")
    if write:
        REFMAP.write_text(after, encoding="utf-8")
        FUNCTIONS_MD.write_text(functions_md, encoding="utf-8")
        INDEX.write_text(index_md, encoding="utf-8")
        missing = sorted({r["ref"] for r in refmap["refs"] if r["status"] != "resolved"})
        print(f"  refmap.yaml: {len(refmap['refs'])} cross-file refs, {len(missing)} distinct unresolved")
        return 0
    return 1 if (changed or md_changed or before != after) else 0


if __name__ == "__main__":
    sys.exit(main())
