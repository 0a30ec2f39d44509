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
