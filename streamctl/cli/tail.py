import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from streamctl.cli.context import AppContext, state
from streamctl.cli.options import MatchOption, OutputOption, WhereOption
from streamctl.errors import BadInput
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.client import TailRun
    from streamctl.core.models import RawEntry


def register(app: typer.Typer) -> None:
    app.command("tail")(tail)


def tail(
    ctx: typer.Context,
    streams: Annotated[
        list[str], typer.Argument(help="The streams to follow.", show_default=False)
    ],
    start: Annotated[
        str,
        typer.Option(
            "--from",
            help="Start after $ (only new entries), or at 0, an id, a time or a duration ago "
            "(15m). With --group: $ reads new entries (>); anything else first re-reads this "
            "consumer's own pending entries from there.",
            metavar="ID|TIME",
        ),
    ] = "$",
    count: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option("--count", "-n", help="Stop after N (matching) entries.", metavar="N"),
    ] = None,
    timeout: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--timeout",
            help="Stop after DUR without a new (matching) entry (30s, 2m, 0). With --count: "
            "fewer than N entries by then exits 5.",
            metavar="DUR",
        ),
    ] = None,
    no_follow: Annotated[
        bool, typer.Option("--no-follow", help="Print what is there now and exit.")
    ] = False,
    match: MatchOption = None,
    where: WhereOption = None,
    template: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--format",
            "-f",
            help="One line per entry from a template: {stream} {id} {time} {fields} "
            "{fields[NAME]}.",
            metavar="TEMPLATE",
        ),
    ] = None,
    group: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--group",
            "-g",
            help="Read as a member of consumer group G (XREADGROUP >).",
            metavar="G",
        ),
    ] = None,
    consumer: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--consumer",
            "-c",
            help="The consumer name in the group [default: <hostname>-<pid>].",
            metavar="C",
            show_default=False,
        ),
    ] = None,
    no_ack: Annotated[
        bool,
        typer.Option(
            "--no-ack",
            help="Leave entries pending (default: each is acknowledged once it was written).",
        ),
    ] = False,
    create_group: Annotated[
        bool,
        typer.Option(
            "--create-group",
            help="Create the group (and the stream) if missing, at --from ($: new entries only).",
        ),
    ] = False,
    retry_for: Annotated[
        str,
        typer.Option(
            "--retry-for",
            help="Retry a lost connection for this long before giving up (exit 3).",
            metavar="DUR",
        ),
    ] = "60s",
    output: OutputOption = None,
) -> None:
    """Follow STREAMs and print entries as they arrive (XREAD BLOCK), like tail -f.

    Each read's entries are written and flushed together (a live entry appears at once). With
    --group, they are acknowledged after that flush; entries that do not pass --match/--where
    stay pending (claim them later). A lost connection is retried and the read resumes after
    the last entry written.

    \b
    Examples:
      streamctl tail orders
      streamctl tail orders payments --from 15m --format '{stream} {id} {fields[status]}'
      streamctl tail orders --group billing --create-group
      streamctl tail orders --from 0 --match status=shipped --count 1 --timeout 30s
      streamctl tail orders --where 'to_number(fields.amount) > `100`'
    """
    app_ctx = state(ctx)
    _check_options(count, timeout, match or [], where, group, consumer, no_ack, create_group,
                   retry_for)  # fmt: skip
    sink = _sink(app_ctx, output, template, show_stream=len(streams) > 1)

    from streamctl.cli._bulk import rare_gc
    from streamctl.errors import ExitCode, Interrupted, OutputClosed

    try:
        with _sigterm_raises(), rare_gc():
            run = app_ctx.sc.tail_into(
                sink,
                streams,
                start=start,
                group=group,
                consumer=consumer,
                count=count,
                timeout=timeout,
                follow=not no_follow,
                match=match or [],
                where=where,
                ack=not no_ack,
                create_group=create_group,
                retry_for=retry_for,
                on_notice=app_ctx.notice,
            )
    except OutputClosed:
        raise
    except _Terminated:
        with contextlib.suppress(OutputClosed):
            sink.finish(started_only=True)
        raise Interrupted("terminated", exit_code=ExitCode.TERMINATED) from None
    except BaseException:
        # Ctrl-C, a lost server, a deleted group: a json array begun is closed, so what was
        # printed stays valid (and the error, not a closed pipe, is what is reported)
        with contextlib.suppress(OutputClosed):
            sink.finish(started_only=True)
        raise
    sink.finish()
    _report(app_ctx, run, no_follow=no_follow, start=start)


