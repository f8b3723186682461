"""Figures of the module graph of ``twin`` and ``twin_api``, for any git revision.

Builds the import graph with grimp (which import-linter installs) from the
sources of a revision (``git archive``, nothing checked out) or of the working
tree, and prints: modules, lines, imports between modules, module-level import
cycles (strongly connected components, found with networkx), imports of another
module's ``_private`` names, the modules outside ``twin.store`` holding SQL, and
the largest module. ``docs/module-graph.md``
shows the figures before and after issue 11.

Usage::

    python scripts/module_graph.py                 # the working tree
    python scripts/module_graph.py --rev b829a8f   # a revision
    python scripts/module_graph.py --rev b829a8f --json
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"twin": Path("src/twin"), "twin_api": Path("api")}


def checkout(rev: str | None, into: Path) -> Path:
    """A folder holding ``twin`` and ``twin_api`` as packages at ``rev`` (None: working tree)."""
    packages = into / "packages"
    packages.mkdir()
    for name, path in PACKAGES.items():
        if rev is None:
            (packages / name).symlink_to(ROOT / path, target_is_directory=True)
            continue
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", rev, str(path)],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(into / "tree", filter="data")
        (packages / name).symlink_to(into / "tree" / path, target_is_directory=True)
    return packages


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(package_dir: Path, package: str) -> int:
    """Imports of another module's ``_private`` names (``from twin.x import _y``).

    A package's own private modules (``from twin.query import _shared`` inside
    ``twin.query``) are its own business and not counted.
    """
    count = 0
    for path in package_dir.rglob("*.py"):
        parts = [package, *path.relative_to(package_dir).with_suffix("").parts]
        here = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if node.module == here or not node.module.startswith(("twin.", "twin_api")):
                continue
            if here.startswith(node.module + "."):  # a package's own private modules
                continue
            count += sum(_private(alias.name) for alias in node.names)
    return count


_SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT INTO|DELETE FROM|CREATE TABLE|UPDATE\s+\S+\s+SET)\b", re.S
)


def sql_modules(package_dir: Path, package: str) -> list[str]:
    """Modules outside ``twin.store`` with SQL in a string constant (docstrings aside)."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package, *path.relative_to(package_dir).with_suffix("").parts]
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name.startswith("twin.store"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        if any(
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and _SQL.search(node.value)
            for node in ast.walk(tree)
        ):
            found.append(name)
    return found


def figures(packages: Path) -> dict[str, Any]:
    """The figures of the graph of the packages in ``packages``."""
    sys.path.insert(0, str(packages))
    try:
        # as import-linter counts them (pyproject.toml): imports under TYPE_CHECKING left out
        graph = grimp.build_graph(*PACKAGES, cache_dir=None, exclude_type_checking_imports=True)
    finally:
        sys.path.remove(str(packages))
    edges = nx.DiGraph()
    edges.add_nodes_from(graph.modules)
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    cycles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    lines = {}
    for name in PACKAGES:
        for path in (packages / name).rglob("*.py"):
            rel = path.relative_to(packages).with_suffix("").parts
            lines[".".join(rel)] = len(path.read_text(encoding="utf-8").splitlines())
    largest = max(lines, key=lambda m: lines[m])
    return {
        "modules": len(graph.modules),
        "lines": sum(lines.values()),
        "imports_between_modules": edges.number_of_edges(),
        "cycles": len(cycles),
        "modules_in_cycles": sum(len(c) for c in cycles),
        "largest_cycle": max(cycles, key=len) if cycles else [],
        "private_name_imports": sum(private_imports(packages / name, name) for name in PACKAGES),
        "modules_with_sql_outside_store": [
            m for name in PACKAGES for m in sql_modules(packages / name, name)
        ],
        "largest_module": f"{largest} ({lines[largest]} lines)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a git revision (default: the working tree)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        found = figures(checkout(args.rev, Path(folder)))
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for key, value in found.items():
            if isinstance(value, list):
                value = f"{len(value)} modules: {', '.join(value)}"
            print(f"{key:31} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
