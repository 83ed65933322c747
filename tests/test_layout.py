"""The house's rules, checked: no import circle, every package says what it may import and
keeps to it, modules stay small, providers stay in their room, and the architecture document
names only paths that exist."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
MAX_TOP_MODULES = 10  # directly in bot/
PROVIDER_NAME = re.compile(r"""["'](contextual|aquilax|langsmith|langfuse)["']""")
MAY_IMPORT = re.compile(r"May import:\s*(.+?)\.(?=\s|$)")


def _import_graph() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools/import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


graph_tool = _import_graph()
GRAPH: dict[str, set[str]] = graph_tool.imports(ROOT)
SOURCES: dict[str, Path] = graph_tool.modules(ROOT)


def _package(module: str) -> str:
    """The room a module lives in: `bot.answers`, `storage.sqlite`, `handlers`, or a module
    directly under bot/ or storage/ (a room of its own)."""
    return ".".join(module.split(".")[:2])


def test_no_import_circle_among_modules_or_packages() -> None:
    assert graph_tool.circles(GRAPH) == []
    assert graph_tool.circles(graph_tool.collapse(GRAPH, 2)) == []


def test_the_graph_sees_type_checking_and_function_level_imports(tmp_path: Path) -> None:
    # The checks above are only as good as the reader of imports: a circle closed by a type
    # hint or a late import must count.
    package = tmp_path / "bot"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.b import B\n"
    )
    (package / "b.py").write_text("def f():\n    from bot import a\n")
    for name in ("handlers", "storage"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    assert graph_tool.circles(graph_tool.imports(tmp_path)) == [["bot.a", "bot.b"]]


def _allowed(package: str) -> set[str]:
    doc = (SOURCES[package].read_text().split('"""')[1:2] or [""])[0]
    found = MAY_IMPORT.search(" ".join(doc.split()))
    assert found, f"{package}'s docstring should end with 'May import: …' (what it may import)"
    words = re.split(r",\s*|\s+and\s+", found.group(1).strip())
    return {w.strip() for w in words if w.strip() and w.strip() != "nothing of ours"}


PACKAGES = sorted(
    name for name, path in SOURCES.items() if path.name == "__init__.py" and name.count(".") == 1
)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_its_docstring_allows(package: str) -> None:
    allowed = _allowed(package)
    used = {
        _package(target) if target.startswith(("bot.", "storage.")) else target
        for source, targets in GRAPH.items()
        if _package(source) == package
        for target in targets
        if _package(target) != package
    }
    # A package of bot/ that may import storage may import any of storage's modules; storage's
    # own packages name the modules they may import.
    widened = {
        t
        for t in used
        if not (t.startswith("storage.") and "storage" in allowed and package.startswith("bot"))
    }
    assert widened <= allowed, f"{package} imports {sorted(widened - allowed)} (allowed: {allowed})"


def test_bot_imports_handlers_only_in_the_composition_root() -> None:
    importers = {
        source
        for source, targets in GRAPH.items()
        if source.startswith("bot") and any(t.split(".")[0] == "handlers" for t in targets)
    }
    assert importers == {"bot.app"}


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in SOURCES.values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_bot_keeps_few_modules_at_its_top() -> None:
    top = sorted(p.name for p in (ROOT / "bot").glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_provider_names_stay_in_the_providers_room() -> None:
    # A new provider should touch its module, its settings, a migration, its tests and docs;
    # anywhere else that spells a provider's name is a place it would have to be added to.
    outside = sorted(
        str(path.relative_to(ROOT))
        for name, path in SOURCES.items()
        if not name.startswith("bot.providers")
        and "migrations" not in name
        and PROVIDER_NAME.search(path.read_text())
    )
    assert len(outside) <= 3, outside


def _tree_paths(text: str) -> list[str]:
    """The paths named by the tree in "Where things live": an entry's names start its line
    (indented two spaces a level) and end at the first run of two spaces; deeper lines go
    on with the description above them."""
    block = text.split("## Where things live", 1)[1].split("```", 2)[1]
    parents: list[str] = []
    paths = []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent >= 16:  # a description going on
            continue
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        depth = indent // 2
        parents = parents[:depth]
        entries = [n.strip() for n in names.split(",") if n.strip()]
        for entry in entries:
            paths.append("/".join([*parents, entry.rstrip("/")]))
        if len(entries) == 1 and entries[0].endswith("/"):
            parents.append(entries[0].rstrip("/"))
    return paths


def test_architecture_names_only_paths_that_exist() -> None:
    paths = _tree_paths((ROOT / "docs/architecture.md").read_text())
    assert len(paths) > 30, paths  # the tree was read, not skipped
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert missing == []


def test_architecture_shows_every_package() -> None:
    paths = set(_tree_paths((ROOT / "docs/architecture.md").read_text()))
    packages = {
        str(path.parent.relative_to(ROOT))
        for path in SOURCES.values()
        if path.name == "__init__.py" and path.parent != ROOT
    }
    assert packages - paths == set()
