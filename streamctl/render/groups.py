"""Consumer groups, consumers, pending entries, claims, dead letters and acks: plain data and
Rich views. Every id is shown with its time; durations as '3m12s', ages as '3m12s ago'.

The models come from core.models_groups and core.models_pending (redis-free); their plain-data
shapes are registered with render.serialize when this module is imported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamctl.core.models_groups import (
    Consumer,
    DelConsumerResult,
    GroupCreateResult,
    GroupDestroyResult,
    SetIdPlan,
)
from streamctl.core.models_pending import (
    AckResult,
    ClaimResult,
    DeadLetter,
    DeadLetterResult,
    PendingEntry,
    PendingSummary,
)
from streamctl.ids import format_age, format_duration, format_time, id_ms
from streamctl.render.serialize import time_of
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table


def _id_time(entry_id: str | None) -> str:
    if not entry_id:
        return "-"
    t = time_of(entry_id)
    return f"{entry_id}  {t}" if t else entry_id


# ---- plain data ----


def consumer_data(c: Consumer) -> dict[str, Any]:
    return {
        "stream": c.stream,
        "group": c.group,
        "consumer": c.name,
        "pending": c.pending,
        "idle_ms": c.idle_ms,
        "inactive_ms": c.inactive_ms,
    }


def create_data(r: GroupCreateResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "group": r.group,
        "created": r.created,
        "stream_created": r.stream_created,
        "last_delivered_id": r.last_delivered_id,
        "last_delivered_time": time_of(r.last_delivered_id),
        "entries_read": r.entries_read,
    }


def destroy_data(r: GroupDestroyResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "group": r.group,
        "destroyed": True,
        "pending_dropped": r.pending_dropped,
    }


def setid_data(p: SetIdPlan) -> dict[str, Any]:
    return {
        "stream": p.stream,
        "group": p.group,
        "executed": p.executed,
        "current": {
            "last_delivered_id": p.current_id,
            "last_delivered_time": time_of(p.current_id),
            "entries_read": p.current_entries_read,
            "lag": p.current_lag,
        },
        "new": {
            "last_delivered_id": p.new_id,
            "last_delivered_time": time_of(p.new_id),
            "entries_read": p.entries_read,
            "lag": p.new_lag,
        },
        "entries_read_note": p.entries_read_note,
        "next_id": p.next_id,
        "next_time": time_of(p.next_id),
        "redeliver": p.redeliver,
        "skip": p.skip,
        "pending": p.pending,
    }


def delconsumer_data(r: DelConsumerResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "group": r.group,
        "consumer": r.consumer,
        "deleted": True,
        "reassigned_to": r.reassigned_to,
        "reassigned": r.reassigned,
        "deleted_while_pending": r.deleted_while_pending,
        "pending_dropped": r.pending_dropped,
    }


def summary_data(s: PendingSummary) -> dict[str, Any]:
    return {
        "stream": s.stream,
        "group": s.group,
        "count": s.count,
        "oldest_id": s.oldest_id,
        "oldest_time": time_of(s.oldest_id),
        "newest_id": s.newest_id,
        "newest_time": time_of(s.newest_id),
        "consumers": [{"consumer": name, "pending": n} for name, n in s.consumers],
    }


def pending_entry_data(e: PendingEntry, now_ms: int) -> dict[str, Any]:
    return {
        "id": e.id,
        "time": format_time(id_ms(e.id)),
        "consumer": e.consumer,
        "idle_ms": e.idle_ms,
        "deliveries": e.deliveries,
        "age_ms": max(0, now_ms - id_ms(e.id)),
    }


def claim_data(r: ClaimResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "group": r.group,
        "consumer": r.consumer,
        "method": r.method,
        "dry_run": r.dry_run,
        "claimed": r.claimed,
        "deleted": r.deleted,
        "skipped": r.skipped,
        "not_pending": r.not_pending,
    }


def _dead_letter_item(d: DeadLetter, *, with_dlq_id: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"id": d.id, "consumer": d.consumer, "deliveries": d.deliveries}
    if with_dlq_id:
        data["dlq_id"] = d.dlq_id
    return data


def dead_letter_data(r: DeadLetterResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "group": r.group,
        "dlq": r.dlq,
        "max_deliveries": r.max_deliveries,
        "dry_run": r.dry_run,
        "moved": [_dead_letter_item(d, with_dlq_id=not r.dry_run) for d in r.moved],
        "deleted": [_dead_letter_item(d, with_dlq_id=False) for d in r.deleted],
        "skipped": r.skipped,
    }


def ack_data(r: AckResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "group": r.group,
        "requested": r.requested,
        "acked": r.acked,
        "not_pending": r.not_pending,
    }


# ---- Rich views ----


def _table(title: str | None = None, *, show_header: bool = True) -> Table:
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, show_header=show_header, title_justify="left")


def _facts(rows: list[tuple[str, str]]) -> Table:
    from rich.table import Table

    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    return table


def _ids_line(label: str, ids: list[str], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit])
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return f"{label}: {len(ids)}" + (f"  {shown}{more}" if ids else "")


def consumers_table(consumers: list[Consumer]) -> RenderableType:
    from rich.text import Text

    if not consumers:
        return Text("no consumers", style="dim")
    table = _table()
    table.add_column("consumer", style="bold")
    table.add_column("pending", justify="right")
    table.add_column("idle", justify="right")
    table.add_column("inactive", justify="right")
    for c in consumers:
        table.add_row(
            c.name,
            f"{c.pending:,}",
            format_duration(c.idle_ms),
            "-" if c.inactive_ms is None or c.inactive_ms < 0 else format_duration(c.inactive_ms),
        )
    return table


def create_view(r: GroupCreateResult) -> RenderableType:
    from rich.text import Text

    verb = "created:" if r.created else "already exists:"
    made = f" (stream {r.stream!r} created)" if r.stream_created else ""
    er = "-" if r.entries_read is None else str(r.entries_read)
    return Text(
        f"group {r.group!r} on {r.stream!r} {verb} last delivered "
        f"{_id_time(r.last_delivered_id)}, entries read {er}{made}"
    )


def destroy_view(r: GroupDestroyResult) -> RenderableType:
    from rich.text import Text

    dropped = count_noun(r.pending_dropped, "pending entry", "pending entries", grouped=False)
    dropped = f" ({dropped} dropped)" if r.pending_dropped else ""
    return Text(f"group {r.group!r} on {r.stream!r} destroyed{dropped}")


def setid_view(p: SetIdPlan) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    table = _table("applied" if p.executed else "plan (not applied: rerun with --execute)")
    for col, justify in (
        ("", "left"),
        ("last delivered", "left"),
        ("time", "left"),
        ("entries read", "right"),
        ("lag", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]

    def num(n: int | None) -> str:
        return "-" if n is None else f"{n:,}"

    table.add_row(
        "current",
        p.current_id,
        time_of(p.current_id) or "-",
        num(p.current_entries_read),
        num(p.current_lag),
    )
    table.add_row("new", p.new_id, time_of(p.new_id) or "-", num(p.entries_read), num(p.new_lag))
    lines = [f"group {p.group!r} on {p.stream!r}"]
    if p.redeliver:
        lines.append(f"{count_noun(p.redeliver, 'entry', 'entries')} will be delivered again")
    elif p.skip:
        lines.append(
            f"{count_noun(p.skip, 'entry', 'entries')} will be skipped "
            "(never delivered to this group)"
        )
    else:
        lines.append("no entry is delivered again or skipped")
    if p.next_id:
        lines.append(f"next entry delivered: {_id_time(p.next_id)}")
    else:
        lines.append("next entry delivered: the next one published")
    if p.entries_read_note:
        lines.append(f"entries read unknown: {p.entries_read_note}")
    if p.pending:
        lines.append(
            f"{count_noun(p.pending, 'pending entry stays', 'pending entries stay')} pending "
            "(claim or ack them)"
        )
    return Group(table, Text("\n".join(lines)))


def delconsumer_view(r: DelConsumerResult) -> RenderableType:
    from rich.text import Text

    lines = [f"consumer {r.consumer!r} deleted from group {r.group!r} on {r.stream!r}"]
    if r.reassigned_to is not None:
        lines.append(_ids_line(f"reassigned to {r.reassigned_to!r}", r.reassigned))
    if r.deleted_while_pending:
        lines.append(_ids_line("deleted while pending (dropped)", r.deleted_while_pending))
    if r.pending_dropped:
        dropped = count_noun(r.pending_dropped, "pending entry", "pending entries", grouped=False)
        lines.append(f"{dropped} dropped (--force)")
    return Text("\n".join(lines))


def summary_view(s: PendingSummary) -> RenderableType:
    from rich.console import Group

    def edge(entry_id: str | None) -> str:
        if not entry_id:
            return "-"
        return f"{_id_time(entry_id)}  ({format_age(max(0, s.now_ms - id_ms(entry_id)))})"

    facts = _facts(
        [
            ("stream", s.stream),
            ("group", s.group),
            ("pending", f"{s.count:,}"),
            ("oldest", edge(s.oldest_id)),
            ("newest", edge(s.newest_id)),
        ]
    )
    if not s.consumers:
        return facts
    table = _table()
    table.add_column("consumer", style="bold")
    table.add_column("pending", justify="right")
    for name, n in s.consumers:
        table.add_row(name, f"{n:,}")
    return Group(facts, table)


def pending_table(entries: list[PendingEntry], now_ms: int, *, show_header: bool) -> Table:
    table = _table(show_header=show_header)
    table.padding = (0, 1)
    table.pad_edge = False
    # narrow terminals shorten the consumer name rather than wrap rows
    table.add_column("id", style="bold", no_wrap=True, min_width=15)
    table.add_column("time", style="dim", no_wrap=True, min_width=24)
    table.add_column("consumer", overflow="fold", min_width=6)
    table.add_column("idle", justify="right", no_wrap=True)
    table.add_column("deliv", justify="right", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    for e in entries:
        table.add_row(
            e.id,
            format_time(id_ms(e.id)),
            e.consumer,
            format_duration(e.idle_ms),
            str(e.deliveries),
            format_age(max(0, now_ms - id_ms(e.id))),
        )
    return table


def claim_view(r: ClaimResult) -> RenderableType:
    from rich.text import Text

    verb = "would claim" if r.dry_run else "claimed"
    lines = [
        f"{r.stream!r} group {r.group!r}: {verb} "
        f"{count_noun(len(r.claimed), 'entry', 'entries', grouped=False)} for {r.consumer!r}"
        f" ({r.method})" + (" (dry run: nothing changed)" if r.dry_run else "")
    ]
    if r.claimed:
        lines.append(_ids_line(verb, r.claimed))
    if r.deleted:
        label = "deleted while pending (would be dropped)" if r.dry_run else "deleted while pending"
        lines.append(_ids_line(label, r.deleted))
    if r.skipped:
        lines.append(_ids_line("skipped (no longer idle enough, or taken meanwhile)", r.skipped))
    if r.not_pending:
        lines.append(_ids_line("not pending", r.not_pending))
    return Text("\n".join(lines))


def dead_letter_view(r: DeadLetterResult) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    verb = "would move" if r.dry_run else "moved"
    head = Text(
        f"{r.stream!r} group {r.group!r}: {verb} "
        f"{count_noun(len(r.moved), 'entry', 'entries', grouped=False)} delivered "
        f"{r.max_deliveries}+ times to {r.dlq!r}"
        + (" (dry run: nothing changed)" if r.dry_run else "")
    )
    parts: list[Any] = [head]
    if r.moved:
        table = _table()
        table.add_column("id", style="bold", no_wrap=True)
        table.add_column("time", style="dim", no_wrap=True)
        table.add_column("consumer")
        table.add_column("deliveries", justify="right")
        if not r.dry_run:
            table.add_column("dlq id", no_wrap=True)
        for d in r.moved:
            row = [d.id, format_time(id_ms(d.id)), d.consumer, str(d.deliveries)]
            if not r.dry_run:
                row.append(d.dlq_id or "-")
            table.add_row(*row)
        parts.append(table)
    if r.deleted:
        label = "deleted while pending (acked, not copied)"
        if r.dry_run:
            label = "deleted while pending (would be acked, not copied)"
        parts.append(Text(_ids_line(label, [d.id for d in r.deleted])))
    if r.skipped:
        parts.append(Text(_ids_line("skipped (no longer eligible)", r.skipped)))
    return Group(*parts)


def ack_view(r: AckResult) -> RenderableType:
    from rich.text import Text

    return Text(
        f"acknowledged {r.acked} of {count_noun(r.requested, 'id', 'ids', grouped=False)} "
        f"in group {r.group!r} on {r.stream!r}"
        + (
            f" ({count_noun(r.not_pending, 'was', 'were', grouped=False)} not pending)"
            if r.not_pending
            else ""
        )
    )


# ---- the pending listing, written as it is read (bounded memory) ----


class PendingWriter:
    """Writes the summary, then pages of entries, then whether more entries matched.

    json: one object written incrementally ({...summary, "entries": [...], "more": bool});
    yaml: the same document, entries appended as they come; ndjson: one entry per line (with
    stream and group), nothing else; table: the summary, then the entries' rows."""

    def __init__(
        self,
        fmt: str,
        write: Callable[[str], None],
        print_table: Callable[[Any], None],
        summary: PendingSummary,
    ) -> None:
        self.fmt = fmt
        self.write = write
        self.print_table = print_table
        self.summary = summary
        self.count = 0

    def begin(self) -> None:
        head = summary_data(self.summary)
        if self.fmt == "json":
            text = json.dumps(head, ensure_ascii=False, indent=2)
            self.write(text[: text.rfind("}")].rstrip() + ',\n  "entries": [')
        elif self.fmt == "yaml":
            from streamctl.render.serialize import dump_yaml

            self.write(dump_yaml(head))
        elif self.fmt == "table":
            self.print_table(summary_view(self.summary))

    def batch(self, entries: list[PendingEntry]) -> None:
        if not entries:
            return
        now = self.summary.now_ms
        if self.fmt == "json":
            items = [
                json.dumps(pending_entry_data(e, now), ensure_ascii=False, separators=(", ", ": "))
                for e in entries
            ]
            sep = ",\n    " if self.count else "\n    "
            self.write(sep + ",\n    ".join(items))
        elif self.fmt == "ndjson":
            from streamctl.render.serialize import dump_ndjson

            base = {"stream": self.summary.stream, "group": self.summary.group}
            self.write(dump_ndjson([{**base, **pending_entry_data(e, now)} for e in entries]))
        elif self.fmt == "yaml":
            from streamctl.render.serialize import dump_yaml

            if not self.count:
                self.write("entries:\n")
            self.write(dump_yaml([pending_entry_data(e, now) for e in entries]))
        else:
            self.print_table(pending_table(entries, now, show_header=self.count == 0))
        self.count += len(entries)

    def end(self, more: bool) -> None:
        if self.fmt == "json":
            close = "\n  ]" if self.count else "]"
            self.write(f'{close},\n  "more": {"true" if more else "false"}\n}}\n')
        elif self.fmt == "yaml":
            if not self.count:
                self.write("entries: []\n")
            self.write(f"more: {'true' if more else 'false'}\n")
