"""``phoenix experiment report ID --format csv|html|pdf --out FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.commands import common
from core.domain.errors import ValidationError
from core.outputs import output_file, write_file
from core.reports.render import FORMATS
from core.services.requests import ExperimentReport


def register(esub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``report`` to the ``experiment`` command group's subparsers."""
    r = esub.add_parser("report", help="write an experiment report: CSV samples, self-contained HTML or PDF")
    r.add_argument("id")
    r.add_argument("--format", choices=FORMATS, default=None,
                   help="report format (default: from the --out suffix, else html)")
    r.add_argument("--out", required=True, help="file to write ('-' for stdout, csv/html only)")
    common.add_identity(r)
    r.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    import sys

    if not args.out.strip():
        raise ValidationError("--out is empty: give a file path, or - for stdout")
    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out != "-" else "html")
    if fmt not in FORMATS:
        raise ValidationError(f"cannot tell the report format from {args.out!r}; pass --format csv|html|pdf")
    if args.out == "-" and fmt == "pdf":
        raise ValidationError("a PDF report needs --out FILE")
    out = output_file(args.out) if args.out != "-" else None
    services = common.services()
    try:
        body = services.reports.render(common.identity(services.accounts, args),
                                       ExperimentReport.of(experiment_id=args.id, format=fmt))
    finally:
        services.close()
    if args.out == "-":
        sys.stdout.write(body.decode("utf-8"))
        return 0
    assert out is not None
    write_file(out, body)
    print(f"wrote {fmt} report of {args.id} to {out} ({len(body):,} bytes)")
    return 0
