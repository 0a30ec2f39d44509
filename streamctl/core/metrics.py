"""metrics: one reading of every matching stream and group, for Prometheus.

A scrape is SCAN (TYPE stream) on every primary, then per node and per batch of BATCH streams
two pipelined round trips: TIME, XINFO STREAM and XINFO GROUPS for each stream; then XPENDING
(the oldest pending entry, for its idle time) for each group holding pending entries and, when
asked, XINFO CONSUMERS for each group. Raw replies are dropped batch by batch: memory grows
with the streams reported (at most `max_streams`), not with the keyspace.

When the server does not answer (cannot connect, times out, the connection drops twice), the
snapshot says `up=False` and holds nothing else: a monitoring system records the outage instead
of a scrape error.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.exceptions import ResponseError

from streamctl.core.connection import Client, primaries, translate_error
from streamctl.core.groups import behind_ms, group_lag
from streamctl.core.models_monitoring import (
    ConsumerMetrics,
    GroupMetrics,
    MetricsSnapshot,
    StreamMetrics,
)
from streamctl.core.wire import raw_pipeline
from streamctl.errors import BadInput, ConnectionFailed
from streamctl.ids import id_ms

BATCH = 1000
SCAN_COUNT = 1000
DEFAULT_MAX_STREAMS = 10_000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _record(reply: list[Any]) -> dict[bytes, Any]:
    """A flat [field, value, ...] reply as a dict keyed by the raw field names (bytes: no
    decoding of the ~20 fields of each reply, which a scrape of thousands of streams feels)."""
    return dict(zip(reply[::2], reply[1::2], strict=True))


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def collect_metrics(
    client: Client,
    pattern: str = "*",
    *,
    group: str | None = None,
    consumers: bool = False,
    max_streams: int = DEFAULT_MAX_STREAMS,
) -> MetricsSnapshot:
    """Read the metrics of the streams matching the glob `pattern` (every primary of a
    cluster), sorted by name; only the streams having group `group` and only that group when
    given. At most `max_streams` streams (the first by name): `truncated` says when more
    matched. `consumers` adds each group's consumers."""
    if max_streams < 1:
        raise BadInput(f"bad max_streams {max_streams}: give a number of streams of 1 or more")
    started = time.monotonic()
    for attempt in (1, 2):
        try:
            streams, truncated = _collect(client, pattern, group, consumers, max_streams)
            break
        except (redis.RedisError, OSError, ConnectionFailed) as exc:
            # a connection the server dropped (it restarted between two scrapes) is worth one
            # fresh try; a timeout is not (--timeout is the whole wait)
            retry = isinstance(exc, redis.ConnectionError) and not isinstance(
                exc, redis.TimeoutError
            )
            if attempt == 1 and retry:
                continue
            mapped = translate_error(exc, client=client)
            if isinstance(mapped, ConnectionFailed):
                return MetricsSnapshot(
                    up=False, duration_s=time.monotonic() - started, error=mapped.message
                )
            if mapped is not None and mapped is not exc:
                raise mapped from None
            raise
    return MetricsSnapshot(
        up=True,
        streams=tuple(streams),
        truncated=truncated,
        duration_s=time.monotonic() - started,
    )


def _scan(nodes: list[Client], pattern: str, max_streams: int) -> tuple[dict[str, int], bool]:
    """{stream name: index of its node} for the first `max_streams` names, and whether more
    matched. Holds at most twice `max_streams` names at any time."""
    found: dict[str, int] = {}
    truncated = False

    def keep_first() -> None:
        nonlocal found, truncated
        if len(found) > max_streams:
            truncated = True
            found = dict(sorted(found.items())[:max_streams])

    for index, node in enumerate(nodes):
        cursor: int = 0
        while True:
            cursor, keys = node.scan(cursor, match=pattern, count=SCAN_COUNT, _type="stream")
            for key in keys:
                found[_text(key)] = index
            if len(found) > 2 * max_streams:
                keep_first()
            if int(cursor) == 0:
                break
    keep_first()
    return found, truncated


def _collect(
    client: Client, pattern: str, group: str | None, consumers: bool, max_streams: int
) -> tuple[list[StreamMetrics], bool]:
    nodes = primaries(client)
    found, truncated = _scan(nodes, pattern, max_streams)
    by_node: list[list[str]] = [[] for _ in nodes]
    for name, index in found.items():
        by_node[index].append(name)
    out: list[StreamMetrics] = []
    for node, names in zip(nodes, by_node, strict=True):
        names.sort()
        for start in range(0, len(names), BATCH):
            out.extend(_read_batch(node, names[start : start + BATCH], group, consumers))
    out.sort(key=lambda s: s.name)
    return out, truncated


