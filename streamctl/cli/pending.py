"""`pending`: what a group has delivered but not had acknowledged; claim and dead-letter it."""

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from streamctl.cli._complete import complete_group, complete_stream
from streamctl.cli.context import AppContext, state
from streamctl.cli.options import OutputOption
from streamctl.errors import BadInput
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.core.pending import PendingFilter

DEFAULT_COUNT = 100


def register(app: typer.Typer) -> None:
    app.command("pending")(pending)


def pending(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream.", autocompletion=complete_stream)],
    group: Annotated[
        str, typer.Argument(help="The consumer group.", autocompletion=complete_group)
    ],
    consumer: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--consumer", "-c", help="Only entries owned by consumer C.", metavar="C"),
    ] = None,
    min_idle: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--min-idle", help="Only entries idle at least DUR (90s, 15m, 0).", metavar="DUR"
        ),
    ] = None,
    min_deliveries: Annotated[
        int,
        typer.Option(
            "--min-deliveries", help="Only entries delivered N times or more.", metavar="N"
        ),
    ] = 0,
    start: Annotated[
        str, typer.Option("--start", help="First id or time ('(ID' exclusive).", metavar="ID")
    ] = "-",
    end: Annotated[str, typer.Option("--end", help="Last id or time.", metavar="ID")] = "+",
    count: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--count",
            "-n",
            help="At most N entries (listing: default 100; --claim/--dead-letter: default all); "
            "0 = all, paged.",
            metavar="N",
        ),
    ] = None,
    claim: Annotated[
        bool, typer.Option("--claim", help="Claim the selected entries for --to CONSUMER.")
    ] = False,
    to: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--to", help="The consumer that gets the claimed entries.", metavar="CONSUMER"
        ),
    ] = None,
    ids: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--id",
            help="Claim these ids (repeatable, or comma-separated) with XCLAIM.",
            metavar="ID",
        ),
    ] = None,
    dead_letter: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--dead-letter",
            autocompletion=complete_stream,
            help="Move entries delivered --max-deliveries times or more into stream DLQ and ack "
            "them (one atomic step per entry).",
            metavar="DLQ",
        ),
    ] = None,
    max_deliveries: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--max-deliveries", help="The delivery count that dead-letters.", metavar="N"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what --claim or --dead-letter would do.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Show GROUP's pending entries (delivered, not acknowledged): the summary (count, oldest and
    newest with times, count per consumer) and the entries (id, time, consumer, idle,
    deliveries, age). --claim --to C reassigns what the filters select (XAUTOCLAIM for an idle
    filter, XCLAIM for --id or consumer/deliveries/end filters) and reports the ids claimed and
    those deleted while pending. --dead-letter DLQ --max-deliveries N moves poison entries out.

    \b
    Examples:
      streamctl pending orders billing
      streamctl pending orders billing --min-idle 5m --claim --to worker-2
      streamctl pending orders billing --dead-letter orders.dlq --max-deliveries 5 --dry-run
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    _check_options(claim, to, ids, dead_letter, max_deliveries, dry_run, count, min_deliveries)
    if ids and (consumer is not None or min_deliveries or (start, end) != ("-", "+")):
        raise BadInput(
            "--id names the entries: it cannot be combined with --consumer, --min-deliveries, "
            "--start or --end"
        )

    selection: dict[str, Any] = {
        "consumer": consumer,
        "min_idle": min_idle,
        "start": start,
        "end": end,
    }
    if claim:
        assert to is not None
        _claim(
            app_ctx, fmt, stream, group, to, selection, min_deliveries, ids or [], count, dry_run
        )
    elif dead_letter is not None:
        assert max_deliveries is not None
        _dead_letter(
            app_ctx,
            fmt,
            stream,
            group,
            dead_letter,
            max_deliveries,
            selection,
            min_deliveries,
            count,
            dry_run,
        )
    else:
        flt = app_ctx.sc.pending_filter(**selection, min_deliveries=min_deliveries)
        _list(app_ctx, fmt, stream, group, flt, DEFAULT_COUNT if count is None else count)


