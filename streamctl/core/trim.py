"""trim: plan what a trim removes, check it against every consumer group, then remove exactly that.

A trim is planned first: the range it removes (first and last id, how many entries) is read from
the stream, then compared with each group's last-delivered id and pending entries. The trim itself
is sent as `XTRIM stream MINID = <the id after the last planned entry>` (also for `--maxlen`), so
what is removed is what was planned and checked, even while producers keep appending.

Counting entries needs reading them (Redis has no range count); counting walks both sides of a
split at once and stops with the shorter one, so the cost is the smaller side, not the stream.
The result models (GroupHold, TrimPlan, TrimResult) are in core.models_transfer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamctl.core.models_transfer import GroupHold, Strategy, TrimPlan, TrimResult
from streamctl.core.wire import pairs, raw_command, raw_pipeline, require_stream, text
from streamctl.errors import BadInput, Refused, ServerRefused
from streamctl.ids import MAX_ID, StreamId, resolve_minid
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.core.connection import Client

COUNT_BATCH = 10_000
EXISTS_BATCH = 1_000
ACKED_MIN_VERSION = (8, 2)


class RangeWalk:
    """Steps through XRANGE lo..hi (inclusive ids) a batch at a time, counting entries."""

    def __init__(self, client: Client, stream: str, lo: StreamId, hi: StreamId) -> None:
        self.client = client
        self.stream = stream
        self.next_start: StreamId | None = lo if lo <= hi else None
        self.hi = hi
        self.count = 0
        self.last: bytes | None = None

    @property
    def done(self) -> bool:
        return self.next_start is None

    def step(self, limit: int = COUNT_BATCH) -> list[Any]:
        if self.next_start is None:
            return []
        reply = raw_command(
            self.client, "XRANGE", self.stream, str(self.next_start), str(self.hi), "COUNT", limit
        )
        self.count += len(reply)
        if reply:
            self.last = reply[-1][0]
        if len(reply) < limit:
            self.next_start = None
        else:
            last = StreamId.parse(reply[-1][0])
            self.next_start = None if last >= self.hi or last == MAX_ID else last.next()
        return list(reply)


def count_from(
    client: Client, stream: str, lo: StreamId, hi: StreamId, total: int, split: StreamId
) -> int:
    """Entries in [split, hi], knowing that [lo, hi] holds `total`: both sides of the split are
    walked in turn and the first to finish answers, so the cost is the smaller side."""
    if split > hi:
        return 0
    if split <= lo:
        return total
    left = RangeWalk(client, stream, lo, split.previous())
    right = RangeWalk(client, stream, split, hi)
    while True:
        left.step()
        if left.done:
            return max(0, total - left.count)
        right.step()
        if right.done:
            return right.count


def nth_id(
    client: Client, stream: str, n: int, *, from_end: bool = False, bound: str | None = None
) -> str | None:
    """The id of the n-th entry (1-based) from the start, or from the end (counting from `bound`,
    inclusive, when given)."""
    remaining = n
    if bound is None:
        bound = "+" if from_end else "-"
    while remaining > 0:
        batch = min(COUNT_BATCH, remaining)
        if from_end:
            reply = raw_command(client, "XREVRANGE", stream, bound, "-", "COUNT", batch)
        else:
            reply = raw_command(client, "XRANGE", stream, bound, "+", "COUNT", batch)
        if not reply:
            return None
        remaining -= len(reply)
        if remaining <= 0:
            return text(reply[-1][0])
        if len(reply) < batch:
            return None
        last = StreamId.parse(reply[-1][0])
        bound = str(last.previous() if from_end else last.next())
    return None


@dataclass(frozen=True)
class Snapshot:
    length: int
    first_id: str | None
    last_id: str | None


def snapshot(client: Client, stream: str) -> Snapshot:
    """Length, first and last id read atomically (MULTI/EXEC)."""
    replies = raw_pipeline(
        client,
        [
            ("MULTI",),
            ("XLEN", stream),
            ("XRANGE", stream, "-", "+", "COUNT", 1),
            ("XREVRANGE", stream, "+", "-", "COUNT", 1),
            ("EXEC",),
        ],
    )
    result = replies[-1]
    if isinstance(result, Exception):
        raise ServerRefused(f"the server refused: {result}")
    length, first, last = result
    return Snapshot(
        int(length),
        text(first[0][0]) if first else None,
        text(last[0][0]) if last else None,
    )


def group_positions(client: Client, stream: str) -> list[tuple[str, str]]:
    """(name, last-delivered id) of every group of the stream (XINFO GROUPS)."""
    reply = raw_command(client, "XINFO", "GROUPS", stream)
    out = []
    for raw in reply:
        g = pairs(raw)
        out.append((text(g["name"]), text(g["last-delivered-id"])))
    return out


def pending_ids(
    client: Client, stream: str, group: str, lo: StreamId, hi: StreamId, *, batch: int = COUNT_BATCH
) -> Iterator[list[Any]]:
    """The group's PEL entries [id, consumer, idle, deliveries] with ids in [lo, hi], in pages."""
    start = lo
    while start <= hi:
        reply = raw_command(client, "XPENDING", stream, group, str(start), str(hi), batch)
        if not reply:
            return
        yield list(reply)
        if len(reply) < batch:
            return
        last = StreamId.parse(reply[-1][0])
        if last >= hi or last == MAX_ID:
            return
        start = last.next()


