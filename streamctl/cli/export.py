from typing import IO, Annotated, Optional

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import state
from streamctl.cli.options import MatchOption, WhereOption, entry_filter
from streamctl.errors import BadInput
from streamctl.wording import count_noun


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The stream to export.")
    ],
    start: Annotated[
        str,
        typer.Option(
            "--from", help="First id or time (inclusive; '(ID' exclusive).", metavar="ID|TIME"
        ),
    ] = "-",
    end: Annotated[
        str,
        typer.Option(
            "--to",
            help="Last id or time (inclusive; default: the last entry now).",
            metavar="ID|TIME",
        ),
    ] = "+",
    count: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--count", "-n", help="At most N entries.", metavar="N"),
    ] = None,
    match: MatchOption = None,
    where: WhereOption = None,
    with_groups: Annotated[
        bool,
        typer.Option(
            "--with-groups",
            help="Add the groups' state (one line per group, before the entries).",
        ),
    ] = False,
    file: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--file", "-f", help="Write to PATH instead of stdout.", metavar="PATH"),
    ] = None,
    output: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--output", "-o", help="ndjson (export writes NDJSON envelopes only).", metavar="FMT"
        ),
    ] = None,
) -> None:
    """Write the entries of STREAM as NDJSON envelopes (binary-safe), for `import`.

    One line per entry: {"stream", "id", "time", "fields"}; a field name or value that is not
    UTF-8 is written as {"base64": "..."}; repeated field names make "fields" a list of
    [name, value] pairs. Field order is kept. The range ends at the stream's last entry when the
    export starts. Export always writes NDJSON (use `range` for tables, json or yaml).

    --with-groups first writes one line per consumer group, read before the entries:
    {"stream": S, "group": {"name", "last_delivered_id", "entries_read", "consumers": [names],
    "pending": [{"id", "consumer", "deliveries", "idle_ms"}]}}. `import` recreates each group at
    its position, with its consumers and pending entries.

    If interrupted, the entries written so far are complete lines and the last id is printed:
    continue with --from "(ID" (append with >>).

    \b
    Examples:
      streamctl export orders --file orders.ndjson
      streamctl export orders --from 2026-11-27 --to 2026-11-28 --with-groups > orders.ndjson
      streamctl export orders | streamctl -u redis://staging:6379/0 import orders --keep-ids
    """
    app_ctx = state(ctx)
    requested = app_ctx.requested_format(output)
    if requested not in ("auto", "ndjson"):
        raise BadInput(
            f"export writes NDJSON envelopes (the format import reads), not {requested}; "
            "use `streamctl range` for tables, json or yaml"
        )
    if count is not None and count < 1:
        raise BadInput(f"bad --count {count}: give a count of 1 or more")

    entry_filter(match, where)  # a bad filter is exit 2 naming the flag, before any output

    from streamctl.cli._bulk import bulk_run

    out: IO[str] | None = None
    if file is not None:
        try:
            out = open(file, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        except OSError as exc:
            raise BadInput(f"cannot write {file}: {exc.strerror}") from None

    try:
        with bulk_run(app_ctx, "exporting", count, show_bar=file is not None) as run:
            result = app_ctx.sc.export(
                stream,
                out if out is not None else app_ctx.write,
                start=start,
                end=end,
                count=count,
                match=match or [],
                where=where,
                with_groups=with_groups,
                should_stop=run.should_stop,
            )
    finally:
        if out is not None:
            out.close()
    written_to = f" to {file}" if file else ""
    span = f" ({result.first_id} .. {result.last_id})" if result.count else ""
    groups = (
        f" and {count_noun(result.groups, 'group', 'groups', grouped=False)}" if with_groups else ""
    )
    exported = count_noun(result.count, "entry", "entries")
    if result.stopped:
        hint = f"continue with --from '({result.last_id}'" if result.last_id else "rerun it"
        raise run.stopped(f"exported {exported}{span}{written_to}; {hint}", done=result.count)
    app_ctx.notice(
        f"exported {exported}{span}{groups} from {stream!r}{written_to} in {result.seconds:.2f}s"
    )
