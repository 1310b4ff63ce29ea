"""Pages and widgets reach data only through the services: no unit of work, no repository.

import-linter already forbids ``app``/``pages`` importing ``core.store``; this closes the other
door — reaching the store through the wired services object (``svc.uow()``, ``svc.database``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Attributes that hand out a unit of work (and through it every repository).
STORE_DOORS = frozenset({"uow", "uow_factory", "database"})


def store_doors(source: str, filename: str) -> list[str]:
    """``file:line attr`` for every use of a store door in ``source``."""
    return [f"{filename}:{node.lineno} .{node.attr}" for node in ast.walk(ast.parse(source, filename))
            if isinstance(node, ast.Attribute) and node.attr in STORE_DOORS]


def test_app_and_pages_never_open_a_unit_of_work() -> None:
    files = sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "pages").rglob("*.py")])
    assert len(files) > 10  # the scan really covers the UI
    found = [hit for f in files for hit in store_doors(f.read_text(), str(f.relative_to(ROOT)))]
    assert found == []


def test_the_rule_catches_a_repository_call() -> None:
    bad = "def rows(svc):\n    with svc.uow() as uow:\n        return uow.pipelines.list_pipelines()\n"
    assert store_doors(bad, "pages/x.py") == ["pages/x.py:2 .uow"]
    assert sorted(store_doors("svc.database.uow()", "app/y.py")) == ["app/y.py:1 .database", "app/y.py:1 .uow"]
