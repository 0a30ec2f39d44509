"""Views of the repair commands (`trace`, `group prune`, `redrive`): plain data and Rich."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamctl.core.models_repairs import PrunePlan, RedriveResult, TraceReport
from streamctl.ids import format_duration
from streamctl.render.serialize import entry_data, time_of
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table


# ---- plain data ----


def trace_data(r: TraceReport) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "id": r.id,
        "time": time_of(r.id),
        "stream_exists": r.stream_exists,
        "entry": entry_data(r.entry) if r.entry is not None else None,
        "groups": [
            {
                "group": g.group,
                "state": g.state,
                "last_delivered_id": g.last_delivered_id,
                "consumer": g.consumer,
                "deliveries": g.deliveries,
                "idle_ms": g.idle_ms,
            }
            for g in r.groups
        ],
        "dead_letters": [
            {
                "dlq": d.dlq,
                "id": d.id,
                "time": time_of(d.id),
                "group": d.group,
                "consumer": d.consumer,
                "deliveries": d.deliveries,
            }
            for d in r.dead_letters
        ],
    }


def prune_data(p: PrunePlan) -> dict[str, Any]:
    return {
        "stream": p.stream,
        "group": p.group,
        "idle_ms": p.idle_ms,
        "measure": p.measure,
        "reassign_to": p.reassign_to,
        "executed": p.executed,
        "consumers": [
            {
                "consumer": d.consumer,
                "action": "prune" if d.prune else "keep",
                "reason": d.reason,
                "pending": d.pending,
                "idle_ms": d.idle_ms,
                "inactive_ms": d.inactive_ms,
                "deleted": d.deleted,
                "reassigned": list(d.reassigned),
                "deleted_while_pending": list(d.deleted_while_pending),
            }
            for d in p.consumers
        ],
    }


def redrive_data(r: RedriveResult) -> dict[str, Any]:
    return {
        "dlq": r.dlq,
        "into": r.into,
        "dry_run": r.dry_run,
        "keep": r.keep,
        "scanned": r.scanned,
        "redriven": r.redriven,
        "per_stream": dict(sorted(r.per_stream.items())),
        "unusable_count": r.unusable_count,
        "unusable": [{"id": u.id, "reason": u.reason} for u in r.unusable],
        "gone": r.gone,
        "first_id": r.first_id,
        "last_id": r.last_id,
        "last_new_id": r.last_new_id,
        "stopped": r.stopped,
        "seconds": round(r.seconds, 3),
    }


# ---- Rich views ----


def _table(title: str | None = None) -> Table:
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")


def _facts(rows: list[tuple[str, str]]) -> Table:
    from rich.table import Table

    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    return table


def _id_time(entry_id: str) -> str:
    t = time_of(entry_id)
    return f"{entry_id}  {t}" if t else entry_id


def trace_view(r: TraceReport) -> RenderableType:
    from rich.console import Group

    parts: list[Any] = []
    rows = [("stream", r.stream), ("id", _id_time(r.id))]
    if r.entry is None:
        rows.append(("entry", "gone: not in the stream" if r.stream_exists else "no such stream"))
    parts.append(_facts(rows))
    if r.entry is not None:
        fields = _table("fields")
        fields.add_column("field", style="bold")
        fields.add_column("value")
        for name, value in r.entry.pairs:
            fields.add_row(name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
        parts.append(fields)
    if r.groups:
        groups = _table("groups")
        for col in ("group", "state", "consumer", "deliveries", "idle", "last delivered"):
            groups.add_column(col, justify="right" if col in ("deliveries", "idle") else "left")
        for g in r.groups:
            groups.add_row(
                g.group,
                g.state,
                g.consumer or "",
                str(g.deliveries) if g.deliveries is not None else "",
                format_duration(g.idle_ms) if g.idle_ms is not None else "",
                g.last_delivered_id,
            )
        parts.append(groups)
    elif r.stream_exists:
        parts.append(_facts([("groups", "none")]))
    if r.dlqs:
        if r.dead_letters:
            copies = _table("dead-letter copies")
            for col in ("dlq", "id", "group", "consumer", "deliveries"):
                copies.add_column(col)
            for d in r.dead_letters:
                copies.add_row(
                    d.dlq,
                    _id_time(d.id),
                    d.group or "",
                    d.consumer or "",
                    str(d.deliveries) if d.deliveries is not None else "",
                )
            parts.append(copies)
        else:
            parts.append(_facts([("dead letters", f"none in {', '.join(r.dlqs)}")]))
    return Group(*parts)


def prune_view(p: PrunePlan) -> RenderableType:
    from rich.console import Group

    verb = "pruned" if p.executed else "would prune"
    head = _facts(
        [
            ("stream", p.stream),
            ("group", p.group),
            ("idle", f"{format_duration(p.idle_ms)} or more, by {p.measure}"),
            (verb, str(sum(1 for d in p.consumers if d.prune))),
        ]
    )
    table = _table()
    for col in ("consumer", "action", "pending", "idle", "inactive", "why"):
        table.add_column(col, justify="right" if col in ("pending", "idle", "inactive") else "left")
    for d in p.consumers:
        action = ("deleted" if d.deleted else "prune") if d.prune else "keep"
        table.add_row(
            d.consumer,
            action,
            str(d.pending),
            format_duration(d.idle_ms),
            format_duration(d.inactive_ms) if d.inactive_ms is not None else "-",
            d.reason,
        )
    return Group(head, table)


def redrive_view(r: RedriveResult) -> RenderableType:
    from rich.console import Group

    verb = "would redrive" if r.dry_run else ("copied" if r.keep else "redriven")
    rows = [
        ("dlq", r.dlq),
        (verb, f"{r.redriven:,} of {count_noun(r.scanned, 'entry', 'entries')} read"),
        ("last DLQ id handled", r.last_id or "-"),
    ]
    if r.unusable_count:
        rows.append(("left in place", f"{r.unusable_count:,} (no usable dlq_stream)"))
    if r.gone:
        rows.append(("gone meanwhile", f"{r.gone:,}"))
    parts: list[Any] = [_facts(rows)]
    if r.per_stream:
        table = _table()
        table.add_column("stream")
        table.add_column("entries", justify="right")
        for name, n in sorted(r.per_stream.items()):
            table.add_row(name, f"{n:,}")
        parts.append(table)
    if r.unusable:
        table = _table("left in place")
        table.add_column("id")
        table.add_column("why")
        for u in r.unusable[:20]:
            table.add_row(u.id, u.reason)
        if r.unusable_count > 20:
            table.add_row("...", f"{r.unusable_count - 20:,} more")
        parts.append(table)
    return Group(*parts)
