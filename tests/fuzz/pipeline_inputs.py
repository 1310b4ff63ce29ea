"""Shared by the pipeline-file fuzz properties: hostile values, serialising, and the one check
that runs a file through every entry point (``pipeline validate``, ``import``/``render``, builder upload)."""

from __future__ import annotations

import atexit
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event
from hypothesis import strategies as st

from core.catalog.compiler import validate_graph
from core.commands.pipeline import validate_file
from core.domain.documents import MAX_STRING_CHARS
from core.domain.errors import PhoenixError
from core.domain.pipeline import Pipeline


@pytest.fixture(scope="module", autouse=False)
def schema_pass_only() -> Iterator[None]:
    """``pipeline validate`` ends with the real collector's ``validate`` subprocess when one is
    built. That judge is the collector's own hostile-input handling, not Phoenix's, and costs
    ~0.1 s a call: the properties stop at Phoenix's checks (parser, graph, schema pass)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("core.otelcol.validate.validate_with_binary", lambda *args, **kwargs: None)
        yield


EXAMPLE_BUDGET_S = 5.0  # generous: the machine is shared; a hang or a blow-up is far beyond it
_counter = itertools.count()

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\ufeff", "\u202e", "é" * 3, "${env:SECRET}", "../../etc/passwd", "a\nb", "'\"", "*x",
                     "&a", "!!binary", "(a+)+$", "(?=x)", "[", "\\1", "\x7f", "\u2028"]),
    st.integers(MAX_STRING_CHARS - 2, MAX_STRING_CHARS + 2).map(lambda n: "x" * n),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True), HOSTILE_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=12,
)


def serialise(data: Any, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(data, allow_nan=True).encode()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: the pure-Python dumper is slow
    return yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")


def _files() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="phoenix-fuzz-pipelines-"))
    atexit.register(shutil.rmtree, root, True)
    while True:
        yield root / f"p{next(_counter)}.yaml"


FILES = _files()


def assert_handled(raw: bytes) -> None:
    """Through the CLI (validate, import/render) and the builder upload: clear outcome, bounded time."""
    started = time.perf_counter()
    path = next(FILES)
    path.write_bytes(raw)
    try:
        problems, kind = validate_file(str(path))  # phoenix pipeline validate
        event(f"validate: {kind}, {'refused' if problems else 'valid'}")
        assert all(isinstance(p, str) and p.strip() for p in problems), problems
        assert kind in ("file", "pipeline graph", "collector configuration")
        for parse in (lambda: Pipeline.from_file(path),  # phoenix pipeline import / render
                      lambda: Pipeline.from_text(raw, source="upload.yaml")):  # builder upload
            try:
                pipeline = parse()
            except PhoenixError as exc:
                assert str(exc).strip()
                continue
            assert all(isinstance(p, str) and p.strip() for p in validate_graph(pipeline))
            pipeline.to_json()  # what import stores: must serialise without blowing up
    finally:
        path.unlink(missing_ok=True)
    elapsed = time.perf_counter() - started
    assert elapsed < EXAMPLE_BUDGET_S, f"{elapsed:.1f}s for {len(raw)} bytes"
