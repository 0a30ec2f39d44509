"""trace: where is this entry? Its envelope (or that it is gone), its state in every consumer
group of its stream, and its copies in dead-letter streams (found by dlq_stream and dlq_id).

Bounded memory: each dead-letter stream is read in batches; the groups' PEL lookups go in one
pipelined round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.exceptions import ResponseError

from streamctl.core.connection import Client
from streamctl.core.models import Entry
from streamctl.core.models_repairs import (
    ACKED,
    DELETED_WHILE_PENDING,
    GONE,
    NOT_DELIVERED,
    PENDING,
    DeadLetterCopy,
    GroupTrace,
    TraceReport,
)
from streamctl.core.streams import read_range
from streamctl.core.wire import raw_command, raw_pipeline, stream_exists, text, xinfo_groups
from streamctl.ids import StreamId


def trace_entry(client: Client, stream: str, entry_id: str, dlqs: Sequence[str]) -> TraceReport:
    """The entry `entry_id` (a full id) of `stream`: envelope, per-group state and dead-letter
    copies in `dlqs`. A missing stream or dead-letter stream is simply empty; a key of another
    type is ServerRefused."""
    exists = stream_exists(client, stream)
    entry: Entry | None = None
    groups: list[GroupTrace] = []
    if exists:
        reply = raw_command(client, "XRANGE", stream, entry_id, entry_id)
        entry = Entry.from_raw(stream, reply[0]) if reply else None
        groups = _group_states(client, stream, entry_id, present=entry is not None)
    copies: list[DeadLetterCopy] = []
    for dlq in dict.fromkeys(dlqs):
        if stream_exists(client, dlq):
            copies.extend(find_dead_letter_copies(client, dlq, stream, entry_id))
    return TraceReport(
        stream=stream,
        id=entry_id,
        stream_exists=exists,
        entry=entry,
        groups=tuple(groups),
        dead_letters=tuple(copies),
        dlqs=tuple(dict.fromkeys(dlqs)),
    )


def _group_states(client: Client, stream: str, entry_id: str, *, present: bool) -> list[GroupTrace]:
    infos = xinfo_groups(client, stream)
    names = [text(g["name"]) for g in infos]
    replies = raw_pipeline(
        client, [("XPENDING", stream, name, entry_id, entry_id, 1) for name in names]
    )
    wanted = StreamId.parse(entry_id)
    out: list[GroupTrace] = []
    for info, name, reply in zip(infos, names, replies, strict=True):
        if isinstance(reply, ResponseError):
            continue  # destroyed between XINFO and XPENDING: no longer a group of the stream
        last = text(info["last-delivered-id"])
        if reply:
            _, consumer, idle, deliveries = reply[0]
            out.append(
                GroupTrace(
                    name,
                    PENDING if present else DELETED_WHILE_PENDING,
                    last,
                    consumer=text(consumer),
                    deliveries=int(deliveries),
                    idle_ms=int(idle),
                )
            )
        elif not present:
            out.append(GroupTrace(name, GONE, last))
        elif wanted > StreamId.parse(last):
            out.append(GroupTrace(name, NOT_DELIVERED, last))
        else:
            out.append(GroupTrace(name, ACKED, last))
    return out


def find_dead_letter_copies(
    client: Client, dlq: str, stream: str, entry_id: str
) -> list[DeadLetterCopy]:
    """The entries of `dlq` whose dlq_stream is `stream` and dlq_id is `entry_id` (a full scan,
    in batches)."""
    want_stream, want_id = stream.encode("utf-8", "surrogateescape"), entry_id.encode()
    found: list[DeadLetterCopy] = []
    for batch in read_range(client, dlq, check_exists=False):
        for eid, flat in batch.entries:
            fields = dict(zip(flat[0::2], flat[1::2], strict=False))
            if fields.get(b"dlq_stream") != want_stream or fields.get(b"dlq_id") != want_id:
                continue
            deliveries = fields.get(b"dlq_deliveries")
            group, consumer = fields.get(b"dlq_group"), fields.get(b"dlq_consumer")
            found.append(
                DeadLetterCopy(
                    dlq=dlq,
                    id=text(eid),
                    group=group.decode("utf-8", "replace") if group is not None else None,
                    consumer=consumer.decode("utf-8", "replace") if consumer is not None else None,
                    deliveries=int(deliveries) if deliveries and deliveries.isdigit() else None,
                )
            )
    return found
