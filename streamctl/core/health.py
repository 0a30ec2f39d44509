"""Health: `check` (thresholds per stream and group) and `top` (snapshots and the rates between
them).

check
    Each stream yields a `length` result; each of its groups `lag`, `pending`, `idle_ms` (how long
    the idlest pending entry has waited since its last delivery) and `behind_ms` (newest entry's
    time minus the last delivered entry's time). Only the metrics with a threshold are reported,
    or every metric (threshold None, status ok) when no threshold is given. A value breaches its
    threshold when it is greater than it: `--max-lag 0` means "no lag".

    `idle_ms` is exact: the whole PEL is read with XPENDING's extended form, in pages, up to
    PEL_SCAN_LIMIT entries. Past that limit the value is the largest idle seen among the oldest
    PEL_SCAN_LIMIT entries (a lower bound), and the status comes from `XPENDING ... IDLE max+1`,
    which the server answers exactly over the whole PEL.

top
    `take_snapshot` reads every matching stream and group in two pipelines (counters only);
    `RateTracker.update` turns consecutive snapshots into rates: incoming from the deltas of
    `entries-added`, outgoing from the deltas of `entries-read` (entries added minus lag while
    the server reports entries-read as nil, as it does for a new group until it reads), per
    second of server time, and keeps the last minute of them for sparklines.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from streamctl.core.connection import Client
from streamctl.core.fleet import GroupState, PendingIdle, describe_streams, scan_names
from streamctl.core.models_health import (
    BREACHED,
    GROUP_CHECKS,
    OK,
    STREAM_CHECKS,
    CheckReport,
    CheckResult,
    GroupRates,
    StreamRates,
    Thresholds,
    TopReport,
)
from streamctl.core.wire import raw_command, require_stream, text
from streamctl.errors import NotFound, ServerRefused
from streamctl.ids import id_ms

PEL_PAGE = 1000
PEL_SCAN_LIMIT = 1_000_000


# ---------------------------------------------------------------- check


def pending_idle(
    client: Client,
    stream: str,
    group: str,
    *,
    page: int = PEL_PAGE,
    limit: int | None = None,
) -> PendingIdle:
    """The largest idle time in the group's PEL, paging XPENDING by id (exclusive starts), up to
    `limit` entries (default PEL_SCAN_LIMIT)."""
    if limit is None:
        limit = PEL_SCAN_LIMIT
    start = "-"
    scanned = 0
    best: int | None = None
    best_id: str | None = None
    while scanned < limit:
        n = min(page, limit - scanned)
        try:
            reply = raw_command(client, "XPENDING", stream, group, start, "+", n)
        except ResponseError as exc:
            if str(exc).startswith("NOGROUP"):
                raise NotFound(f"group {group!r} does not exist on stream {stream!r}") from None
            raise
        for eid, _consumer, idle, _deliveries in reply:
            if best is None or int(idle) > best:
                best, best_id = int(idle), text(eid)
        scanned += len(reply)
        if len(reply) < n:
            return PendingIdle(scanned, best, best_id, True)
        start = "(" + text(reply[-1][0])
    return PendingIdle(scanned, best, best_id, False)


def idle_breached(client: Client, stream: str, group: str, max_idle_ms: int) -> bool:
    """Whether any pending entry has been idle longer than max_idle_ms (exact, one command)."""
    reply = raw_command(client, "XPENDING", stream, group, "IDLE", max_idle_ms + 1, "-", "+", 1)
    return bool(reply)


def _status(value: int | None, limit: int | None) -> str:
    if limit is None or value is None:
        return OK
    return BREACHED if value > limit else OK


def check_streams(
    client: Client,
    streams: list[str] | None,
    *,
    thresholds: Thresholds,
    group: str | None = None,
) -> CheckReport:
    """Measure each stream (all of them when `streams` is empty) and its groups against the
    thresholds. A named stream that is missing raises NotFound (exit 4), as does `group` when a
    named stream lacks it, or when no stream at all has it. The streams are read in pipelined
    batches (core.fleet); only a PEL longer than one page is read on its own."""
    named = bool(streams)
    if streams:
        names = list(dict.fromkeys(streams))
        for name in names:
            require_stream(client, name)
    else:
        names = scan_names(client, "*")[0]
    want = {check: thresholds.wanted(check) for check in STREAM_CHECKS + GROUP_CHECKS}
    limits = {check: thresholds.limit(check) for check in STREAM_CHECKS + GROUP_CHECKS}
    want_length, want_lag, want_pending, want_idle, want_behind = (
        want["length"],
        want["lag"],
        want["pending"],
        want["idle_ms"],
        want["behind_ms"],
    )
    results: list[CheckResult] = []
    approximate: list[str] = []
    measured = 0

    def add(stream: str, grp: str | None, check: str, value: int | None, status: str = "") -> None:
        limit = limits[check]
        results.append(
            CheckResult(stream, grp, check, value, limit, status or _status(value, limit))
        )

    pel = min(PEL_PAGE, PEL_SCAN_LIMIT) if want_idle else 0
    seen = 0
    for s in describe_streams(client, names, only_group=group, pel=pel):
        if named:  # deleted since it was checked: as missing as before
            if names[seen] != s.name:
                raise NotFound(f"stream {names[seen]!r} does not exist")
            seen += 1
        if group is not None and not s.groups:
            if named:
                raise NotFound(f"group {group!r} does not exist on stream {s.name!r}")
            continue
        measured += 1
        if want_length:
            add(s.name, None, "length", s.length)
        for g in s.groups:
            if want_lag:
                add(s.name, g.name, "lag", g.lag)
            if want_pending:
                add(s.name, g.name, "pending", g.pending)
            if want_idle:
                add_idle(client, s.name, g, thresholds, add, approximate)
            if want_behind:
                add(s.name, g.name, "behind_ms", g.behind_ms)
    if named and seen < len(names):
        raise NotFound(f"stream {names[seen]!r} does not exist")
    if group is not None and not measured:
        raise NotFound(f"group {group!r} does not exist on any stream")
    return CheckReport(tuple(results), thresholds, tuple(approximate))


def add_idle(
    client: Client,
    stream: str,
    g: GroupState,
    thresholds: Thresholds,
    add: Callable[..., None],
    approximate: list[str],
) -> None:
    """The idle_ms result of a group: from the first PEL page read with the batch, or the whole
    PEL read in pages when it is longer than that."""
    if not g.pending:
        add(stream, g.name, "idle_ms", None)
        return
    idle = g.pel_idle
    if idle is None or not idle.complete:
        idle = pending_idle(client, stream, g.name)
    status = ""
    if not idle.complete:
        approximate.append(f"{stream}/{g.name}")
        if thresholds.max_idle_ms is not None:
            exceeded = idle_breached(client, stream, g.name, thresholds.max_idle_ms)
            status = BREACHED if exceeded else OK
    add(stream, g.name, "idle_ms", idle.max_idle_ms, status)


# ---------------------------------------------------------------- top: snapshots


@dataclass(frozen=True)
class GroupSample:
    name: str
    consumers: int
    pending: int
    lag: int | None
    lag_computed: bool
    entries_read: int | None
    last_delivered_id: str
    oldest_pending_id: str | None  # the smallest id in the PEL
    oldest_pending_idle_ms: int | None  # that entry's time since its last delivery


@dataclass(frozen=True)
class StreamSample:
    name: str
    length: int
    entries_added: int | None
    last_generated_id: str
    groups: tuple[GroupSample, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """Counters of every matching stream at one moment of the server's clock."""

    time_ms: int
    streams: tuple[StreamSample, ...]


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def take_snapshot(client: Client, pattern: str = "*") -> Snapshot:
    """One sample of every stream matching the glob: pipelined batches after SCAN (core.fleet)."""
    names = scan_names(client, pattern)[0]
    streams: list[StreamSample] = []
    now: int | None = None
    for s in describe_streams(client, names, pel=1):
        now = s.now_ms if now is None else now
        streams.append(
            StreamSample(
                name=s.name,
                length=s.length,
                entries_added=s.entries_added,
                last_generated_id=s.last_generated_id,
                groups=tuple(
                    GroupSample(
                        name=g.name,
                        consumers=g.consumers,
                        pending=g.pending,
                        lag=g.lag,
                        lag_computed=g.lag_computed,
                        entries_read=g.entries_read,
                        last_delivered_id=g.last_delivered_id,
                        oldest_pending_id=g.oldest_pending_id,
                        oldest_pending_idle_ms=g.oldest_pending_idle_ms,
                    )
                    for g in s.groups
                ),
            )
        )
    if now is None:
        now = server_time_ms_from(raw_command(client, "TIME"))
    return Snapshot(now, tuple(streams))


