import time
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from streamctl.cli.context import AppContext, state
from streamctl.cli.options import OutputOption
from streamctl.errors import BadInput

if TYPE_CHECKING:
    from streamctl.client import Client
    from streamctl.core.children import ChildProcesses


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    ctx: typer.Context,
    pause: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--pause",
            help="Seconds to wait between steps (default: 1 on a terminal, 0 otherwise).",
            metavar="SECONDS",
        ),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Run the broker story end to end, narrated: an orders service publishes, two billing
    consumers share the work, one dies holding messages, pending shows them stuck, they are
    claimed and acknowledged, and the lag is back to zero.

    Uses the server at --url (or the default one) if it answers; otherwise it starts an embedded
    server and stops it at the end. It works in its own stream (streamctl-demo:orders) and
    removes it, even when interrupted.

    \b
    Examples:
      streamctl demo
      streamctl -u redis://localhost:6380/0 demo --pause 0 -o json
    """
    from streamctl.core.children import ChildProcesses

    # a stop signal unwinds through the cleanup below; the owner stops the embedded server
    with ChildProcesses() as children:
        _demo(ctx, pause, output, children)


def _demo(
    ctx: typer.Context, pause: float | None, output: str | None, children: "ChildProcesses"
) -> None:
    app_ctx = state(ctx)
    fmt = app_ctx.output_format(output)
    if pause is not None and pause < 0:
        raise BadInput(f"bad --pause {pause:g}: give a number of seconds, 0 or more")
    delay = pause if pause is not None else (1.0 if app_ctx.stdout_is_tty else 0.0)

    from streamctl import demo as story
    from streamctl.core.embedded import EmbeddedServer

    settings = app_ctx.settings
    client = story.probe(settings, wording="flags")
    embedded: EmbeddedServer | None = None
    if client is None:
        app_ctx.notice(
            f"no server answers at {settings.display_url}: starting an embedded one for the demo"
        )
        embedded = EmbeddedServer().start(children)
        from streamctl.client import Client
        from streamctl.config import Settings

        client = Client(Settings(url=embedded.url, timeout=settings.timeout), wording="flags")
    where = embedded.url if embedded else settings.display_url
    narrator = Narrator(app_ctx, fmt, delay)
    try:
        narrator.run(client, where, embedded is not None)
    finally:
        try:
            story.cleanup(client)
        finally:
            client.close()
            if embedded is not None:
                embedded.stop()
    # after an embedded run, the commands point at `streamctl server`'s default URL
    narrator.finish(None if embedded else _next_url(app_ctx), embedded is not None)


def _next_url(app_ctx: AppContext) -> str | None:
    from streamctl.config import DEFAULT_URL

    url = app_ctx.settings.url
    if app_ctx.settings.profile:
        return None  # the profile is the default one or was named with -P: commands work as typed
    return None if url == DEFAULT_URL else app_ctx.settings.display_url


class Narrator:
    """Tells the story on a terminal (text and tables as it goes), or collects the steps'
    results for json/yaml/ndjson, written at the end."""

    def __init__(self, app_ctx: AppContext, fmt: str, delay: float) -> None:
        self.app_ctx = app_ctx
        self.fmt = fmt
        self.delay = delay
        self.steps: list[dict[str, Any]] = []
        self.where = ""
        self.embedded = False
        self.number = 0

    @property
    def narrating(self) -> bool:
        return self.fmt == "table"

    def say(self, text: str, style: str = "") -> None:
        if self.narrating:
            from rich.text import Text

            self.app_ctx.print(Text(text, style=style))

    def step(self, name: str, title: str, command: str, result: Any, table: Any) -> None:
        from streamctl.render.serialize import to_data

        self.number += 1
        if self.number > 1 and self.delay:
            time.sleep(self.delay)
        self.steps.append(
            {"step": name, "title": title, "command": command, "result": to_data(result)}
        )
        if self.narrating:
            self.say("")
            self.say(f"{self.number}. {title}", "bold")
            self.app_ctx.write(f"   $ {command}\n")
            self.app_ctx.print(table(result))

    def run(self, client: "Client", where: str, embedded: bool) -> None:
        from streamctl import demo as story
        from streamctl.render import health as views
        from streamctl.render.tables import entries_table

        self.where, self.embedded = where, embedded
        s, g = story.DEMO_STREAM, story.DEMO_GROUP
        kind = "an embedded server" if embedded else "the server"
        self.say(f"streamctl demo on {kind} at {where}", "bold")
        self.say(
            f"The orders service publishes events into the stream {s}; "
            f"the billing service reads them through the consumer group {g!r}."
        )
        if story.reset(client):
            self.app_ctx.notice(f"removed {s} left over by an earlier demo")

        self.step(
            "create-group",
            f"The billing service creates its consumer group {g!r} (only new events: $)",
            f"streamctl group create {s} {g}",
            story.create_group(client),
            views.demo_groups_table,
        )
        self.step(
            "publish",
            f"The orders service publishes {len(story.ORDERS)} events",
            f"streamctl publish {s} order_id=1001 customer=alice amount=19.90 status=created",
            story.publish_orders(client),
            lambda r: entries_table(list(r.entries)),
        )
        self.step(
            "consume",
            f"Two consumers of {g!r} share them: {story.WORKER} acknowledges each order, "
            f"{story.CRASHER} crashes before acknowledging",
            f"streamctl tail {s} --group {g} --consumer {story.WORKER}",
            story.share_work(client),
            views.consumed_table,
        )
        self.step(
            "pending",
            f"pending shows the orders {story.CRASHER} took down with it: delivered, never acked",
            f"streamctl pending {s} {g}",
            story.pending(client),
            views.pending_table,
        )
        self.step(
            "claim",
            f"{story.WORKER} claims what has been idle {story.CLAIM_MIN_IDLE_MS}ms "
            "(in production: minutes) and acknowledges it",
            f"streamctl pending {s} {g} --claim --to {story.WORKER} "
            f"--min-idle {story.CLAIM_MIN_IDLE_MS}ms",
            story.claim_and_ack(client),
            views.claim_table,
        )
        self.step(
            "group-ls",
            "Every order is processed: lag and pending are back to zero",
            f"streamctl group ls {s}",
            story.groups(client),
            views.demo_groups_table,
        )

    def finish(self, url: str | None, need_server: bool) -> None:
        from streamctl import demo as story
        from streamctl.render import serialize

        commands = story.next_commands(url, need_server=need_server)
        if not self.narrating:
            data = {
                "server": self.where,
                "embedded": self.embedded,
                "stream": story.DEMO_STREAM,
                "steps": self.steps,
                "cleaned_up": True,
                "next": commands,
            }
            self.app_ctx.write(serialize.dump(data, self.fmt))
            return
        self.say("")
        self.say(
            f"Removed {story.DEMO_STREAM}"
            + ("; stopped the embedded server." if self.embedded else "."),
            "dim",
        )
        self.say("")
        self.say("Try it yourself:", "bold")
        self.app_ctx.write("".join(f"  {line}\n" for line in commands))
