"""The click that Typer runs on: vendored as typer._click since Typer 0.26, the click package
before. Exceptions must be caught from the same module that raises them."""

from __future__ import annotations

from typing import Any

click: Any
try:
    from typer import _click as click
except ImportError:  # pragma: no cover - Typer < 0.26 depends on the click package
    import click  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = ["click"]