def existing_ids(client: Client, stream: str, ids: list[bytes]) -> list[bytes]:
    """Those of `ids` still in the stream (a pending entry may have been deleted)."""
    out: list[bytes] = []
    for i in range(0, len(ids), EXISTS_BATCH):
        chunk = ids[i : i + EXISTS_BATCH]
        replies = raw_pipeline(client, [("XRANGE", stream, e, e) for e in chunk])
        out.extend(
            e for e, rep in zip(chunk, replies, strict=True) if isinstance(rep, list) and rep
        )
    return out


# ---- capability ----


def acked_policy_supported(client: Client) -> tuple[bool, str]:
    """(supported, 'redis 8.2.3'): XTRIM ... ACKED exists on Redis >= 8.2 only."""
    from streamctl.core.connection import server_version

    name, version = server_version(client)
    label = f"{name} {'.'.join(str(p) for p in version)}"
    return name == "redis" and version[:2] >= ACKED_MIN_VERSION, label


def require_acked_policy(client: Client) -> None:
    supported, label = acked_policy_supported(client)
    if not supported:
        raise ServerRefused(
            f"--acked-only needs the ACKED trim policy of Redis >= 8.2; this server is {label} "
            "(without it, trim refuses to remove entries a group still needs unless --force)"
        )


# ---- plan ----


def plan_trim(
    client: Client,
    stream: str,
    *,
    maxlen: int | None = None,
    minid: str | None = None,
    older_than_ms: int | None = None,
    approx: bool = False,
    acked_only: bool = False,
) -> TrimPlan:
    """What the trim would remove and what each group still needs of it (nothing is changed)."""
    from streamctl.core.connection import server_time_ms

    given = sum(x is not None for x in (maxlen, minid, older_than_ms))
    if given != 1:
        raise BadInput("give exactly one of --maxlen N, --minid ID|TIME or --older-than DURATION")
    if maxlen is not None and maxlen < 0:
        raise BadInput(f"bad --maxlen {maxlen}: give a count of 0 or more")
    if older_than_ms is not None and older_than_ms < 0:
        raise BadInput("bad --older-than: give a duration of 0 or more")
    require_stream(client, stream)
    if acked_only:
        require_acked_policy(client)
    now = server_time_ms(client)

    strategy: Strategy
    if maxlen is not None:
        strategy, threshold = "maxlen", str(maxlen)
    elif minid is not None:
        strategy, threshold = "minid", resolve_minid(minid, lambda: now)
    else:
        assert older_than_ms is not None
        strategy, threshold = "minid", f"{max(0, now - older_than_ms)}-0"

    snap = snapshot(client, stream)
    count, last_removed = _removed_range(client, stream, snap, strategy, threshold, maxlen)
    holds: tuple[GroupHold, ...] = ()
    acked_count: int | None = None
    if count and snap.first_id is not None and last_removed is not None:
        lo, hi = StreamId.parse(snap.first_id), StreamId.parse(last_removed)
        holds, union_pending = _group_holds(client, stream, lo, hi, count, collect=acked_only)
        if acked_only:
            acked_count = _acked_count(holds, count, union_pending)
    return TrimPlan(
        stream=stream,
        strategy=strategy,
        threshold=threshold,
        approx=approx,
        acked_only=acked_only,
        length=snap.length,
        count=count,
        first_id=snap.first_id if count else None,
        last_id=last_removed if count else None,
        holds=holds,
        acked_count=acked_count,
        now_ms=now,
        older_than_ms=older_than_ms,
    )


