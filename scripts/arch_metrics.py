"""Architecture figures for core/: import cycles, `Any` annotations, function-level imports.

Run before and after a refactor to report what changed (docs/architecture.md cites it):

    python scripts/arch_metrics.py

Cycles are counted between modules of ``core`` with every import (top-level and
function-level) as an edge, since a lazy import still couples two modules.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def collect(package: str = "core"):
    files = sorted((ROOT / package).rglob("*.py"))
    modules = {_module_name(f): f for f in files}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    any_count = 0
    local_imports = 0
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        is_pkg = path.name == "__init__.py"
        top = set(id(n) for n in tree.body)
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, node, is_pkg)
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                if (isinstance(node, ast.Name) and node.id == "Any") or (
                        isinstance(node, ast.Attribute) and node.attr == "Any"):
                    any_count += 1
                continue
            in_function = id(node) not in top and not _under_type_checking(tree, node)
            hit = False
            for t in targets:
                # the longest known module prefix of the target
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    edges[name].add(t)
                    hit = True
            if hit and in_function:
                local_imports += 1
    return modules, edges, any_count, local_imports


def _under_type_checking(tree: ast.Module, target: ast.AST) -> bool:
    for node in tree.body:
        if (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                and any(n is target for n in ast.walk(node))):
            return True
    return False


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; components of size > 1 are import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def _is_package_init_edge(a: str, b: str) -> bool:
    # a package's __init__ re-exporting its own submodule is not a cycle worth counting
    return b.startswith(a + ".") or a.startswith(b + ".")


def main() -> int:
    modules, edges, any_count, local_imports = collect()
    pruned = {m: {t for t in ts if not _is_package_init_edge(m, t)} for m, ts in edges.items()}
    cycles = strongly_connected(pruned)
    in_cycles = sum(len(c) for c in cycles)
    print(f"modules in core: {len(modules)}")
    print(f"import cycles (strongly connected groups): {len(cycles)}, modules in them: {in_cycles}")
    for c in cycles:
        print("  cycle:", ", ".join(c[:12]) + (" …" if len(c) > 12 else ""))
    print(f"`Any` uses in core: {any_count}")
    print(f"function-level imports of core modules: {local_imports}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
