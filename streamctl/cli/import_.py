from typing import Annotated

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import state
from streamctl.cli.options import (
    OutputOption,
    WaitAofOption,
    WaitReplicasOption,
    WaitTimeoutOption,
    wait_options,
)
from streamctl.errors import BadInput
from streamctl.wording import count_noun


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)


def import_command(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The stream to import into.")
    ],
    file: Annotated[
        str, typer.Argument(help="NDJSON envelopes as written by export; - is stdin.")
    ] = "-",
    keep_ids: Annotated[
        bool,
        typer.Option(
            "--keep-ids",
            help="Keep the original ids; skip those at or below the stream's last id "
            "(a rerun after an interruption neither loses nor duplicates).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Read and check the whole input; write nothing."),
    ] = False,
    wait_replicas: WaitReplicasOption = None,
    wait_timeout: WaitTimeoutOption = None,
    wait_aof: WaitAofOption = False,
    output: OutputOption = None,
) -> None:
    """Read entry envelopes (as written by `export`) into STREAM, in pipelined batches.

    Entries go into STREAM whatever "stream" their envelopes name. Without --keep-ids each entry
    gets a new id. With --keep-ids the original ids are kept, ids
    must increase, and ids at or below the stream's last id are skipped as already imported.
    Group lines (export --with-groups) recreate the groups after the entries: at their position
    (mapped onto the new ids without --keep-ids), with their consumers and pending entries; a
    group that already exists is left as it is.

    A malformed line (bad JSON, no "id" or "fields", ids out of order with --keep-ids) stops
    with exit 2 naming it; every line before it is imported, none after. --wait-replicas N
    (--wait-aof) waits after each batch: fewer confirming is exit 5, naming how many did.

    \b
    Examples:
      streamctl import orders orders.ndjson --keep-ids
      streamctl export orders | streamctl -u redis://staging:6379/0 import orders
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    waits = wait_options(wait_replicas, wait_timeout, wait_aof)
    if file == "-" and _stdin_is_tty():
        raise BadInput(
            "give FILE, or pipe the envelopes in: streamctl export S | streamctl import T"
        )

    from streamctl.cli._bulk import bulk_run
    from streamctl.render.transfer import import_view

    with bulk_run(app_ctx, "importing") as run:
        result = app_ctx.sc.import_(
            stream,
            file,
            keep_ids=keep_ids,
            dry_run=dry_run,
            should_stop=run.should_stop,
            on_progress=lambda imported, skipped: run.progress(imported + skipped),
            **waits,
            on_notice=app_ctx.notice,
        )
    app_ctx.emit(result, fmt, import_view)
    if result.stopped:
        last = f" (last id {result.last_source_id})" if result.last_source_id else ""
        hint = (
            "rerun the same command to continue"
            if keep_ids
            else "rerun with --keep-ids to continue without duplicates only if the ids were kept"
        )
        raise run.stopped(
            f"imported {count_noun(result.imported, 'entry', 'entries')}{last}; {hint}",
            done=result.imported,
        )


def _stdin_is_tty() -> bool:
    import sys

    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
