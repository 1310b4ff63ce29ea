"""Code cites the project's own docs: every ``docs/*.md`` named in code exists, and nothing
cites sections of a design document that is not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("core", "app", "pages", "bench", "scripts") for p in (ROOT / d).rglob("*.py")]


def test_no_citations_of_a_design_document_outside_the_repository() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in SOURCES if "DESIGN §" in p.read_text()]
    assert offenders == []


def test_every_cited_doc_exists() -> None:
    cited = {m for p in SOURCES for m in re.findall(r"docs/[a-z0-9-]+\.md", p.read_text())}
    assert cited, "the code cites no docs at all"
    assert sorted(c for c in cited if not (ROOT / c).is_file()) == []
