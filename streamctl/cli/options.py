"""Options shared by several commands, declared once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

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


# --wait-replicas/--wait-timeout/--wait-aof: publish, import and replay --into (core/durability.py)
WaitReplicasOption = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--wait-replicas",
        help="Succeed only when N replicas hold the events (WAIT after each event or "
        "batch); exit 5 naming how many did.",
        metavar="N",
    ),
]
WaitTimeoutOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--wait-timeout",
        help="How long --wait-replicas/--wait-aof waits (default 5s).",
        metavar="DUR",
    ),
]
WaitAofOption = Annotated[
    bool,
    typer.Option(
        "--wait-aof",
        help="Succeed only when the primary's AOF holds the events on disk (WAITAOF, "
        "Redis >= 7.2).",
    ),
]


def wait_options(replicas: int | None, timeout: str | None, aof: bool) -> dict[str, Any]:
    """--wait-replicas/--wait-timeout/--wait-aof as Client arguments, errors worded with the
    flags."""
    from streamctl.errors import BadInput

    if replicas is not None and replicas < 0:
        raise BadInput(f"bad --wait-replicas {replicas}: give a count of replicas, 0 or more")
    seconds: float | None = None
    if timeout is not None:
        from streamctl.ids import parse_duration

        ms = parse_duration(timeout, what="--wait-timeout")
        if ms <= 0:
            raise BadInput(f"bad --wait-timeout {timeout!r}: give a duration above 0 (e.g. 2s)")
        if not replicas and not aof:
            raise BadInput("--wait-timeout applies with --wait-replicas N or --wait-aof")
        seconds = ms / 1000
    return {"wait_replicas": replicas, "wait_timeout": seconds, "wait_aof": aof}
