"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from streamctl.core.filters import EntryFilter

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

# --match and --where: one wording for every command that filters entries (core/filters.py)
MatchOption = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--match",
        "-m",
        help="Only entries whose FIELD matches GLOB (fnmatch, case-sensitive; repeatable: all "
        "must match). A repeated field counts with its last value.",
        metavar="FIELD=GLOB",
        show_default=False,
    ),
]
WhereOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--where",
        help="Only entries for which this JMESPath expression over the envelope (stream, id, "
        "time, fields; a repeated field: its last value) is true, e.g. "
        "\"fields.status == 'shipped' && to_number(fields.amount) > `100`\".",
        metavar="EXPR",
        show_default=False,
    ),
]


def entry_filter(match: list[str] | None, where: str | None) -> EntryFilter | None:
    """The compiled --match/--where (None without either); a bad one is exit 2 naming the flag."""
    from streamctl.core.filters import BadFilter, compile_filter
    from streamctl.errors import BadInput

    try:
        return compile_filter(match or [], where)
    except BadFilter as exc:
        raise BadInput(exc.worded("--")) from None