class _Terminated(BaseException):
    """SIGTERM during a tail: unwinds like Ctrl-C, so entries already written are acknowledged."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_options(
    count: int | None,
    timeout: str | None,
    match: list[str],
    where: str | None,
    group: str | None,
    consumer: str | None,
    no_ack: bool,
    create_group: bool,
    retry_for: str,
) -> None:
    """Every option checked, worded with its flag, before anything is read: a mistake is exit 2,
    not a late failure. The Client parses the same values again."""
    from streamctl.cli.options import entry_filter

    if count is not None and count < 1:
        raise BadInput(f"bad --count {count}: give a count of 1 or more")
    if group is None and (consumer is not None or no_ack or create_group):
        raise BadInput("--consumer, --no-ack and --create-group need --group G")
    if consumer == "" or group == "":
        raise BadInput("--group and --consumer need a name")
    entry_filter(match, where)


class _Block:
    """follow's sink for stdout: `write` renders a block into memory, `flush` writes what a read
    produced with one write and one flush (a live entry appears at once; a backlog is not
    flushed line by line)."""

    def __init__(self, app_ctx: AppContext) -> None:
        self.app_ctx = app_ctx
        self.texts: list[str] = []
        self.chunks: list[bytes] = []
        self.lines: list[Any] = []  # rich Text lines (a terminal)
        self.render: Callable[[str, list[RawEntry]], None] = lambda stream, entries: None

    def write(self, stream: str, entries: list["RawEntry"]) -> None:
        self.render(stream, entries)

    def flush(self) -> None:
        if self.chunks:
            data = b"".join(self.chunks)
            self.chunks.clear()
            self.app_ctx.write_bytes(data)
        if self.texts:
            text = "".join(self.texts)
            self.texts.clear()
            self.app_ctx.write(text)
        if self.lines:
            from rich.text import Text

            from streamctl.errors import OutputClosed

            block = Text("\n").join(self.lines)
            self.lines.clear()
            console = self.app_ctx.console
            try:
                console.print(block, soft_wrap=True)
                console.file.flush()
            except BrokenPipeError:
                raise OutputClosed() from None

    def finish(self, started_only: bool = False) -> None:
        pass


def _sink(
    app_ctx: AppContext, output: str | None, template: str | None, *, show_stream: bool
) -> _Block:
    """The sink for the chosen format; its `finish()` ends the output (a json array)."""
    sink = _Block(app_ctx)
    if template is not None:
        from streamctl.render.template import compile_template

        if app_ctx.requested_format(output) not in ("auto", "table"):
            raise BadInput("--format TEMPLATE is a text format: leave out -o json/ndjson/yaml")
        compiled = compile_template(template)

        def render_template(stream: str, entries: list["RawEntry"]) -> None:
            sink.texts.append("".join([compiled.render(stream, raw) for raw in entries]))

        sink.render = render_template
        return sink

    fmt = app_ctx.output_format(output, entries=True)
    if fmt == "table":
        from streamctl.render.template import entry_line

        def render_lines(stream: str, entries: list["RawEntry"]) -> None:
            sink.lines += [entry_line(stream, raw, show_stream=show_stream) for raw in entries]

        sink.render = render_lines
        return sink

    from streamctl.render.entries import EntryWriter

    # ndjson: the column-wise bulk path of range (bytes); json and yaml: one document
    writer = EntryWriter(fmt, sink.texts.append, write_bytes=sink.chunks.append)
    if fmt == "ndjson":
        sink.render = writer.batch
        return sink
    begun = False

    def render_document(stream: str, entries: list["RawEntry"]) -> None:
        nonlocal begun
        if not begun:
            writer.begin()
            begun = True
        writer.batch(stream, entries)

    def finish(started_only: bool = False) -> None:
        if not begun:
            if started_only:
                return
            writer.begin()
        writer.end()
        sink.flush()

    sink.render = render_document
    sink.finish = finish  # type: ignore[method-assign]
    return sink


def _report(app_ctx: AppContext, run: "TailRun", *, no_follow: bool, start: str) -> None:
    opts, result, failure = run.options, run.result, run.failure
    if opts.group is not None and result.left_pending:
        left = count_noun(result.left_pending, "entry", "entries", grouped=False)
        were = "was" if result.left_pending == 1 else "were"
        app_ctx.notice(
            f"{left} delivered to consumer {opts.consumer!r} {were} left "
            f"pending in group {opts.group!r} (--no-ack, not matching, or beyond --count)"
        )
    if result.deleted_pending:
        deleted = count_noun(
            result.deleted_pending, "pending entry was", "pending entries were", grouped=False
        )
        app_ctx.notice(
            f"{deleted} deleted from the stream and skipped "
            "(they stay pending until acknowledged or claimed)"
        )
    if failure is not None:
        raise failure
    if no_follow and result.seen == 0 and opts.group is None and start.strip() == "$":
        app_ctx.notice("nothing after $ (the last entry): --from 0 prints the whole stream")
