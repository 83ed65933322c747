"""The import graph of bot/, handlers/ and storage/: floors and circles.

    python tools/import_graph.py            # floors of packages, then any circle of modules
    python tools/import_graph.py --modules  # floors of modules

Every import counts, those under `if TYPE_CHECKING:` and inside functions too: a circle that
only a type hint closes is still a circle a reader has to hold in their head. A floor is the
length of the longest chain of imports below a node; floor 0 imports nothing of ours.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage")


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of ours, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve(name: str, known: Iterable[str]) -> str | None:
    """The module of ours that `name` (a module, or a name inside one) is, if any."""
    known = set(known)
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of ours it imports."""
    found = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    if not is_package:
                        anchor = anchor[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            for target in targets:
                resolved = _resolve(target, found)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def collapse(graph: dict[str, set[str]], depth: int) -> dict[str, set[str]]:
    """The graph of packages: each module named by its first `depth` parts."""

    def group(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    packages: dict[str, set[str]] = {}
    for source, targets in graph.items():
        packages.setdefault(group(source), set())
        for target in targets:
            if group(target) != group(source):
                packages[group(source)].add(group(target))
    return packages


def floors(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each node's floor; nodes in a circle share the circle's floor."""
    member_of = {node: tuple(c) for c in circles(graph) for node in c}
    memo: dict[str, int] = {}

    def floor(node: str, seen: frozenset[str]) -> int:
        if node in memo:
            return memo[node]
        group = set(member_of.get(node, (node,)))
        below = [t for n in group for t in graph.get(n, ()) if t not in group and t not in seen]
        value = 1 + max((floor(t, seen | group) for t in below), default=-1)
        for n in group:
            memo[n] = value
        return value

    return {node: floor(node, frozenset()) for node in graph}


def main(argv: list[str]) -> int:
    graph = imports()
    view = graph if "--modules" in argv else collapse(graph, 2)
    by_floor: dict[int, list[str]] = {}
    for node, level in floors(view).items():
        by_floor.setdefault(level, []).append(node)
    for level in sorted(by_floor, reverse=True):
        print(f"floor {level}: {' '.join(sorted(by_floor[level]))}")
    found = circles(graph) + circles(collapse(graph, 2))
    for circle in found:
        print(f"circle of {len(circle)}: {' '.join(circle)}")
    if not found:
        print("no circle among the modules, nor among the packages")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
