"""The click that Typer runs on: vendored as typer._click since Typer 0.29, the click package
before. Exceptions must be caught from the same module that raises them."""

from __future__ import annotations

try:
    from typer import _click as click  # type: ignore[attr-defined]
except ImportError:  # Typer < 0.29 depends on the click package
    import click  # type: ignore[no-redef]

__all__ = ["click"]
