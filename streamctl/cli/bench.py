from typing import Annotated

import typer

from streamctl.cli.context import state
from streamctl.cli.options import OutputOption
from streamctl.errors import Interrupted
from streamctl.wording import count_noun


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    ctx: typer.Context,
    events: Annotated[
        int, typer.Option("--events", "-n", help="Events to publish in all.", metavar="N")
    ] = 100_000,
    size: Annotated[
        int, typer.Option("--size", "-s", help="Payload bytes per event.", metavar="BYTES")
    ] = 128,
    producers: Annotated[
        int, typer.Option("--producers", help="Publishing connections (threads).", metavar="N")
    ] = 1,
    consumers: Annotated[
        int,
        typer.Option(
            "--consumers",
            help="Consumers of one group reading meanwhile (0: publish only).",
            metavar="N",
        ),
    ] = 1,
    batch: Annotated[
        int, typer.Option("--batch", help="XADD commands per pipelined batch.", metavar="N")
    ] = 100,
    output: OutputOption = None,
) -> None:
    """Measure publish and consume throughput and the latency from publish to receipt
    (p50/p90/p99/max) on a scratch stream, which is deleted at the end.

    Each event carries its publish time; consumers read as one consumer group and acknowledge
    what they read. Producers and consumers are threads of this process, each on its own
    connection: the figures include the client's cost, as an application's would.

    \b
    Examples:
      streamctl bench --events 200000 --size 256 --producers 2 --consumers 2
      streamctl bench --consumers 0 -o json
    """
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)

    from streamctl.cli._signals import graceful_stop
    from streamctl.core.bench import validate
    from streamctl.render import health as render_health

    validate(events, size, producers, consumers, batch)
    settings = app_ctx.settings
    app_ctx.sc.ping()  # a missing server is exit 3 before the notice
    app_ctx.notice(
        f"bench: {count_noun(events, 'event', 'events')} of {count_noun(size, 'byte', 'bytes')}, "
        f"{count_noun(producers, 'producer', 'producers', grouped=False)}, "
        f"{count_noun(consumers, 'consumer', 'consumers', grouped=False)} on {settings.display_url}"
    )
    with graceful_stop() as stop:
        try:
            result = app_ctx.sc.bench(
                events=events,
                size=size,
                producers=producers,
                consumers=consumers,
                batch=batch,
                should_stop=stop,
            )
        except Interrupted as exc:
            exc.exit_code = stop.exit_code  # 130 for Ctrl-C, 143 for SIGTERM
            raise
    app_ctx.emit(result, fmt, render_health.bench_table)
