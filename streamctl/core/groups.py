"""Consumer groups: list (with lag and behind), and the group commands."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from streamctl.core.connection import Client
from streamctl.core.models import GroupInfo
from streamctl.core.streams import _pairs_to_dict, _text, raw_command, raw_pipeline, require_stream
from streamctl.errors import NotFound, ServerRefused
from streamctl.ids import StreamId, id_ms

COUNT_BATCH = 10_000


def count_entries_after(client: Client, stream: str, after_id: str) -> int:
    """How many entries have an id greater than `after_id` (XRANGE in batches, ids only counted)."""
    start = str(StreamId.parse(after_id).next())
    total = 0
    while True:
        reply = raw_command(client, "XRANGE", stream, start, "+", "COUNT", COUNT_BATCH)
        total += len(reply)
        if len(reply) < COUNT_BATCH:
            return total
        start = str(StreamId.parse(reply[-1][0]).next())


def _edges(client: Client, stream: str) -> tuple[str | None, str | None]:
    first, last = raw_pipeline(
        client,
        [("XRANGE", stream, "-", "+", "COUNT", 1), ("XREVRANGE", stream, "+", "-", "COUNT", 1)],
    )
    first_id = _text(first[0][0]) if isinstance(first, list) and first else None
    last_id = _text(last[0][0]) if isinstance(last, list) and last else None
    return first_id, last_id


def group_lag(
    client: Client,
    stream: str,
    last_delivered: str,
    server_lag: int | None,
    edges: tuple[str | None, str | None],
) -> tuple[int, bool]:
    """(lag, computed): the server's value when it has one, else counted from the stream."""
    if server_lag is not None:
        return server_lag, False
    first_id, last_id = edges
    if last_id is None:
        return 0, True
    delivered = StreamId.parse(last_delivered)
    if delivered >= StreamId.parse(last_id):
        return 0, True
    return count_entries_after(client, stream, last_delivered), True


def behind_ms(last_delivered: str, lag: int, edges: tuple[str | None, str | None]) -> int | None:
    """Time from the last delivered entry to the newest entry (0 when caught up)."""
    first_id, last_id = edges
    if last_id is None or lag == 0:
        return 0
    delivered_ms = id_ms(last_delivered)
    if delivered_ms == 0 and first_id is not None:
        delivered_ms = id_ms(first_id)
    return max(0, id_ms(last_id) - delivered_ms)


def _xinfo_groups(client: Client, stream: str) -> list[dict[str, Any]]:
    try:
        reply = raw_command(client, "XINFO", "GROUPS", stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            raise NotFound(f"stream {stream!r} does not exist") from None
        if str(exc).startswith("WRONGTYPE"):
            raise ServerRefused(f"WRONGTYPE: key {stream!r} is not a stream") from None
        raise
    return [_pairs_to_dict(g) for g in reply]


def list_groups(client: Client, stream: str, *, check_exists: bool = True) -> list[GroupInfo]:
    """Every group of a stream with lag (computed when the server reports nil) and behind."""
    if check_exists:
        require_stream(client, stream)
    raw_groups = _xinfo_groups(client, stream)
    if not raw_groups:
        return []
    edges = _edges(client, stream)
    groups = []
    for g in raw_groups:
        last_delivered = _text(g["last-delivered-id"])
        server_lag = g.get("lag")
        lag, computed = group_lag(
            client,
            stream,
            last_delivered,
            int(server_lag) if server_lag is not None else None,
            edges,
        )
        entries_read = g.get("entries-read")
        groups.append(
            GroupInfo(
                stream=stream,
                name=_text(g["name"]),
                consumers=int(g["consumers"]),
                pending=int(g["pending"]),
                last_delivered_id=last_delivered,
                entries_read=int(entries_read) if entries_read is not None else None,
                lag=lag,
                lag_computed=computed,
                behind_ms=behind_ms(last_delivered, lag, edges),
            )
        )
    return groups


def get_group(client: Client, stream: str, group: str) -> GroupInfo:
    """One group, or NotFound naming the stream or the group."""
    for g in list_groups(client, stream):
        if g.name == group:
            return g
    raise NotFound(f"group {group!r} does not exist on stream {stream!r}")
