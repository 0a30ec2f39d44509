"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

# -o/--output is also accepted after the command, where people habitually type it.
OutputOption = Annotated[
    Optional[str],  # noqa: UP045 - typer needs the Optional form on Python 3.10
    typer.Option(
        "--output",
        "-o",
        help="auto, table, json, ndjson or yaml (overrides the global -o).",
        show_default=False,
        metavar="FMT",
    ),
]
