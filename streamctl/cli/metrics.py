from typing import TYPE_CHECKING, Annotated, Optional

import typer

from streamctl.cli.context import AppContext, state
from streamctl.errors import BadInput, ConnectionFailed, StreamctlError

if TYPE_CHECKING:
    from collections.abc import Callable

    from streamctl.core.models_monitoring import MetricsSnapshot

DEFAULT_MAX_STREAMS = 10_000  # core.metrics.DEFAULT_MAX_STREAMS (not imported: --help stays light)


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics)


def parse_listen(text: str) -> tuple[str, int]:
    """'[HOST]:PORT' -> (host, port); a bare ':PORT' binds every interface."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise BadInput(
            f"bad --listen {text!r}: give [HOST]:PORT, e.g. :9187 (every interface) or "
            "127.0.0.1:9187"
        )
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "0.0.0.0", int(port)


def metrics(
    ctx: typer.Context,
    pattern: Annotated[
        str, typer.Argument(help="Glob of the stream names to report.", show_default=True)
    ] = "*",
    listen: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--listen",
            help="Serve GET /metrics on [HOST]:PORT until stopped (a bare :PORT binds every "
            "interface), reading the server afresh on each scrape.",
            metavar="[HOST]:PORT",
        ),
    ] = None,
    group: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--group",
            "-g",
            help="Only the streams having this group, and only it.",
            metavar="GROUP",
        ),
    ] = None,
    consumers: Annotated[
        bool,
        typer.Option(
            "--consumers", help="Add per-consumer pending and idle (one series per consumer)."
        ),
    ] = False,
    max_streams: Annotated[
        int,
        typer.Option(
            "--max-streams",
            help="Streams one scrape covers at most (the first by name); beyond it "
            "streamctl_streams_truncated is 1.",
            metavar="N",
        ),
    ] = DEFAULT_MAX_STREAMS,
) -> None:
    """Consumer lag and stream health for Prometheus (text exposition format 0.0.4).

    Without --listen: one exposition on stdout, then exit (node_exporter's textfile collector,
    cron, a CI artifact). When the server does not answer, the exposition is `streamctl_up 0`
    and the exit code 3. With --listen: serves GET /metrics until SIGTERM (exit 0) or Ctrl-C
    (exit 130).

    \b
    Examples:
      streamctl metrics 'orders*' > /var/lib/node_exporter/textfile/streamctl.prom
      streamctl -u redis://cache:6379/0 metrics --listen :9187 --consumers
    """
    if max_streams < 1:
        raise BadInput(f"bad --max-streams {max_streams}: give a number of streams of 1 or more")
    address = parse_listen(listen) if listen is not None else None
    app_ctx = state(ctx)

    def read() -> "MetricsSnapshot":
        return app_ctx.sc.metrics(
            pattern,
            group=group,
            consumers=consumers,
            max_streams=max_streams,
        )

    if address is None:
        from streamctl.cli._bulk import no_gc
        from streamctl.render.metrics import exposition

        with no_gc():  # thousands of streams: many objects, no cycles
            snap = read()
            app_ctx.write_bytes(exposition(snap))
        if not snap.up:
            raise ConnectionFailed(snap.error or "the server did not answer")
        return
    _serve(app_ctx, address, read)


def _serve(
    app_ctx: AppContext, address: tuple[str, int], read: "Callable[[], MetricsSnapshot]"
) -> None:
    import signal
    import threading

    from prometheus_client.exposition import start_http_server

    from streamctl.core.models_monitoring import MetricsSnapshot
    from streamctl.render.metrics import registry_for

    lock = threading.Lock()  # one scrape at a time on the one client
    last_error: list[str | None] = [None]

    def scrape() -> "MetricsSnapshot":
        with lock:
            try:
                snap = read()
            except StreamctlError as exc:  # refused (e.g. NOPERM): still a valid exposition
                snap = MetricsSnapshot(up=False, error=exc.message)
            if snap.error != last_error[0]:
                if snap.error is not None:
                    app_ctx.notice(f"scrape: streamctl_up 0: {snap.error}")
                elif last_error[0] is not None:
                    app_ctx.notice("scrape: the server answers again")
                last_error[0] = snap.error
            return snap

    host, port = address
    try:
        server, thread = start_http_server(port, addr=host, registry=registry_for(scrape))
    except OSError as exc:
        raise StreamctlError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    app_ctx.notice(f"serving http://{shown}:{bound}/metrics (SIGTERM or Ctrl-C stops)")

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        server.shutdown()
        server.server_close()
        thread.join(5)
    app_ctx.notice("stopped")
    if received and received[0] == signal.SIGINT:
        from streamctl.errors import ExitCode

        raise typer.Exit(ExitCode.INTERRUPTED)