def _read_batch(
    node: Client, names: list[str], only_group: str | None, consumers: bool
) -> list[StreamMetrics]:
    commands: list[tuple[Any, ...]] = [("TIME",)]
    for name in names:
        commands.append(("XINFO", "STREAM", name))
        commands.append(("XINFO", "GROUPS", name))
    replies = raw_pipeline(node, commands)
    clock = replies[0]
    if isinstance(clock, Exception):
        raise clock
    now_ms = int(clock[0]) * 1000 + int(clock[1]) // 1000

    # (name, XINFO STREAM record, its group records) of the streams still there and readable
    wanted = only_group.encode("utf-8", "surrogateescape") if only_group is not None else None
    found: list[tuple[str, dict[bytes, Any], list[dict[bytes, Any]]]] = []
    for i, name in enumerate(names):
        info, groups = replies[1 + 2 * i], replies[2 + 2 * i]
        if isinstance(info, Exception) or isinstance(groups, Exception):
            continue  # deleted or replaced since the SCAN, or refused (NOPERM) for this key
        records = [_record(g) for g in groups]
        if only_group is not None:
            records = [g for g in records if g[b"name"] == wanted]
            if not records:
                continue
        found.append((name, _record(info), records))
    del replies

    second: list[tuple[Any, ...]] = []
    for name, _, records in found:
        for g in records:
            if int(g[b"pending"]):
                second.append(("XPENDING", name, g[b"name"], "-", "+", 1))
            if consumers:
                second.append(("XINFO", "CONSUMERS", name, g[b"name"]))
    more = iter(raw_pipeline(node, second))

    out: list[StreamMetrics] = []
    for name, info, records in found:
        first, last = info.get(b"first-entry"), info.get(b"last-entry")
        edges = (_text(first[0]) if first else None, _text(last[0]) if last else None)
        groups_out: list[GroupMetrics] = []
        for g in records:
            oldest_idle = 0
            if int(g[b"pending"]):
                pel = next(more)
                if isinstance(pel, list) and pel:
                    oldest_idle = int(pel[0][2])
            consumer_list: tuple[ConsumerMetrics, ...] | None = None
            if consumers:
                reply = next(more)
                consumer_list = (
                    tuple(_consumer(c) for c in reply) if isinstance(reply, list) else ()
                )
            groups_out.append(_group(node, name, g, edges, oldest_idle, consumer_list))
        out.append(
            StreamMetrics(
                name=name,
                length=int(info[b"length"]),
                entries_added=_opt_int(info.get(b"entries-added")),
                oldest_entry_age_ms=max(0, now_ms - id_ms(edges[0])) if edges[0] else None,
                newest_entry_age_ms=max(0, now_ms - id_ms(edges[1])) if edges[1] else None,
                groups=tuple(sorted(groups_out, key=lambda g: g.name)),
            )
        )
    return out


def _consumer(raw: list[Any]) -> ConsumerMetrics:
    c = _record(raw)
    return ConsumerMetrics(
        name=_text(c[b"name"]), pending=int(c[b"pending"]), idle_ms=int(c[b"idle"])
    )


def _group(
    node: Client,
    stream: str,
    g: dict[bytes, Any],
    edges: tuple[str | None, str | None],
    oldest_idle: int,
    consumer_list: tuple[ConsumerMetrics, ...] | None,
) -> GroupMetrics:
    last_delivered = _text(g[b"last-delivered-id"])
    lag: int | None
    try:  # counted with XRANGE only where the server reports no lag (as `group ls` does)
        lag, computed = group_lag(node, stream, last_delivered, _opt_int(g.get(b"lag")), edges)
    except ResponseError:
        lag, computed = None, False  # the stream went away while it was counted
    return GroupMetrics(
        name=_text(g[b"name"]),
        consumers=int(g[b"consumers"]),
        pending=int(g[b"pending"]),
        lag=lag,
        lag_computed=computed,
        entries_read=_opt_int(g.get(b"entries-read")),
        oldest_pending_idle_ms=oldest_idle,
        behind_ms=behind_ms(last_delivered, lag, edges) if lag is not None else None,
        consumer_list=consumer_list,
    )
