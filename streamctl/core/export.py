"""export: a stream's range (and its groups' state) handed over batch by batch as NDJSON
envelopes are written, with bounded memory; a failure says how far it got and how to continue."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from streamctl.core.filters import EntryFilter
from streamctl.core.models import RawEntry
from streamctl.core.models_transfer import ExportResult, GroupState, PendingState
from streamctl.core.streams import pin_end, read_range, resolve_range
from streamctl.core.trim import snapshot
from streamctl.core.wire import never, pairs, raw_command, require_stream, text
from streamctl.errors import BadInput, PartialFailure, StreamctlError
from streamctl.ids import StreamId
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.core.connection import Client

BATCH = 1000  # entries per XRANGE
PENDING_PAGE = 1000


# ---- export ----


def group_states(client: Client, stream: str) -> list[GroupState]:
    """Every group's position, consumers and pending entries (PEL read in pages)."""
    out = []
    for raw in raw_command(client, "XINFO", "GROUPS", stream):
        g = pairs(raw)
        name: bytes = g["name"]
        consumers = tuple(
            pairs(c)["name"] for c in raw_command(client, "XINFO", "CONSUMERS", stream, name)
        )
        pending: list[PendingState] = []
        start = "-"
        while True:
            page = raw_command(client, "XPENDING", stream, name, start, "+", PENDING_PAGE)
            pending.extend(PendingState(text(p[0]), p[1], int(p[3]), int(p[2])) for p in page)
            if len(page) < PENDING_PAGE:
                break
            start = str(StreamId.parse(page[-1][0]).next())
        entries_read = g.get("entries-read")
        out.append(
            GroupState(
                name=name,
                last_delivered_id=text(g["last-delivered-id"]),
                entries_read=int(entries_read) if entries_read is not None else None,
                consumers=consumers,
                pending=tuple(pending),
            )
        )
    return out


def export_stream(
    client: Client,
    stream: str,
    write_entries: Callable[[str, list[RawEntry]], None],
    *,
    start: str = "-",
    end: str = "+",
    count: int | None = None,
    write_groups: Callable[[str, list[GroupState]], None] | None = None,
    entry_filter: EntryFilter | None = None,
    should_stop: Callable[[], bool] = never,
    batch_size: int = BATCH,
) -> ExportResult:
    """Hand the range to `write_entries` batch by batch (bounded memory).

    With `write_groups`, the groups' state is read first and handed over before the entries; the
    range then ends at the stream's last id at that moment, so every id the groups refer to is
    at or before the last entry exported.
    """

    if count is not None and count < 1:
        raise BadInput(f"bad --count {count}: give a count of 1 or more")
    require_stream(client, stream)
    started = time.perf_counter()
    groups: list[GroupState] = []
    if write_groups is not None:
        groups = group_states(client, stream)
    lo, hi = resolve_range(client, start, end)
    pinned = pin_end(hi, snapshot(client, stream).last_id)
    if write_groups is not None:
        write_groups(stream, groups)
    exported, first, last = 0, None, None
    stopped = False
    try:
        for batch in read_range(
            client,
            stream,
            lo,
            pinned or "-",
            count=count,
            batch_size=batch_size,
            check_exists=False,
            filter=entry_filter,
        ):
            if pinned is None or not batch.entries:
                break
            write_entries(stream, batch.entries)
            exported += len(batch.entries)
            if first is None:
                first = text(batch.entries[0][0])
            last = text(batch.entries[-1][0])
            if should_stop():
                stopped = True
                break
    except StreamctlError:
        raise
    except Exception as exc:  # reading failed part-way: say how far the export got
        from streamctl.core.connection import translate_error

        mapped = translate_error(exc, client=client)
        if mapped is None:
            raise
        hint = f"; continue with --from '({last}'" if last else ""
        raise PartialFailure(
            f"{mapped.message}; {count_noun(exported, 'entry was', 'entries were')} exported "
            f"before it{hint}",
            done=exported,
            exit_code=mapped.exit_code,
        ) from None
    return ExportResult(
        stream, exported, first, last, len(groups), time.perf_counter() - started, stopped
    )
