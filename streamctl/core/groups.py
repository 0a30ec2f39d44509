"""Consumer groups: list (with lag and behind), create, destroy, setid, consumers, delconsumer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from streamctl.core.connection import Client
from streamctl.core.models import GroupInfo
from streamctl.core.models_groups import (
    Consumer,
    DelConsumerResult,
    GroupCreateResult,
    GroupDestroyResult,
    SetIdPlan,
)
from streamctl.core.wire import (
    eval_script,
    pairs,
    raw_command,
    raw_pipeline,
    require_group,
    require_stream,
    stream_refusal,
    text,
    xinfo_groups,
)
from streamctl.errors import BadInput, NotFound, Refused, ServerRefused
from streamctl.ids import MAX_ID, MIN_ID, Position, StreamId, id_ms, resolve_start
from streamctl.wording import count_noun

COUNT_BATCH = 10_000


# ---- counting and lag ----


def count_range(client: Client, stream: str, after_id: str, through_id: str = "+") -> int:
    """How many entries have an id > `after_id` and <= `through_id` (XRANGE in batches)."""
    after = StreamId.parse(after_id)
    if after == MAX_ID:
        return 0
    start = str(after.next())
    total = 0
    while True:
        reply = raw_command(client, "XRANGE", stream, start, through_id, "COUNT", COUNT_BATCH)
        total += len(reply)
        if len(reply) < COUNT_BATCH:
            return total
        last = StreamId.parse(reply[-1][0])
        if last == MAX_ID:
            return total
        start = str(last.next())


def count_entries_after(client: Client, stream: str, after_id: str) -> int:
    """How many entries have an id greater than `after_id` (XRANGE in batches, ids only counted)."""
    return count_range(client, stream, after_id, "+")


def _edges(client: Client, stream: str) -> tuple[str | None, str | None]:
    first, last = raw_pipeline(
        client,
        [("XRANGE", stream, "-", "+", "COUNT", 1), ("XREVRANGE", stream, "+", "-", "COUNT", 1)],
    )
    first_id = text(first[0][0]) if isinstance(first, list) and first else None
    last_id = text(last[0][0]) if isinstance(last, list) and last else None
    return first_id, last_id


LagQuery = tuple[str, str, int | None, tuple[str | None, str | None]]
"""(stream, last delivered id, the server's lag or None, (first id, last id) of the stream)."""

FIRST_COUNT = 100  # the first pipelined XRANGE of each group: most lags end there


def group_lag(
    client: Client,
    stream: str,
    last_delivered: str,
    server_lag: int | None,
    edges: tuple[str | None, str | None],
) -> tuple[int, bool]:
    """(lag, computed): the server's value when it has one, else counted from the stream."""
    return group_lags(client, [(stream, last_delivered, server_lag, edges)])[0]


def group_lags(client: Client, queries: list[LagQuery]) -> list[tuple[int, bool]]:
    """`group_lag` of many groups: the counting ones share one pipelined XRANGE (COUNT
    FIRST_COUNT) per group; a group with more entries behind goes on with count_range. A stream
    deleted meanwhile raises ResponseError, as XRANGE would."""
    out: list[tuple[int, bool]] = []
    counting: list[tuple[int, str, str]] = []  # (index in out, stream, first id to count)
    for stream, last_delivered, server_lag, (_first, last_id) in queries:
        if server_lag is not None:
            out.append((server_lag, False))
            continue
        out.append((0, True))
        if last_id is None:
            continue
        delivered = StreamId.parse(last_delivered)
        if delivered >= StreamId.parse(last_id) or delivered == MAX_ID:
            continue
        counting.append((len(out) - 1, stream, str(delivered.next())))
    if not counting:
        return out
    replies = raw_pipeline(
        client,
        [("XRANGE", stream, start, "+", "COUNT", FIRST_COUNT) for _, stream, start in counting],
    )
    for (index, stream, _), reply in zip(counting, replies, strict=True):
        if isinstance(reply, Exception):
            raise reply
        total = len(reply)
        if total == FIRST_COUNT:
            total += count_range(client, stream, text(reply[-1][0]))
        out[index] = (total, True)
    return out


def behind_ms(last_delivered: str, lag: int, edges: tuple[str | None, str | None]) -> int | None:
    """Time from the last delivered entry to the newest entry (0 when caught up)."""
    first_id, last_id = edges
    if last_id is None or lag == 0:
        return 0
    delivered_ms = id_ms(last_delivered)
    if delivered_ms == 0 and first_id is not None:
        delivered_ms = id_ms(first_id)
    return max(0, id_ms(last_id) - delivered_ms)


# ---- reading groups ----


def _group_info(
    client: Client, stream: str, g: dict[str, Any], edges: tuple[str | None, str | None]
) -> GroupInfo:
    last_delivered = text(g["last-delivered-id"])
    server_lag = g.get("lag")
    lag, computed = group_lag(
        client,
        stream,
        last_delivered,
        int(server_lag) if server_lag is not None else None,
        edges,
    )
    entries_read = g.get("entries-read")
    return GroupInfo(
        stream=stream,
        name=text(g["name"]),
        consumers=int(g["consumers"]),
        pending=int(g["pending"]),
        last_delivered_id=last_delivered,
        entries_read=int(entries_read) if entries_read is not None else None,
        lag=lag,
        lag_computed=computed,
        behind_ms=behind_ms(last_delivered, lag, edges),
    )


def list_groups(client: Client, stream: str, *, check_exists: bool = True) -> list[GroupInfo]:
    """Every group of a stream with lag (computed when the server reports nil) and behind."""
    if check_exists:
        require_stream(client, stream)
    raw_groups = xinfo_groups(client, stream)
    if not raw_groups:
        return []
    edges = _edges(client, stream)
    return [_group_info(client, stream, g, edges) for g in raw_groups]


def get_group(client: Client, stream: str, group: str) -> GroupInfo:
    """One group, or NotFound naming the stream or the group."""
    require_stream(client, stream)
    raw = require_group(client, stream, group)
    return _group_info(client, stream, raw, _edges(client, stream))


def list_consumers(client: Client, stream: str, group: str) -> list[Consumer]:
    """Each consumer of a group: pending count, idle, and inactive where the server has it."""
    require_stream(client, stream)
    require_group(client, stream, group)
    try:
        reply = raw_command(client, "XINFO", "CONSUMERS", stream, group)
    except ResponseError as exc:
        if str(exc).startswith("NOGROUP"):
            raise NotFound(f"group {group!r} does not exist on stream {stream!r}") from None
        raise stream_refusal(exc, stream) from None
    out = []
    for raw in reply:
        c = pairs(raw)
        inactive = c.get("inactive")
        out.append(
            Consumer(
                stream=stream,
                group=group,
                name=text(c["name"]),
                pending=int(c["pending"]),
                idle_ms=int(c["idle"]),
                inactive_ms=int(inactive) if inactive is not None else None,
            )
        )
    return out


# ---- positions: where a group starts ----


@dataclass(frozen=True)
class _StreamState:
    length: int
    last_generated_id: str
    entries_added: int | None  # None: the server (< 7.0) does not track it
    max_deleted_id: str | None


def _stream_state(client: Client, stream: str) -> _StreamState | None:
    """XINFO STREAM's counters in one reply (so they agree), or None when the key is missing."""
    try:
        reply = raw_command(client, "XINFO", "STREAM", stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return None
        raise stream_refusal(exc, stream) from None
    info = pairs(reply)
    added = info.get("entries-added")
    max_deleted = info.get("max-deleted-entry-id")
    return _StreamState(
        length=int(info["length"]),
        last_generated_id=text(info["last-generated-id"]),
        entries_added=int(added) if added is not None else None,
        max_deleted_id=text(max_deleted) if max_deleted is not None else None,
    )


def resolve_group_position(client: Client, stream: str, pos: Position, now_ms: Any = None) -> str:
    """The last-delivered id that makes a group deliver from `pos` on.

    `$` is the last generated id (nothing old is delivered), `0`/`-` is 0-0 (everything).
    An id, a time or a duration means "deliver again from there on": the last-delivered id is
    the entry just before it (0-0 when there is none). `(ID` means "after ID": ID itself.
    """
    if pos.kind == "max":
        raise BadInput(f"bad position {pos.text!r}: use $ for the end of the stream")
    if pos.kind in ("min", "zero") and not pos.exclusive:
        return "0-0"
    if pos.kind == "last":
        state = _stream_state(client, stream)
        return state.last_generated_id if state else "0-0"
    first_delivered = StreamId.parse(resolve_start(pos, now_ms))
    if first_delivered == MIN_ID:
        return "0-0"
    before = first_delivered.previous()
    if pos.exclusive and pos.kind in ("id", "zero") and pos.seq is not None:
        return str(before)  # "(ID": exactly ID, the Redis meaning of a group's id
    reply = raw_command(client, "XREVRANGE", stream, str(before), "-", "COUNT", 1)
    return text(reply[0][0]) if reply else "0-0"


def entries_read_at(
    client: Client, stream: str, last_delivered: str, state: _StreamState | None = None
) -> tuple[int | None, str | None]:
    """(ENTRIESREAD for a group at `last_delivered`, None) or (None, why it cannot be known).

    The counter is the number of entries ever added up to that id: entries-added minus the
    entries after it, which is exact when no entry after it was deleted (max-deleted-entry-id
    at or before it). Trimmed entries are at the front and count as read, as Redis counts them.
    """
    if state is None:
        state = _stream_state(client, stream)
    if state is None:
        return None, "the stream does not exist"
    if state.entries_added is None:
        return None, "the server (before 7.0) has no ENTRIESREAD"
    delivered = StreamId.parse(last_delivered)
    last = StreamId.parse(state.last_generated_id)
    if delivered >= last:
        return state.entries_added, None
    if state.max_deleted_id is not None:
        max_deleted = StreamId.parse(state.max_deleted_id)
        if max_deleted != MIN_ID and max_deleted > delivered:
            return None, (
                f"entries after {last_delivered} were deleted (max deleted id "
                f"{state.max_deleted_id}): the read counter cannot be known, lag is computed"
            )
    after = count_range(client, stream, last_delivered, state.last_generated_id)
    return state.entries_added - after, None


# ---- create / destroy ----


def create_group(
    client: Client,
    stream: str,
    group: str,
    pos: Position,
    *,
    mkstream: bool = True,
    exist_ok: bool = False,
    now_ms: Any = None,
) -> GroupCreateResult:
    """XGROUP CREATE at `pos` (see resolve_group_position), with ENTRIESREAD where known."""
    state = _stream_state(client, stream)
    if state is None and not mkstream:
        raise NotFound(f"stream {stream!r} does not exist (--no-mkstream)")
    entries_read: int | None = None
    if pos.kind == "last":
        target = "$"  # resolved by the server in the same step: no entry slips in between
    else:
        target = resolve_group_position(client, stream, pos, now_ms)
        if state is not None:
            entries_read, _ = entries_read_at(client, stream, target, state)
    args: list[Any] = ["XGROUP", "CREATE", stream, group, target]
    if mkstream:
        args.append("MKSTREAM")
    if entries_read is not None:
        args += ["ENTRIESREAD", entries_read]
    created = True
    try:
        raw_command(client, *args)
    except ResponseError as exc:
        if str(exc).startswith("BUSYGROUP"):
            if not exist_ok:
                raise ServerRefused(
                    f"group {group!r} already exists on stream {stream!r} "
                    "(--exist-ok makes that a success)"
                ) from None
            created = False
        else:
            raise stream_refusal(exc, stream) from None
    g = require_group(client, stream, group)
    er = g.get("entries-read")
    return GroupCreateResult(
        stream=stream,
        group=group,
        created=created,
        stream_created=state is None,
        last_delivered_id=text(g["last-delivered-id"]),
        entries_read=int(er) if er is not None else None,
    )


# Check and destroy in one step: a consumer cannot take an entry between the two.
_DESTROY_SCRIPT = """
local s = redis.call('XPENDING', KEYS[1], ARGV[1])
if s[1] > 0 and ARGV[2] ~= 'force' then return {0, s[1]} end
local d = redis.call('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
return {d, s[1]}
"""


def destroy_group(
    client: Client, stream: str, group: str, *, force: bool = False
) -> GroupDestroyResult:
    """XGROUP DESTROY; refuses (Refused) while the group has pending entries unless forced."""
    require_stream(client, stream)
    require_group(client, stream, group)
    # on the node owning the key (a slot moving: followed, as for every raw command)
    reply = eval_script(client, _DESTROY_SCRIPT, [stream], [group, "force" if force else ""])
    destroyed, pending = int(reply[0]), int(reply[1])
    if not destroyed and pending:
        raise Refused(
            f"group {group!r} on stream {stream!r} has "
            f"{count_noun(pending, 'pending entry', 'pending entries', grouped=False)} "
            "(unacknowledged); rerun with --force to destroy it anyway"
        )
    if not destroyed:
        raise NotFound(f"group {group!r} does not exist on stream {stream!r}")
    return GroupDestroyResult(stream, group, pending_dropped=pending)


# ---- setid ----


def plan_setid(
    client: Client, stream: str, group: str, pos: Position, *, now_ms: Any = None
) -> SetIdPlan:
    """What `setid` would do: nothing is changed."""
    require_stream(client, stream)
    raw = require_group(client, stream, group)
    current = _group_info(client, stream, raw, _edges(client, stream))
    state = _stream_state(client, stream)
    if state is None:
        raise NotFound(f"stream {stream!r} does not exist")
    new_id = resolve_group_position(client, stream, pos, now_ms)
    if pos.kind == "last":
        new_id = state.last_generated_id
    entries_read, note = entries_read_at(client, stream, new_id, state)
    cur, new = StreamId.parse(current.last_delivered_id), StreamId.parse(new_id)
    redeliver = count_range(client, stream, new_id, current.last_delivered_id) if new < cur else 0
    skip = count_range(client, stream, current.last_delivered_id, new_id) if new > cur else 0
    new_lag = count_range(client, stream, new_id, state.last_generated_id)
    next_id = None
    if new < MAX_ID:
        nxt = raw_command(client, "XRANGE", stream, str(new.next()), "+", "COUNT", 1)
        next_id = text(nxt[0][0]) if nxt else None
    return SetIdPlan(
        stream=stream,
        group=group,
        current_id=current.last_delivered_id,
        current_entries_read=current.entries_read,
        current_lag=current.lag,
        new_id=new_id,
        entries_read=entries_read,
        entries_read_note=note,
        new_lag=new_lag,
        next_id=next_id,
        redeliver=redeliver,
        skip=skip,
        pending=current.pending,
        executed=False,
    )


def execute_setid(client: Client, plan: SetIdPlan) -> SetIdPlan:
    """XGROUP SETID to the plan's id, with ENTRIESREAD when the plan knows it."""
    args: list[Any] = ["XGROUP", "SETID", plan.stream, plan.group, plan.new_id]
    if plan.entries_read is not None:
        args += ["ENTRIESREAD", plan.entries_read]
    try:
        raw_command(client, *args)
    except ResponseError as exc:
        if str(exc).startswith("NOGROUP"):
            raise NotFound(
                f"group {plan.group!r} does not exist on stream {plan.stream!r}"
            ) from None
        raise stream_refusal(exc, plan.stream) from None
    from dataclasses import replace

    return replace(plan, executed=True)


# ---- delconsumer ----

# Delete only when the consumer owns nothing (checked in the same step), unless forced.
_DELCONSUMER_SCRIPT = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 and ARGV[3] ~= 'force' then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""

REASSIGN_ROUNDS = 10


def delete_consumer(
    client: Client,
    stream: str,
    group: str,
    consumer: str,
    *,
    reassign_to: str | None = None,
    force: bool = False,
) -> DelConsumerResult:
    """XGROUP DELCONSUMER. A consumer that owns pending entries is refused (Refused) unless
    its entries are first claimed by `reassign_to`, or `force` drops them from the group."""
    if reassign_to is not None and reassign_to == consumer:
        raise BadInput(f"--reassign-to names the consumer being deleted ({consumer!r})")
    names = {c.name: c for c in list_consumers(client, stream, group)}
    if consumer not in names:
        raise NotFound(
            f"consumer {consumer!r} does not exist in group {group!r} of stream {stream!r}"
        )
    reassigned: list[str] = []
    deleted: list[str] = []
    for _ in range(REASSIGN_ROUNDS):
        if reassign_to is not None:
            from streamctl.core.pending import claim_consumer_entries

            claimed, gone = claim_consumer_entries(client, stream, group, consumer, reassign_to)
            reassigned += claimed
            deleted += gone
        reply = eval_script(
            client, _DELCONSUMER_SCRIPT, [stream], [group, consumer, "force" if force else ""]
        )
        if int(reply) >= 0:
            return DelConsumerResult(
                stream, group, consumer, reassign_to, reassigned, deleted, int(reply)
            )
        if reassign_to is None:
            pending = names[consumer].pending or _consumer_pending(client, stream, group, consumer)
            owned = count_noun(pending, "pending entry", "pending entries", grouped=False)
            raise Refused(
                f"consumer {consumer!r} owns {owned} in group {group!r}; "
                "rerun with --reassign-to OTHER to hand them over, or --force to drop them"
            )
    raise ServerRefused(
        f"consumer {consumer!r} kept receiving entries while they were reassigned; stop it first"
    )


def _consumer_pending(client: Client, stream: str, group: str, consumer: str) -> int:
    for c in list_consumers(client, stream, group):
        if c.name == consumer:
            return c.pending
    return 0
