"""The click that Typer runs on: vendored as typer._click since Typer 0.26, the click package
before. Exceptions must be caught from the same module that raises them. And the one change to
how Typer shows arguments."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument

click: Any
try:
    from typer import _click as click
except ImportError:  # pragma: no cover - Typer < 0.26 depends on the click package
    import click  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = ["ConventionalArgument", "click", "conventional_arguments"]


class ConventionalArgument(TyperArgument):
    """An argument shown as usage lines conventionally write it: `STREAM`, `[START]` (optional),
    `STREAMS...`; Typer's own shows `{stream}` / `[start]` in usage, and with `metavar=` set
    still wraps a required one in braces."""

    def make_metavar(self, ctx: Any = None, *, usage: bool = False) -> str:
        if self.metavar is not None:
            return str(super().make_metavar(ctx, usage=usage))
        label = (self.name or "").upper() + ("..." if self.nargs != 1 else "")
        return f"[{label}]" if usage and not self.required else label


def conventional_arguments(command: Any) -> None:
    """Make the Typer arguments of a built command (and its subcommands) ConventionalArguments.

    Typer builds every argument as a TyperArgument itself and has no hook for another class, so
    the class of each built argument is changed here, once, where the command is loaded."""
    for sub in getattr(command, "commands", {}).values():
        conventional_arguments(sub)
    for param in getattr(command, "params", []):
        if type(param) is TyperArgument:
            param.__class__ = ConventionalArgument