def server_time_ms_from(reply: Any) -> int:
    if isinstance(reply, Exception):
        raise ServerRefused(f"the server refused TIME: {reply}")
    sec, usec = reply
    return int(sec) * 1000 + int(usec) // 1000


# ---------------------------------------------------------------- top: rates


def rate(before: int | None, after: int | None, elapsed_ms: int) -> float | None:
    """Events per second between two counters; None when one is missing or the counter went
    back (the stream was recreated, or the group rewound with SETID)."""
    if before is None or after is None or elapsed_ms <= 0 or after < before:
        return None
    return (after - before) * 1000.0 / elapsed_ms


def read_position(stream: StreamSample, group: GroupSample) -> int | None:
    """How many of the stream's entries the group has read: `entries-read`, or when the server
    does not know it (a group created or moved without ENTRIESREAD), entries added minus lag."""
    if group.entries_read is not None:
        return group.entries_read
    if stream.entries_added is not None and group.lag is not None:
        return stream.entries_added - group.lag
    return None


class RateTracker:
    """Feed it snapshots in order; it returns the rates and keeps `window_ms` of history."""

    def __init__(self, window_ms: int = 60_000) -> None:
        self.window_ms = window_ms
        self.previous: Snapshot | None = None
        self._history: dict[tuple[str, ...], deque[tuple[int, float]]] = {}

    def _remember(self, key: tuple[str, ...], now: int, value: float | None) -> tuple[float, ...]:
        points = self._history.setdefault(key, deque())
        if value is not None:
            points.append((now, value))
        while points and points[0][0] <= now - self.window_ms:
            points.popleft()
        return tuple(v for _, v in points)

    def update(self, snap: Snapshot) -> TopReport:
        prev = self.previous
        elapsed = snap.time_ms - prev.time_ms if prev is not None else 0
        before_streams = {s.name: s for s in prev.streams} if prev is not None else {}
        seen: set[tuple[str, ...]] = set()
        rows: list[StreamRates] = []
        for s in snap.streams:
            old = before_streams.get(s.name)
            in_rate = rate(old.entries_added, s.entries_added, elapsed) if old else None
            before_groups = {g.name: g for g in old.groups} if old else {}
            group_rows: list[GroupRates] = []
            for g in s.groups:
                old_g = before_groups.get(g.name)
                out_rate = (
                    rate(read_position(old, old_g), read_position(s, g), elapsed)
                    if old is not None and old_g is not None
                    else None
                )
                group_key = ("group", s.name, g.name)
                seen.add(group_key)
                group_rows.append(
                    GroupRates(
                        name=g.name,
                        consumers=g.consumers,
                        pending=g.pending,
                        lag=g.lag,
                        lag_computed=g.lag_computed,
                        entries_read=g.entries_read,
                        out_rate=out_rate,
                        oldest_pending_id=g.oldest_pending_id,
                        oldest_pending_age_ms=(
                            max(0, snap.time_ms - id_ms(g.oldest_pending_id))
                            if g.oldest_pending_id
                            else None
                        ),
                        oldest_pending_idle_ms=g.oldest_pending_idle_ms,
                        history=self._remember(group_key, snap.time_ms, out_rate),
                    )
                )
            stream_key = ("stream", s.name)
            seen.add(stream_key)
            rows.append(
                StreamRates(
                    name=s.name,
                    length=s.length,
                    entries_added=s.entries_added,
                    in_rate=in_rate,
                    groups=tuple(group_rows),
                    history=self._remember(stream_key, snap.time_ms, in_rate),
                )
            )
        for gone in set(self._history) - seen:
            del self._history[gone]
        self.previous = snap
        return TopReport(
            snap.time_ms, elapsed if prev is not None else None, tuple(rows), self.window_ms
        )


def sample_rates(
    client: Client,
    pattern: str,
    interval: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> TopReport:
    """Two snapshots `interval` seconds apart and the rates between them (`top --once`)."""
    tracker = RateTracker()
    tracker.update(take_snapshot(client, pattern))
    sleep(interval)
    return tracker.update(take_snapshot(client, pattern))


__all__ = [
    "CheckReport",
    "CheckResult",
    "GroupRates",
    "GroupSample",
    "PendingIdle",
    "RateTracker",
    "Snapshot",
    "StreamRates",
    "StreamSample",
    "Thresholds",
    "TopReport",
    "check_streams",
    "pending_idle",
    "sample_rates",
    "take_snapshot",
]
