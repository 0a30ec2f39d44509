"""The checks DESIGN.md asks for, run with the suite: ruff (lint and format) and mypy strict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_lint_and_format() -> None:
    pytest.importorskip("ruff")
    lint = run("ruff", "check", "streamctl", "tests", "benchmarks", "scripts")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", "streamctl", "tests", "benchmarks", "scripts")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_strict() -> None:
    pytest.importorskip("mypy")
    res = run("mypy", "streamctl")
    assert res.returncode == 0, res.stdout + res.stderr


# ---- the dependency rules of DESIGN.md: no import circle, no sideways private import ----


def module_imports(package: Path) -> tuple[dict[str, set[str]], list[str]]:
    """For each module of `package` (a directory), the package modules it imports (function-level
    imports included), and every `from module import _private` between its modules."""
    import ast

    def name_of(path: Path) -> str:
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    files = {name_of(p): p for p in package.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    private: list[str] = []
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[tuple[str, str | None]] = []
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for a in node.names:
                    full = f"{base}.{a.name}"
                    targets.append((full, None) if full in files else (base, a.name))
            for target, name in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if not target or target == mod or files[target].name == "__init__.py":
                    continue
                edges[mod].add(target)
                if name and name.startswith("_") and not name.startswith("__"):
                    private.append(f"{mod} imports {name} from {target}")
    return edges, private


def import_circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_and_no_private_import_between_modules() -> None:
    edges, private = module_imports(ROOT / "streamctl")
    assert len(edges) > 20  # the package was found and read
    assert import_circles(edges) == []
    assert private == []


def test_the_dependency_check_finds_a_circle_and_a_private_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("from pkg.core.b import helper\n")
    (pkg / "core" / "b.py").write_text("def helper():\n    from . import c\n")
    (pkg / "core" / "c.py").write_text("from pkg.core import a\nfrom .a import _hidden, __all__\n")
    (pkg / "core" / "d.py").write_text("import json\nfrom pkg.core.a import x\n")
    edges, private = module_imports(pkg)
    assert import_circles(edges) == [["pkg.core.a", "pkg.core.b", "pkg.core.c"]]
    assert private == ["pkg.core.c imports _hidden from pkg.core.a"]
