import time
from typing import Annotated, Any, Optional

import typer

from streamctl.cli._complete import complete_stream
from streamctl.cli.context import AppContext, state
from streamctl.cli.options import (
    OutputOption,
    WaitAofOption,
    WaitReplicasOption,
    WaitTimeoutOption,
    wait_options,
)
from streamctl.errors import BadInput, OutputClosed
from streamctl.wording import count_noun


def register(app: typer.Typer) -> None:
    app.command("publish")(publish)


def publish(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The stream to append to.")
    ],
    pairs: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(help="FIELD=VALUE pairs (split at the first '=').", show_default=False),
    ] = None,
    json_event: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--json", help='The event as a JSON object: \'{"k": "v"}\'.', metavar="OBJECT"
        ),
    ] = None,
    file: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--file",
            "-f",
            help="Bulk: NDJSON (one object per line) or a YAML list (.yaml/.yml); - is stdin.",
            metavar="PATH",
        ),
    ] = None,
    entry_id: Annotated[str, typer.Option("--id", help="The entry id (one event only).")] = "*",
    maxlen: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--maxlen", help="Cap the stream at N entries (exact unless --approx).", metavar="N"
        ),
    ] = None,
    minid: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--minid",
            help="Drop entries older than ID or TIME (exact unless --approx).",
            metavar="ID|TIME",
        ),
    ] = None,
    approx: Annotated[
        bool, typer.Option("--approx", help="Trim with ~ (whole radix nodes; cheaper).")
    ] = False,
    no_mkstream: Annotated[
        bool, typer.Option("--no-mkstream", help="Fail (exit 4) instead of creating the stream.")
    ] = False,
    skip: Annotated[
        int,
        typer.Option(
            "--skip", help="Skip the first N events of --file (resume a run).", metavar="N"
        ),
    ] = 0,
    wait_replicas: WaitReplicasOption = None,
    wait_timeout: WaitTimeoutOption = None,
    wait_aof: WaitAofOption = False,
    output: OutputOption = None,
) -> None:
    """Append an event (or a file of events) to STREAM and print each new id.

    \b
    Examples:
      streamctl publish orders order_id=42 status=created
      streamctl publish orders --json '{"order_id": 42, "status": "created"}'
      streamctl publish orders --file events.ndjson --maxlen 100000 --approx
      streamctl publish orders --file events.ndjson --wait-replicas 1 --wait-timeout 2s
    """
    app_ctx = state(ctx)
    pairs = pairs or []
    sources = sum(bool(x) for x in (pairs, json_event is not None, file is not None))
    if sources != 1:
        raise BadInput(
            "give the event as FIELD=VALUE pairs, --json OBJECT or --file PATH (one of them)"
        )
    if file is None and skip:
        raise BadInput("--skip N applies to --file only")
    if skip < 0:
        raise BadInput(f"bad --skip {skip}: give a count of 0 or more")
    if file is not None and entry_id != "*":
        raise BadInput("--id applies to a single event, not to --file (each event gets a new id)")
    # ids one per line unless a data format is asked for: `id=$(streamctl publish ...)` works
    fmt = app_ctx.requested_format(output)
    waits = wait_options(wait_replicas, wait_timeout, wait_aof)

    from streamctl import inputs

    cap: dict[str, Any] = {
        "maxlen": maxlen,
        "minid": _exact_minid(app_ctx, minid),
        "approx": approx,
    }
    if file is None:
        fields = (
            inputs.parse_json_event(json_event)
            if json_event is not None
            else inputs.parse_pairs(pairs)
        )
        if not fields:
            raise BadInput("an event needs at least one field: FIELD=VALUE, --json or --file")
        new_id = app_ctx.sc.publish(
            stream, fields, id=entry_id, mkstream=not no_mkstream, **cap, **waits
        )
        _write_ids(app_ctx, stream, [new_id], fmt)
        return
    _publish_file(
        app_ctx, stream, file, skip=skip, cap=cap, waits=waits, mkstream=not no_mkstream, fmt=fmt
    )


def _exact_minid(app_ctx: AppContext, minid: str | None) -> str | None:
    """--minid as an exact id, its errors worded with the flag."""
    if minid is None:
        return None
    from streamctl import ids

    return ids.resolve_minid(minid, app_ctx.sc.now_ms)


def _write_ids(app_ctx: AppContext, stream: str, new_ids: list[str], fmt: str) -> None:
    if fmt in ("auto", "table"):
        app_ctx.write("".join(i + "\n" for i in new_ids))
        return
    from streamctl.render import serialize

    if fmt == "ndjson":
        app_ctx.write(serialize.dump_ndjson({"stream": stream, "id": i} for i in new_ids))
    else:
        app_ctx.write(serialize.dump([{"stream": stream, "id": i} for i in new_ids], fmt))


def _publish_file(
    app_ctx: AppContext,
    stream: str,
    path: str,
    *,
    skip: int,
    cap: dict[str, Any],
    waits: dict[str, Any],
    mkstream: bool,
    fmt: str,
) -> None:
    from streamctl import inputs
    from streamctl.cli._bulk import bulk_run, no_gc

    streaming = fmt in ("auto", "table", "ndjson")
    collected: list[str] = []
    closed = False  # stdout closed (`| head`): keep publishing, stop printing ids
    started = time.perf_counter()
    with bulk_run(app_ctx, "publishing") as run, no_gc():

        def on_ids(new_ids: list[bytes]) -> None:
            nonlocal closed
            if streaming:
                if not closed:
                    try:
                        if fmt == "ndjson":
                            _write_ids(app_ctx, stream, [i.decode() for i in new_ids], fmt)
                        else:  # the ids one per line, as the server sent them
                            app_ctx.write_bytes(b"\n".join(new_ids) + b"\n")
                    except OutputClosed:
                        closed = True
            else:
                collected.extend(i.decode() for i in new_ids)
            run.advance(len(new_ids))

        published = app_ctx.sc.publish_many(
            stream,
            inputs.read_events(path, skip=skip),
            **cap,
            **waits,
            mkstream=mkstream,
            on_ids=on_ids,
            should_stop=run.should_stop,
            skipped=skip,
            on_notice=app_ctx.notice,
        )
        if run.should_stop():
            raise run.stopped(
                f"{count_noun(published, 'event was', 'events were', grouped=False)} published "
                f"(rerun with --skip {skip + published} to publish the rest)",
                done=published,
            )
    if not streaming:
        _write_ids(app_ctx, stream, collected, fmt)
    seconds = time.perf_counter() - started
    rate = published / seconds if seconds > 0 else 0.0
    app_ctx.notice(
        f"published {count_noun(published, 'event', 'events')} to {stream!r} in {seconds:.2f}s "
        f"({rate:,.0f} events/s)" + (f", after skipping {skip:,}" if skip else "")
    )
    if closed:
        raise OutputClosed()  # every event was published; end quietly as `| head` expects
