"""trim, replay, export and import: the plain-data shapes of their reports (registered with
serialize), their Rich views, and the group-state line of `export --with-groups`.

Rich is imported inside the view functions: the converters are used for json output, which
must not pay for it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from streamctl.core.models_transfer import (
    GroupHold,
    GroupImport,
    GroupState,
    ImportResult,
    ReplayResult,
    RewindResult,
    TrimPlan,
    TrimResult,
)
from streamctl.ids import format_duration
from streamctl.render.serialize import time_of, value_data
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table


def _name(value: bytes) -> Any:
    return value_data(value)


def _shown(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


# ---- plain data ----


def hold_data(h: GroupHold) -> dict[str, Any]:
    return {
        "group": h.group,
        "last_delivered_id": h.last_delivered_id,
        "undelivered": h.undelivered,
        "pending": h.pending,
        "blocks": h.blocks,
    }


def trim_plan_data(p: TrimPlan) -> dict[str, Any]:
    data: dict[str, Any] = {
        "stream": p.stream,
        "strategy": p.strategy,
        "threshold": p.threshold,
    }
    if p.strategy == "minid":
        data["threshold_time"] = time_of(p.threshold)
    if p.older_than_ms is not None:
        data["older_than_ms"] = p.older_than_ms
    data.update(
        {
            "exact": not p.approx,
            "acked_only": p.acked_only,
            "length": p.length,
            "entries": p.count,
            "acked_entries": p.acked_count,
            "first_id": p.first_id,
            "first_time": time_of(p.first_id),
            "last_id": p.last_id,
            "last_time": time_of(p.last_id),
            "groups": [hold_data(h) for h in p.holds],
        }
    )
    return data


def trim_result_data(r: TrimResult) -> dict[str, Any]:
    data = {"dry_run": r.dry_run, **trim_plan_data(r.plan)}
    data["refused_without_force"] = bool(r.plan.blocking) and not r.plan.acked_only
    data["forced"] = r.forced
    data["removed"] = r.removed
    data["length_after"] = r.length_after
    return data


def replay_result_data(r: ReplayResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "target": r.target,
        "target_server": r.target_server,
        "from_id": r.start,
        "to_id": r.end,
        "dry_run": r.dry_run,
        "scanned": r.scanned,
        "copied": r.copied,
        "first_id": r.first_id,
        "first_time": time_of(r.first_id),
        "last_id": r.last_id,
        "last_time": time_of(r.last_id),
        "resume_after": r.resume_after,
        "first_new_id": r.first_new_id,
        "last_new_id": r.last_new_id,
        "seconds": round(r.seconds, 3),
        "interrupted": r.stopped,
    }


def rewind_result_data(r: RewindResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "group": r.group,
        "dry_run": r.dry_run,
        "previous_id": r.previous_id,
        "previous_time": time_of(r.previous_id),
        "new_id": r.new_id,
        "new_time": time_of(r.new_id),
        "entries_read": r.entries_read,
        "redeliver": r.redeliver,
        "skip": r.skip,
    }


def group_import_data(g: GroupImport) -> dict[str, Any]:
    return {
        "group": _name(g.name),
        "action": g.action,
        "last_delivered_id": g.last_delivered_id,
        "entries_read": g.entries_read,
        "consumers": g.consumers,
        "pending_restored": g.pending_restored,
        "pending_dropped": g.pending_dropped,
    }


def import_result_data(r: ImportResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "keep_ids": r.keep_ids,
        "dry_run": r.dry_run,
        "imported": r.imported,
        "skipped": r.skipped,
        "first_id": r.first_id,
        "last_id": r.last_id,
        "last_source_id": r.last_source_id,
        "groups": [group_import_data(g) for g in r.groups],
        "seconds": round(r.seconds, 3),
        "interrupted": r.stopped,
    }


# ---- export --with-groups: one line per group, before the entries ----


def group_state_data(stream: str, g: GroupState) -> dict[str, Any]:
    return {
        "stream": stream,
        "group": {
            "name": _name(g.name),
            "last_delivered_id": g.last_delivered_id,
            "entries_read": g.entries_read,
            "consumers": [_name(c) for c in g.consumers],
            "pending": [
                {
                    "id": p.id,
                    "consumer": _name(p.consumer),
                    "deliveries": p.deliveries,
                    "idle_ms": p.idle_ms,
                }
                for p in g.pending
            ],
        },
    }


def group_state_lines(stream: str, groups: list[GroupState]) -> str:
    return "".join(
        json.dumps(group_state_data(stream, g), ensure_ascii=False, separators=(",", ":")) + "\n"
        for g in groups
    )


# ---- Rich views ----


def _kv() -> Table:
    from rich.table import Table

    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    return table


def _id_cell(entry_id: str | None) -> str:
    if not entry_id:
        return "-"
    shown = time_of(entry_id)
    return f"{entry_id}  {shown}" if shown else entry_id


def trim_view(r: TrimResult) -> RenderableType:
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    p = r.plan
    table = _kv()
    table.add_row("stream", p.stream)
    rule = f"{p.strategy.upper()} {'~' if p.approx else '='} {p.threshold}"
    if p.strategy == "minid" and time_of(p.threshold):
        rule += f"  ({time_of(p.threshold)})"
    if p.older_than_ms is not None:
        rule += f"  older than {format_duration(p.older_than_ms)} by the server's clock"
    if p.acked_only:
        rule += "  ACKED"
    table.add_row("trim", rule)
    table.add_row("length", f"{p.length:,}")
    verb = "would remove" if r.dry_run else "range"
    amount = count_noun(p.count, "entry", "entries") + (
        " at most (~ removes whole nodes)" if p.approx else ""
    )
    if p.acked_count is not None:
        amount += f", of which {p.acked_count:,} acknowledged by every group"
    table.add_row(verb, amount)
    if p.count:
        table.add_row("from", _id_cell(p.first_id))
        table.add_row("through", _id_cell(p.last_id))
    if r.dry_run and p.blocking and not p.acked_only and not r.forced:
        names = ", ".join(h.group for h in p.blocking)
        table.add_row("refused", f"without --force: groups {names} still need entries")
    if not r.dry_run:
        table.add_row("removed", f"{r.removed or 0:,}" + (" (forced)" if r.forced else ""))
        if r.length_after is not None:
            table.add_row("length now", f"{r.length_after:,}")
    parts: list[RenderableType] = [table]
    if p.holds:
        groups = Table(box=box.SIMPLE_HEAD, title="groups", title_justify="left")
        groups.add_column("group", style="bold")
        groups.add_column("last delivered", no_wrap=True)
        groups.add_column("undelivered", justify="right")
        groups.add_column("pending", justify="right")
        groups.add_column("")
        for h in p.holds:
            groups.add_row(
                h.group,
                _id_cell(h.last_delivered_id),
                f"{h.undelivered:,}",
                f"{h.pending:,}",
                Text("needs these", style="red") if h.blocks else Text("ok", style="green"),
            )
        parts += [Text(""), groups]
    return Group(*parts)


def replay_view(r: ReplayResult) -> RenderableType:
    table = _kv()
    table.add_row("from stream", r.stream)
    target = r.target + (f"  on {r.target_server}" if r.target_server else "")
    table.add_row("into", target)
    table.add_row("range", f"{_id_cell(r.start)}  ..  {_id_cell(r.end)}")
    verb = "would copy" if r.dry_run else "copied"
    table.add_row(verb, f"{r.copied:,} of {count_noun(r.scanned, 'entry', 'entries')} read")
    if r.copied:
        table.add_row("first source id", _id_cell(r.first_id))
        table.add_row("last source id", _id_cell(r.last_id))
    if r.first_new_id:
        table.add_row("new ids", f"{r.first_new_id} .. {r.last_new_id}")
    if not r.dry_run and r.seconds > 0:
        table.add_row("took", f"{r.seconds:.2f}s ({r.copied / r.seconds:,.0f} entries/s)")
    if r.stopped:
        table.add_row("interrupted", f"continue with --from '({r.resume_after}'")
    return table


def rewind_view(r: RewindResult) -> RenderableType:
    table = _kv()
    table.add_row("stream", r.stream)
    table.add_row("group", r.group)
    table.add_row("last delivered", _id_cell(r.previous_id))
    table.add_row("would become" if r.dry_run else "now", _id_cell(r.new_id))
    table.add_row("delivered again", count_noun(r.redeliver, "entry", "entries"))
    if r.skip:
        table.add_row("skipped", count_noun(r.skip, "entry", "entries"))
    if r.entries_read is not None:
        table.add_row("entries read", f"{r.entries_read:,}")
    return table


def import_view(r: ImportResult) -> RenderableType:
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = _kv()
    table.add_row("stream", r.stream)
    table.add_row("ids", "kept" if r.keep_ids else "new")
    table.add_row(
        "would import" if r.dry_run else "imported", count_noun(r.imported, "entry", "entries")
    )
    if r.skipped:
        table.add_row("skipped", f"{r.skipped:,} (already in the stream)")
    if r.first_id:
        table.add_row("ids written", f"{r.first_id} .. {r.last_id}")
    if not r.dry_run and r.seconds > 0:
        table.add_row("took", f"{r.seconds:.2f}s ({r.imported / r.seconds:,.0f} entries/s)")
    parts: list[RenderableType] = [table]
    if r.groups:
        groups = Table(box=box.SIMPLE_HEAD, title="groups", title_justify="left")
        for col in ("group", "action", "last delivered", "consumers", "pending restored"):
            groups.add_column(col)
        for g in r.groups:
            restored = f"{g.pending_restored:,}"
            if g.pending_dropped:
                restored += f" ({g.pending_dropped:,} dropped: entry gone)"
            groups.add_row(
                _shown(g.name), g.action, _id_cell(g.last_delivered_id), str(g.consumers), restored
            )
        parts += [Text(""), groups]
    return Group(*parts)
