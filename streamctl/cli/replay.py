from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from streamctl.cli._complete import complete_group, complete_stream
from streamctl.cli.context import AppContext, state
from streamctl.cli.options import (
    MatchOption,
    OutputOption,
    WaitAofOption,
    WaitReplicasOption,
    WaitTimeoutOption,
    WhereOption,
    entry_filter,
    wait_options,
)
from streamctl.errors import BadInput, PartialFailure
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.client import Client


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)


def replay(
    ctx: typer.Context,
    stream: Annotated[
        str, typer.Argument(autocompletion=complete_stream, help="The stream to replay from.")
    ],
    start: Annotated[
        str,
        typer.Option(
            "--from",
            help="First id or time to replay (inclusive; '(ID' exclusive: continue after ID).",
            metavar="ID|TIME",
        ),
    ],
    end: Annotated[
        str,
        typer.Option(
            "--to",
            help="Last id or time (inclusive; default: the last entry now).",
            metavar="ID|TIME",
        ),
    ] = "+",
    into: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--into",
            autocompletion=complete_stream,
            help="Re-publish the entries (new ids) into this stream.",
            metavar="TARGET",
        ),
    ] = None,
    target_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--target-url",
            help="The server of --into (default: the same server).",
            metavar="URL",
        ),
    ] = None,
    group: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--group",
            autocompletion=complete_group,
            help="Instead: rewind this group to --from, so its consumers get those entries again.",
            metavar="GROUP",
        ),
    ] = None,
    match: MatchOption = None,
    where: WhereOption = None,
    count: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--count", "-n", help="Copy at most N entries.", metavar="N"),
    ] = None,
    rate: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option("--rate", help="At most N entries per second.", metavar="N"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be replayed; change nothing.")
    ] = False,
    wait_replicas: WaitReplicasOption = None,
    wait_timeout: WaitTimeoutOption = None,
    wait_aof: WaitAofOption = False,
    output: OutputOption = None,
) -> None:
    """Replay a range of STREAM: re-publish it into another stream (--into), here or on another
    server (--target-url), or rewind a consumer group to its start (--group).

    --into copies the entries (fields in order, new ids) in pipelined batches with bounded
    memory. The range ends at the stream's last entry when the replay starts. If interrupted
    (Ctrl-C, SIGTERM), the batch in flight is finished and the last id copied is printed: rerun
    with --from "(ID" to continue exactly where it stopped (exit 130/143). --wait-replicas N
    (--wait-aof) waits on the target after each batch: fewer confirming is exit 5.

    --group sets the group's last-delivered id to just before --from (XGROUP SETID with
    ENTRIESREAD, as `group setid --execute`): its consumers get those entries again.

    \b
    Examples:
      streamctl replay orders --from 2026-11-27T10:00:00Z --to 2026-11-27 --into orders-replay
      streamctl replay orders --from 1h --into orders --target-url redis://staging:6379/0
      streamctl replay orders --from "(1795773600000-3" --into orders-replay --rate 500
      streamctl replay orders --from 2026-11-27T10:00:00Z --group billing --dry-run
    """
    app_ctx = state(ctx)
    if (into is None) == (group is None):
        raise BadInput("give --into TARGET (copy the entries) or --group GROUP (rewind it)")
    if group is not None:
        extra = [
            name
            for name, given in (
                ("--to", end != "+"),
                ("--target-url", target_url is not None),
                ("--match", bool(match)),
                ("--where", where is not None),
                ("--count", count is not None),
                ("--rate", rate is not None),
                ("--wait-replicas", wait_replicas is not None),
                ("--wait-timeout", wait_timeout is not None),
                ("--wait-aof", wait_aof),
            )
            if given
        ]
        if extra:
            raise BadInput(f"{', '.join(extra)} apply to --into, not to --group")
    waits = wait_options(wait_replicas, wait_timeout, wait_aof)
    fmt = app_ctx.output_format(output)
    entry_filter(match, where)  # a bad filter is exit 2 naming the flag, before anything runs

    from streamctl.render import transfer as views

    if group is not None:
        rewound = app_ctx.sc.rewind(stream, group, start, dry_run=dry_run)
        app_ctx.emit(rewound, fmt, views.rewind_view)
        return
    assert into is not None
    target = _target(app_ctx, target_url)
    try:
        result, stopped = _run_replay(
            app_ctx,
            stream,
            into,
            target=target,
            start=start,
            end=end,
            match=match or [],
            where=where,
            count=count,
            rate=rate,
            dry_run=dry_run,
            **waits,
        )
    finally:
        if target is not None:
            target.close()
    app_ctx.emit(result, fmt, views.replay_view)
    if stopped is not None:
        raise stopped


def _target(app_ctx: AppContext, target_url: str | None) -> "Client | None":
    """A Client for --target-url (its own settings: errors name the server they come from)."""
    if target_url is None:
        return None
    from streamctl.client import Client
    from streamctl.config import resolve_settings

    settings = resolve_settings(url=target_url, tls_ca=app_ctx.tls_ca, timeout=app_ctx.timeout)
    return Client(settings, wording="flags")


def _run_replay(
    app_ctx: AppContext, stream: str, into: str, **kw: Any
) -> tuple[Any, PartialFailure | None]:
    """The replay with a progress bar and signal handling; a stop comes back as the error to
    raise after the report is written."""
    from streamctl.cli._bulk import bulk_run
    from streamctl.core.models_transfer import RewindResult

    with bulk_run(app_ctx, "replaying", kw["count"]) as run:
        result = app_ctx.sc.replay(
            stream, kw.pop("start"), kw.pop("end"), into=into, **kw,
            should_stop=run.should_stop,
            on_progress=lambda copied, scanned: run.progress(copied),
            on_notice=app_ctx.notice,
        )  # fmt: skip
    assert not isinstance(result, RewindResult)
    copied = count_noun(result.copied, "entry", "entries")
    if result.stopped:
        hint = (
            f"continue with --from '({result.resume_after}'"
            if result.resume_after
            else "nothing was copied: rerun with the same --from"
        )
        last = f" (last id copied {result.last_id})" if result.last_id else ""
        return result, run.stopped(f"copied {copied}{last}; {hint}",
                                   done=result.copied)  # fmt: skip
    if not result.dry_run:
        rate = result.copied / result.seconds if result.seconds > 0 else 0.0
        app_ctx.notice(
            f"replayed {copied} from {stream!r} into {into!r} "
            f"in {result.seconds:.2f}s ({rate:,.0f} entries/s)"
        )
    return result, None
