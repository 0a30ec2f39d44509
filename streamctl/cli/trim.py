from typing import Annotated, Optional

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import state
from streamctl.cli.options import OutputOption


def register(app: typer.Typer) -> None:
    app.command("trim")(trim)


def trim(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The stream to trim.")
    ],
    maxlen: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--maxlen", help="Keep the newest N entries.", metavar="N"),
    ] = None,
    minid: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--minid",
            help="Remove the entries before ID or TIME (or a duration ago: 7d).",
            metavar="ID|TIME",
        ),
    ] = None,
    older_than: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--older-than",
            help="Remove the entries older than DURATION by the server's clock (TIME).",
            metavar="DURATION",
        ),
    ] = None,
    approx: Annotated[
        bool,
        typer.Option("--approx", help="Trim with ~ (whole radix nodes: cheaper, may keep more)."),
    ] = False,
    acked_only: Annotated[
        bool,
        typer.Option(
            "--acked-only",
            help="Remove only entries every group has read and acknowledged "
            "(XTRIM ... ACKED, Redis >= 8.2).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would go (count, id/time range, groups).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Trim even entries a group has not read or still has pending."
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Remove the oldest entries of STREAM: exactly (unless --approx) and only what no consumer
    group still needs, unless --force.

    Give one of --maxlen, --minid or --older-than. Before trimming, the entries that would go are
    compared with every group: if a group has not yet been delivered some of them, or still has
    some pending, trim refuses (exit 6) naming the groups and counts. --dry-run shows how many
    entries (and which id/time range) would go, and changes nothing.

    \b
    Examples:
      streamctl trim orders --maxlen 100000 --dry-run
      streamctl trim orders --older-than 7d
      streamctl trim orders --minid 2026-11-01 --force
      streamctl trim orders --older-than 7d --acked-only
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.render.transfer import trim_view

    result = app_ctx.sc.trim(
        stream,
        maxlen=maxlen,
        minid=minid,
        older_than=older_than,
        approx=approx,
        acked_only=acked_only,
        dry_run=dry_run,
        force=force,
    )
    app_ctx.emit(result, fmt, trim_view)
