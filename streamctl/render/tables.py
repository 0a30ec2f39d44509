"""One Rich renderable per model. Every id is shown with its time; ages as '3m12s ago'."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from streamctl.core.models import Entry, GroupInfo, StreamInfo, StreamSummary
from streamctl.ids import format_age, format_duration, format_time, id_ms
from streamctl.render.serialize import endpoint_text, time_of
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text


def show_bytes(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("utf-8", "backslashreplace")


def fields_text(fields: Iterable[tuple[bytes, bytes]]) -> Text:
    from rich.text import Text

    text = Text()
    for i, (k, v) in enumerate(fields):
        if i:
            text.append("  ")
        text.append(show_bytes(k), style="cyan")
        text.append("=")
        text.append(show_bytes(v))
    return text


def id_time(entry_id: str | None) -> str:
    return time_of(entry_id) or "-"


def _table(title: str | None = None, *, show_header: bool = True) -> Table:
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, show_header=show_header, title_justify="left")


def entries_table(
    entries: list[Entry], *, show_header: bool = True, show_stream: bool = False
) -> Table:

    table = _table(show_header=show_header)
    if show_stream:
        table.add_column("stream", style="magenta", no_wrap=True)
    table.add_column("id", style="bold", no_wrap=True, min_width=15)
    table.add_column("time", style="dim", no_wrap=True, min_width=24)
    table.add_column("fields", overflow="fold")
    for e in entries:
        row: list[str | Text] = [e.id, format_time(e.time_ms), fields_text(e.pairs)]
        if show_stream:
            row.insert(0, e.stream)
        table.add_row(*row)
    return table


def streams_table(streams: list[StreamSummary]) -> RenderableType:
    from rich.text import Text

    if not streams:
        return Text("no streams", style="dim")
    where = sorted({endpoint_text(s.endpoint) for s in streams if s.endpoint is not None})
    table = _table("on " + ", ".join(where) if where else None)
    with_memory = any(s.memory is not None for s in streams)
    for col, justify in (
        ("stream", "left"),
        ("length", "right"),
        ("groups", "right"),
        ("first entry", "left"),
        ("last entry", "left"),
        ("last age", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    if with_memory:
        table.add_column("memory", justify="right")
    for s in streams:
        age = format_age(max(0, s.now_ms - id_ms(s.last_id))) if s.last_id else "-"
        row = [
            s.name,
            f"{s.length:,}",
            str(s.groups),
            id_time(s.first_id),
            id_time(s.last_id),
            age,
        ]
        if with_memory:
            row.append(_bytes_size(s.memory))
        table.add_row(*row)
    return table


def _bytes_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def groups_table(groups: list[GroupInfo], *, title: str | None = None) -> RenderableType:
    from rich.text import Text

    if not groups:
        return Text("no consumer groups", style="dim")
    table = _table(title)
    table.add_column("group", style="bold")
    table.add_column("consumers", justify="right")
    table.add_column("pending", justify="right")
    table.add_column("last delivered", no_wrap=True)
    table.add_column("time", style="dim", no_wrap=True)
    table.add_column("entries read", justify="right")
    table.add_column("lag", justify="right")
    table.add_column("behind", justify="right")
    for g in groups:
        lag = "-" if g.lag is None else f"{g.lag:,}" + (" (computed)" if g.lag_computed else "")
        table.add_row(
            g.name,
            str(g.consumers),
            f"{g.pending:,}",
            g.last_delivered_id,
            id_time(g.last_delivered_id),
            "-" if g.entries_read is None else f"{g.entries_read:,}",
            lag,
            "-" if g.behind_ms is None else format_duration(g.behind_ms),
        )
    return table


def stream_info_view(info: StreamInfo) -> RenderableType:
    from rich.console import Group as RichGroup
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()

    def entry_row(label: str, entry: Entry | None) -> None:
        if entry is None:
            table.add_row(label, "-")
            return
        age = format_age(max(0, info.now_ms - entry.time_ms))
        table.add_row(label, f"{entry.id}  {format_time(entry.time_ms)}  ({age})")

    table.add_row("stream", info.name)
    if info.endpoint is not None:
        table.add_row("connected", endpoint_text(info.endpoint))
    table.add_row("length", f"{info.length:,}")
    entry_row("first entry", info.first_entry)
    entry_row("last entry", info.last_entry)
    table.add_row(
        "last generated id", f"{info.last_generated_id}  {id_time(info.last_generated_id)}"
    )
    table.add_row("entries added", "-" if info.entries_added is None else f"{info.entries_added:,}")
    table.add_row("max deleted id", info.max_deleted_id or "-")
    table.add_row("recorded first id", info.recorded_first_id or "-")
    table.add_row(
        "radix tree",
        f"{count_noun(info.radix_tree_keys, 'key', 'keys', grouped=False)}, "
        f"{count_noun(info.radix_tree_nodes or 0, 'node', 'nodes', grouped=False)}"
        if info.radix_tree_keys is not None
        else "-",
    )
    return RichGroup(table, Text(""), groups_table(info.groups, title="groups"))
