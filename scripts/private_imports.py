"""List imports of another module's private names (``from twin.x import _y``).

ruff's PLC2701 only sees imports from other top-level packages; this walks every
module of ``src/twin``, ``api`` and ``tests`` and reports ``from A import _b`` where
``A`` is not the importing module itself, plus imports from a private module of
another subpackage (``twin.query._shared`` outside ``twin.query``). Exit code 1
when any is found.

Usage: ``python scripts/private_imports.py`` (run by ``scripts/test.sh``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    rel = (
        path.relative_to(ROOT / "src")
        if path.is_relative_to(ROOT / "src")
        else path.relative_to(ROOT)
    )
    parts = list(rel.with_suffix("").parts)
    if parts[0] == "api":
        parts[0] = "twin_api"
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def private_imports(path: Path) -> list[str]:
    """``file:line: text`` for every private-name import in ``path``."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.module is None or node.level:
            continue
        source = node.module
        if not source.startswith(("twin", "twin_api", "tests", "bench")):
            continue
        parts = source.split(".")
        private_at = [
            i for i, p in enumerate(parts) if p.startswith("_") and not p.startswith("__")
        ]
        if private_at:
            owner = ".".join(parts[: private_at[0]])
            if not (package == owner or package.startswith(owner + ".")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: private module {source}")
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name} from {source}")
    return found


def main() -> int:
    files = [
        p
        for folder in ("src/twin", "api", "tests", "bench")
        for p in sorted((ROOT / folder).rglob("*.py"))
    ]
    found = [line for path in files for line in private_imports(path)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