def _removed_range(
    client: Client,
    stream: str,
    snap: Snapshot,
    strategy: Strategy,
    threshold: str,
    maxlen: int | None,
) -> tuple[int, str | None]:
    """(how many entries go, the last id that goes)."""
    if snap.length == 0 or snap.first_id is None or snap.last_id is None:
        return 0, None
    first, last = StreamId.parse(snap.first_id), StreamId.parse(snap.last_id)
    if strategy == "maxlen":
        assert maxlen is not None
        k = snap.length - maxlen
        if k <= 0:
            return 0, None
        # the k-th entry from the start is the (maxlen+1)-th from the end: walk the shorter way
        if k <= maxlen + 1:
            boundary = nth_id(client, stream, k)
        else:
            boundary = nth_id(client, stream, maxlen + 1, from_end=True, bound=snap.last_id)
        return (k, boundary) if boundary is not None else (0, None)
    split = StreamId.parse(threshold)
    if split <= first:
        return 0, None
    if split > last:
        return snap.length, snap.last_id
    kept = count_from(client, stream, first, last, snap.length, split)
    count = snap.length - kept
    if count <= 0:
        return 0, None
    reply = raw_command(client, "XREVRANGE", stream, str(split.previous()), "-", "COUNT", 1)
    return count, (text(reply[0][0]) if reply else None)


def _group_holds(
    client: Client, stream: str, lo: StreamId, hi: StreamId, count: int, *, collect: bool
) -> tuple[tuple[GroupHold, ...], set[bytes]]:
    holds = []
    union: set[bytes] = set()
    for name, delivered in group_positions(client, stream):
        delivered_id = StreamId.parse(delivered)
        undelivered = (
            0
            if delivered_id >= hi
            else count_from(client, stream, lo, hi, count, delivered_id.next())
        )
        pending = 0
        for page in pending_ids(client, stream, name, lo, hi):
            present = existing_ids(client, stream, [p[0] for p in page])
            pending += len(present)
            if collect:
                union.update(present)
        holds.append(GroupHold(name, delivered, undelivered, pending))
    return tuple(holds), union


def _acked_count(holds: tuple[GroupHold, ...], count: int, union_pending: set[bytes]) -> int:
    """Entries every group has read and acknowledged: not after any group's last-delivered id and
    in no PEL (what XTRIM ... ACKED removes)."""
    if not holds:
        return count
    min_delivered = min(StreamId.parse(h.last_delivered_id) for h in holds)
    undelivered = max(h.undelivered for h in holds)
    pending_delivered = sum(1 for p in union_pending if StreamId.parse(p) <= min_delivered)
    return max(0, count - undelivered - pending_delivered)


# ---- execute ----


def refusal_message(plan: TrimPlan) -> str:
    parts = []
    for h in plan.blocking:
        needs = []
        if h.undelivered:
            needs.append(f"{h.undelivered:,} not yet delivered")
        if h.pending:
            needs.append(f"{h.pending:,} pending")
        parts.append(f"group {h.group!r} has {' and '.join(needs)}")
    return (
        f"refusing to trim {plan.stream!r}: "
        f"of the {count_noun(plan.count, 'entry', 'entries')} that would go, "
        + ", ".join(parts)
        + "; rerun with --force to trim anyway, or with --acked-only (Redis >= 8.2) to trim only "
        "what every group has acknowledged"
    )


def trim_command(plan: TrimPlan) -> list[Any]:
    minid = plan.trim_minid
    assert minid is not None
    args: list[Any] = ["XTRIM", plan.stream, "MINID", "~" if plan.approx else "=", minid]
    if plan.acked_only:
        args.append("ACKED")
    return args


def execute_trim(client: Client, plan: TrimPlan, *, force: bool = False) -> TrimResult:
    """Remove the planned range. Refuses (exit 6) when a group still needs part of it, unless
    `force`; with --acked-only the server keeps those entries itself, so nothing is refused."""
    if plan.blocking and not force and not plan.acked_only:
        raise Refused(refusal_message(plan))
    if plan.trim_minid is None:
        return TrimResult(plan, dry_run=False, forced=force, removed=0, length_after=plan.length)
    from redis.exceptions import ResponseError

    replies = raw_pipeline(client, [tuple(trim_command(plan)), ("XLEN", plan.stream)])
    removed, length = replies
    if isinstance(removed, ResponseError):
        raise ServerRefused(f"the server refused the trim of {plan.stream!r}: {removed}")
    return TrimResult(
        plan,
        dry_run=False,
        forced=force,
        removed=int(removed),
        length_after=int(length) if isinstance(length, int) else None,
    )


def trim(
    client: Client,
    stream: str,
    *,
    maxlen: int | None = None,
    minid: str | None = None,
    older_than_ms: int | None = None,
    approx: bool = False,
    acked_only: bool = False,
    dry_run: bool = False,
    force: bool = False,
) -> TrimResult:
    """Plan, check against the groups, and (unless dry_run) trim."""
    plan = plan_trim(
        client,
        stream,
        maxlen=maxlen,
        minid=minid,
        older_than_ms=older_than_ms,
        approx=approx,
        acked_only=acked_only,
    )
    if dry_run:
        return TrimResult(plan, dry_run=True, forced=force)
    return execute_trim(client, plan, force=force)