def _check_options(
    claim: bool,
    to: str | None,
    ids: list[str] | None,
    dead_letter: str | None,
    max_deliveries: int | None,
    dry_run: bool,
    count: int | None,
    min_deliveries: int,
) -> None:
    if count is not None and count < 0:
        raise BadInput(f"bad --count {count}: give a count of 0 or more (0 = all)")
    if min_deliveries < 0:
        raise BadInput(f"bad --min-deliveries {min_deliveries}: give a count of 0 or more")
    if claim and dead_letter is not None:
        raise BadInput("give --claim or --dead-letter, not both")
    if claim and not to:
        raise BadInput("--claim needs --to CONSUMER: the consumer that gets the entries")
    if to is not None and not claim:
        raise BadInput("--to CONSUMER applies to --claim")
    if ids and not claim:
        raise BadInput("--id applies to --claim")
    if dead_letter is not None and max_deliveries is None:
        raise BadInput("--dead-letter needs --max-deliveries N")
    if max_deliveries is not None and dead_letter is None:
        raise BadInput("--max-deliveries applies to --dead-letter DLQ")
    if max_deliveries is not None and max_deliveries < 1:
        raise BadInput(f"bad --max-deliveries {max_deliveries}: give a count of 1 or more")
    if dry_run and not claim and dead_letter is None:
        raise BadInput("--dry-run applies to --claim or --dead-letter")


def _list(
    app_ctx: AppContext, fmt: str, stream: str, group: str, flt: "PendingFilter", count: int
) -> None:
    from streamctl.render.groups import PendingWriter

    summary = app_ctx.sc.pending(stream, group)
    writer = PendingWriter(fmt, app_ctx.write, app_ctx.print, summary)
    writer.begin()
    more = False
    shown = 0
    # one entry past --count tells whether more matched
    pages = app_ctx.sc.pending_pages(stream, group, flt, limit=count + 1 if count else None)
    for batch in pages:
        if count and shown + len(batch) > count:
            batch = batch[: count - shown]
            more = True
        writer.batch(batch)
        shown += len(batch)
    writer.end(more)
    if more:
        first = count_noun(count, "matching entry", "matching entries", grouped=False)
        app_ctx.notice(f"showing the first {first} (--count 0 shows all)")


def _claim(
    app_ctx: AppContext,
    fmt: str,
    stream: str,
    group: str,
    to: str,
    selection: dict[str, Any],
    min_deliveries: int,
    ids: list[str],
    count: int | None,
    dry_run: bool,
) -> None:
    from streamctl.cli._bulk import bulk_run
    from streamctl.render.groups import claim_view

    wanted = [x for v in ids for x in v.replace(",", " ").split()]
    if wanted:
        selection = {"min_idle": selection["min_idle"]}
    with bulk_run(app_ctx, "claiming", show_bar=False) as run:
        result = app_ctx.sc.claim(
            stream,
            group,
            to,
            ids=wanted,
            **selection,
            min_deliveries=min_deliveries,
            count=count,
            dry_run=dry_run,
            should_stop=run.should_stop,
        )
    app_ctx.emit(result, fmt, claim_view)
    if run.should_stop():
        claimed = len(result.claimed)
        raise run.stopped(
            f"{count_noun(claimed, 'entry was', 'entries were', grouped=False)} claimed before it",
            done=claimed,
        )


def _dead_letter(
    app_ctx: AppContext,
    fmt: str,
    stream: str,
    group: str,
    dlq: str,
    max_deliveries: int,
    selection: dict[str, Any],
    min_deliveries: int,
    count: int | None,
    dry_run: bool,
) -> None:
    from streamctl.cli._bulk import bulk_run
    from streamctl.render.groups import dead_letter_view

    with bulk_run(app_ctx, "dead-lettering", show_bar=False) as run:
        result = app_ctx.sc.dead_letter(
            stream,
            group,
            dlq,
            max_deliveries=max_deliveries,
            **selection,
            min_deliveries=min_deliveries,
            count=count,
            dry_run=dry_run,
            should_stop=run.should_stop,
        )
    app_ctx.emit(result, fmt, dead_letter_view)
    if run.should_stop():
        moved = len(result.moved)
        raise run.stopped(
            f"{count_noun(moved, 'entry was', 'entries were', grouped=False)} moved before it",
            done=moved,
        )
