"""``phoenix otelcol build|path|version``: the pinned Phoenix collector distribution.

``path`` prints the binary's absolute path and exits 1 (naming the build command) when it is
not built, so scripts can write ``BIN=$(phoenix otelcol path)``.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("otelcol", help="the Phoenix collector distribution (build, path, version)")
    osub = p.add_subparsers(dest="otelcol_command", metavar="ACTION")
    osub.required = True
    b = osub.add_parser("build", help="build the distribution once into the cache (reused when built)")
    b.add_argument("--force", action="store_true", help="rebuild even when the cache holds it")
    b.add_argument("--json", action="store_true", help="print the build figures as JSON")
    b.set_defaults(handler=_build)
    osub.add_parser("path", help="print the binary's absolute path (exit 1 when not built)").set_defaults(
        handler=_path)
    osub.add_parser("version", help="the pinned release and the built binary's own version").set_defaults(
        handler=_version)


def _build(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from core.otelcol.distribution import build

    print("building the Phoenix collector (first build: several minutes)...", file=sys.stderr)
    info = build(force=args.force)
    if args.json:
        print(json.dumps(asdict(info), indent=2))
    else:
        how = "reused from the cache" if info.reused else f"built in {info.build_seconds:.0f} s"
        print(f"{info.path}\nv{info.release}, {info.size_bytes / 1e6:.1f} MB, {how}")
    return 0


def _path(args: argparse.Namespace) -> int:
    from core.otelcol.distribution import require_binary

    print(require_binary())
    return 0


def _version(args: argparse.Namespace) -> int:
    from core.otelcol.distribution import binary_version, built_binary, manifest_hash, pinned_release

    print(f"pinned release: v{pinned_release()} (manifest {manifest_hash()})")
    found = built_binary()
    print(f"binary: {binary_version(found)} at {found}" if found else "binary: not built (make collector)")
    return 0
