"""metrics: one reading of every matching stream and group, for Prometheus.

A scrape is core.fleet's reading of many streams: SCAN (TYPE stream) on every primary, then per
batch of streams pipelined XINFO STREAM and XINFO GROUPS, XPENDING (the oldest pending entry,
for its idle time) for each group holding pending entries and, when asked, XINFO CONSUMERS.
Memory grows with the streams reported (at most `max_streams`), not with the keyspace.

When the server does not answer (cannot connect, times out, the connection drops twice), the
snapshot says `up=False` and holds nothing else: a monitoring system records the outage instead
of a scrape error.
"""

from __future__ import annotations

import time

import redis

from streamctl.core.connection import Client, translate_error
from streamctl.core.fleet import describe_streams, scan_names
from streamctl.core.models_monitoring import GroupMetrics, MetricsSnapshot, StreamMetrics
from streamctl.errors import BadInput, ConnectionFailed
from streamctl.ids import id_ms

DEFAULT_MAX_STREAMS = 10_000


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


def _collect(
    client: Client, pattern: str, group: str | None, consumers: bool, max_streams: int
) -> tuple[list[StreamMetrics], bool]:
    names, truncated = scan_names(client, pattern, max_streams)
    out: list[StreamMetrics] = []
    for s in describe_streams(client, names, only_group=group, pel=1, consumers=consumers):
        if group is not None and not s.groups:
            continue
        out.append(
            StreamMetrics(
                name=s.name,
                length=s.length,
                entries_added=s.entries_added,
                oldest_entry_age_ms=max(0, s.now_ms - id_ms(s.first_id)) if s.first_id else None,
                newest_entry_age_ms=max(0, s.now_ms - id_ms(s.last_id)) if s.last_id else None,
                groups=tuple(
                    GroupMetrics(
                        name=g.name,
                        consumers=g.consumers,
                        pending=g.pending,
                        lag=g.lag,
                        lag_computed=g.lag_computed,
                        entries_read=g.entries_read,
                        oldest_pending_idle_ms=g.oldest_pending_idle_ms or 0,
                        behind_ms=g.behind_ms,
                        consumer_list=g.consumer_list,
                    )
                    for g in s.groups
                ),
            )
        )
    return out, truncated
