"""docs/pipeline-semantics.md lists the snapshot CSV columns the reader accepts, no more, no less."""

from __future__ import annotations

import re
from pathlib import Path

from core.engine import snapshot

DOC = Path(__file__).resolve().parents[2] / "docs" / "pipeline-semantics.md"


def _listed(kind: str) -> list[str]:
    text = DOC.read_text()
    section = text[text.index("**Snapshot CSV**"):text.index("**Snapshot frame**")]
    item = re.search(rf"^- {kind}: (.*?)(?=^- |\Z)", section, re.MULTILINE | re.DOTALL)
    assert item, f"no '- {kind}:' item in the Snapshot CSV section"
    return re.findall(r"`([a-z_]+)`", item.group(1))


def test_the_documented_columns_are_the_reader_s() -> None:
    assert _listed("required") == list(snapshot.REQUIRED_COLUMNS)
    assert _listed("optional") == list(snapshot.OPTIONAL_COLUMNS)
    assert _listed("extra") == list(snapshot.EXTRA_COLUMNS)
