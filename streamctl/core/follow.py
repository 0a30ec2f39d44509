"""Following streams (`tail`): XREAD / XREADGROUP BLOCK over several streams, never losing,
duplicating or hanging.

- Every stream keeps its own position: the id of the last entry handled (written or filtered
  out). Each read asks for what comes after it, so a dropped connection or a restarted server is
  resumed exactly where the output stopped. `$` is resolved to the stream's last id once, at the
  start: re-sending `$` after a reconnect would skip what was added meanwhile.
- A blocking read is cut into chunks of at most `block_chunk_ms`, and each read has its own
  timeout (the chunk plus the command timeout): the client's socket timeout never cuts a BLOCK,
  and a server that stops answering (paused, network gone) is noticed instead of waited on forever.
- Group mode reads `>`. Each entry is acknowledged only after the sink has written and flushed it
  (`ack=False` leaves it pending). After a reconnect, and for `--from` other than `$`, this
  consumer's own pending entries after the position are read first (XREADGROUP with an id): that
  recovers entries the server delivered in a reply that was lost with the connection.
- `read_round` does one read for a set of streams on one connection. On a Redis Cluster the
  streams are grouped by slot (an XREAD's keys must share a slot, even on one node; streams with
  the same hash tag are read in one call). One group is read as on a single server. Several are
  read by `_FanOut`: a non-blocking read of each group first; when none has anything, one
  blocking read per group is sent, each on its own connection, and the first replies are taken
  (select() on their sockets). A read left waiting keeps its positions (its streams had nothing
  new) and is picked up by the next round; a group's positions change only after its reply was
  handled, so no entry is read twice. At the end the waiting reads are cut (their connections
  closed): in group mode a reply that had already arrived is counted as left pending.

- A backlog on one connection (one stream, no --count) is read ahead (`_Ahead`): when a read
  comes back full, the next one is sent before this one is written, so the server reads while
  this side writes, as `range` does; the acknowledgements owed ride in front of it (XACK then
  XREADGROUP in one write). A read ahead never blocks; one not taken is read at the end and, in
  group mode, counted as left pending.

Nothing here prints: entries go to the sink (a block per stream and read, then one flush),
notices (retries) to `on_notice`.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamctl.core.connection import (
    MAX_REDIRECTS,
    Client,
    TryAgain,
    demoted_error,
    redirect_error,
    redirect_target,
    redirect_word,
    route,
    server_time_ms,
    slot_groups,
)
from streamctl.core.filters import EntryFilter
from streamctl.core.models import EntryBatch, RawEntry
from streamctl.errors import BadInput, CheckFailed, ConnectionFailed, NotFound, ServerRefused
from streamctl.ids import Position, StreamId, format_duration, resolve_start
from streamctl.wording import count_noun

BLOCK_CHUNK_MS = 10_000  # the longest single BLOCK: bounds how long a silent server goes unnoticed
READ_BATCH = 1000  # COUNT per stream and read (as range pages): fewer round trips in a backlog
DEFAULT_RETRY_FOR_MS = 60_000
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0

# what a lost connection looks like (BusyLoadingError, a server loading its AOF, is one too)
CONNECTION_LOST = (RedisConnectionError, RedisTimeoutError)


class EntrySink(Protocol):
    """Where entries go: `write` renders a block of one stream's entries (not yet visible),
    `flush` makes what was written visible. The follower writes a read's entries, flushes once,
    and only then acknowledges them."""

    def write(self, stream: str, entries: list[RawEntry]) -> None: ...

    def flush(self) -> None: ...


class _EachEntry:
    """A sink from a function called per entry (which writes and flushes it itself)."""

    def __init__(self, on_entry: Callable[[str, RawEntry], None]) -> None:
        self.on_entry = on_entry

    def write(self, stream: str, entries: list[RawEntry]) -> None:
        for raw in entries:
            self.on_entry(stream, raw)

    def flush(self) -> None:
        pass


Notice = Callable[[str], None]
StopReason = Literal["count", "timeout", "end"]


# ---- options and result ----


@dataclass(frozen=True)
class FollowOptions:
    streams: tuple[str, ...]
    start: Position  # parsed --from (allow_last=True); `$` means "only new entries"
    group: str | None = None
    consumer: str | None = None
    count: int | None = None  # stop after this many matching entries
    idle_timeout_ms: int | None = None  # stop after this long without a matching entry
    follow: bool = True  # False: what is there now, then stop
    filter: EntryFilter | None = None  # match / where: only passing entries count and print
    ack: bool = True
    create_group: bool = False
    retry_for_ms: int = DEFAULT_RETRY_FOR_MS
    command_timeout_s: float = 5.0
    block_chunk_ms: int = BLOCK_CHUNK_MS
    batch_size: int = READ_BATCH

    def __post_init__(self) -> None:
        if not self.streams:
            raise BadInput("give at least one stream")
        if len(set(self.streams)) != len(self.streams):
            raise BadInput("a stream is named twice")
        if self.count is not None and self.count < 1:
            raise BadInput(f"bad --count {self.count}: give a count of 1 or more")
        if self.group is not None and not self.consumer:
            raise BadInput("group mode needs a consumer name")
        if self.group is None and (self.create_group or not self.ack):
            raise BadInput("--create-group and --no-ack apply to group mode (--group G)")
        if self.group is not None and self.start.kind == "max":
            raise BadInput("--from + is not accepted with --group: use $ (new entries) or an id")


@dataclass
class FollowResult:
    seen: int = 0  # matching entries written
    skipped: int = 0  # entries that did not pass the filter
    acked: int = 0
    # group mode: entries delivered to this consumer and left pending by this run
    # (--no-ack, not matching, deleted while pending, or beyond --count)
    left_pending: int = 0
    deleted_pending: int = 0  # pending entries whose data was deleted (XDEL/trim)
    reconnects: int = 0
    stopped: StopReason = "end"
    idle_ms: int = 0  # with stopped == "timeout": how long nothing matching came

    def check_failure(self, opts: FollowOptions) -> CheckFailed | None:
        """The CI wait-for-event: --count N with --timeout, and fewer than N before the timeout."""
        if self.stopped != "timeout" or opts.count is None or self.seen >= opts.count:
            return None
        matching = "" if opts.filter is None else " matching " + opts.filter.describe()
        wanted = count_noun(opts.count, "entry" + matching, "entries" + matching, grouped=False)
        waited = opts.idle_timeout_ms if opts.idle_timeout_ms is not None else self.idle_ms
        return CheckFailed(
            f"timed out after {duration_text(waited)} without a new entry: "
            f"saw {self.seen} of {wanted}"
        )


# ---- one read round (the unit a cluster splits per node) ----


def _call(client: Client, timeout_s: float | None, *args: Any, packed: bytes | None = None) -> Any:
    """One command on a pooled connection (on a cluster: of the node owning its key, a MOVED/ASK
    reply followed up to MAX_REDIRECTS times), the reply raw (no redis-py callbacks), with its
    own read timeout. A connection that failed mid-reply is closed, never reused. `packed`: the
    command already in RESP (`args` then only route it)."""
    node = route(client, args)
    asking = False
    redirects = 0
    again = TryAgain()  # XREAD of streams with one hash tag while their slot moves
    while True:
        try:
            return _call_on(node, timeout_s, args, packed, asking=asking)
        except ResponseError as exc:
            if again.wait(client, exc):
                node, asking = route(client, args), False
                continue
            target = redirect_target(client, exc) if redirects < MAX_REDIRECTS else None
            if target is None:
                _raise_redirect(exc, node)
                raise
            node, asking = target
            redirects += 1


def _call_on(
    node: Client, timeout_s: float | None, args: Any, packed: bytes | None, *, asking: bool
) -> Any:
    pool = node.connection_pool
    conn = pool.get_connection()
    try:
        if asking:
            command = hiredis.pack_command(tuple(args)) if packed is None else packed
            conn.send_packed_command([_ASKING + command])  # type: ignore[no-untyped-call]
        elif packed is None:
            conn.send_command(*args)  # type: ignore[no-untyped-call]
        else:
            conn.send_packed_command([packed])  # type: ignore[no-untyped-call]
        if asking:
            with contextlib.suppress(ResponseError):  # the command's own reply tells
                conn.read_response(timeout=timeout_s)
        return conn.read_response(timeout=timeout_s)
    except ResponseError as exc:
        if redirect_word(exc) in ("MOVED", "ASK", "TRYAGAIN"):
            raise  # _call follows it, or reports it
        _raise_redirect(exc, node)
        demoted = demoted_error(conn, exc)
        if demoted is not None:
            raise demoted from None
        raise
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)


_ASKING = b"*1\r\n$6\r\nASKING\r\n"


def _name_bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _raise_redirect(exc: ResponseError, client: object) -> None:
    """A MOVED/CROSSSLOT/CLUSTERDOWN reply is about where the command was sent: one line."""
    redirect = redirect_error(exc, client=client)
    if redirect is not None:
        raise redirect from None


@dataclass(frozen=True)
class GroupRead:
    group: str
    consumer: str


def read_round(
    client: Client,
    positions: Mapping[str, str],
    *,
    group: GroupRead | None = None,
    count: int | None = None,
    block_ms: int | None = None,
    timeout_s: float = 5.0,
) -> list[EntryBatch]:
    """One XREAD (or XREADGROUP) for the streams in `positions` (stream -> the id to read after,
    or `>` in group mode). `block_ms` None or 0 does not block (BLOCK 0 would mean forever).

    Returns one batch per stream in the reply: a group's history read of a stream with no pending
    entries left comes back as an empty batch. In a history read an entry deleted while pending
    has `None` instead of its fields.
    """
    args, read_timeout = _read_args(
        positions, group=group, count=count, block_ms=block_ms, timeout_s=timeout_s
    )
    return _batches(_call(client, read_timeout, *args))


def _read_args(
    positions: Mapping[str, str],
    *,
    group: GroupRead | None,
    count: int | None,
    block_ms: int | None,
    timeout_s: float,
) -> tuple[list[Any], float]:
    """The XREAD / XREADGROUP command for `positions`, and how long its reply may take."""
    names = list(positions)
    args: list[Any] = []
    if group is not None:
        args += ["XREADGROUP", "GROUP", group.group, group.consumer]
    else:
        args.append("XREAD")
    if count:
        args += ["COUNT", count]
    read_timeout = timeout_s
    if block_ms:
        args += ["BLOCK", block_ms]
        read_timeout = block_ms / 1000 + timeout_s
    args.append("STREAMS")
    args += [n.encode("utf-8", "surrogateescape") for n in names]
    args += [positions[n] for n in names]
    return args, read_timeout


def _batches(reply: Any) -> list[EntryBatch]:
    if not reply:
        return []
    return [
        EntryBatch(key.decode("utf-8", "surrogateescape"), entries or []) for key, entries in reply
    ]


# ---- several slot groups (a cluster): non-blocking sweeps, then blocking reads in parallel ----


@dataclass
class _Waiting:
    """A blocking read sent and not answered yet, on a connection of its own."""

    pool: Any
    conn: Any
    stall_at: float  # monotonic time after which a missing reply means a stalled server

    def ready(self) -> bool:
        sock = self.conn._sock
        pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted
        if pending is not None and pending() > 0:
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)


class _FanOut:
    """Reads streams spread over several slot groups (see the module docstring)."""

    def __init__(
        self,
        groups: list[tuple[Client, list[str]]],
        clock: Callable[[], float],
        client: Client | None = None,
    ):
        self.groups = groups
        self.clock = clock
        self.waiting: dict[int, _Waiting] = {}
        # the cluster's client: reads are routed by the slot map as it is now (a resharding
        # moves a group to another node); without it, each group's own node
        self.client = client
        self.asking: dict[int, Client] = {}  # a group's next blocking read: ASKING, that node

    def read(
        self,
        positions: Mapping[str, str],
        *,
        group: GroupRead | None,
        count: int | None,
        block_ms: int | None,
        timeout_s: float,
    ) -> list[EntryBatch]:
        batches: list[EntryBatch] = []
        answered: set[int] = set()  # replied with entries: positions move once they are handled
        for gi, waiting in list(self.waiting.items()):
            if waiting.ready():
                got = self._finish(gi, timeout_s)
                batches += got
                if any(b.entries for b in got):
                    answered.add(gi)
        idle = {
            gi: {n: positions[n] for n in names if n in positions}
            for gi, (_, names) in enumerate(self.groups)
            if gi not in self.waiting and gi not in answered
        }
        idle = {gi: pos for gi, pos in idle.items() if pos}
        for gi, pos in idle.items():
            batches += read_round(
                self.client or self.groups[gi][0],
                pos,
                group=group,
                count=count,
                timeout_s=timeout_s,
            )
        if batches or not block_ms:
            return batches
        for gi, pos in idle.items():
            self._send(gi, pos, group=group, count=count, block_ms=block_ms, timeout_s=timeout_s)
        return self._wait(block_ms, timeout_s)

    def _send(
        self,
        gi: int,
        positions: Mapping[str, str],
        *,
        group: GroupRead | None,
        count: int | None,
        block_ms: int,
        timeout_s: float,
    ) -> None:
        args, read_timeout = _read_args(
            positions, group=group, count=count, block_ms=block_ms, timeout_s=timeout_s
        )
        asking = self.asking.pop(gi, None)
        node = asking or (route(self.client, args) if self.client else self.groups[gi][0])
        pool = node.connection_pool
        conn: Any = pool.get_connection()
        try:
            if asking is not None:
                conn.send_packed_command([_ASKING + hiredis.pack_command(tuple(args))])
                conn.read_response(timeout=timeout_s)
            else:
                conn.send_command(*args)
        except BaseException:
            conn.disconnect()
            pool.release(conn)
            raise
        self.waiting[gi] = _Waiting(pool, conn, self.clock() + read_timeout)

    def _wait(self, block_ms: int, timeout_s: float) -> list[EntryBatch]:
        """The replies that come within `block_ms` (the first ones, and any ready with them)."""
        until = self.clock() + block_ms / 1000
        while True:
            ready = [gi for gi, w in self.waiting.items() if w.ready()]
            if ready:
                out: list[EntryBatch] = []
                for gi in ready:
                    out += self._finish(gi, timeout_s)
                return out
            now = self.clock()
            stalled = [w for w in self.waiting.values() if w.stall_at <= now]
            if stalled:
                self.close()
                raise RedisTimeoutError("Timeout reading from socket")
            if now >= until:
                return []
            socks = [w.conn._sock for w in self.waiting.values()]
            wake = min([until] + [w.stall_at for w in self.waiting.values()])
            select.select(socks, [], [], max(0.0, min(wake - now, 1.0)))

    def _finish(self, gi: int, timeout_s: float) -> list[EntryBatch]:
        waiting = self.waiting.pop(gi)
        conn = waiting.conn
        try:
            reply = conn.read_response(timeout=timeout_s)
        except ResponseError as exc:
            if self.client is not None and redirect_word(exc) == "TRYAGAIN":
                return []  # the next round reads these streams again (_call retries TRYAGAIN)
            target = redirect_target(self.client, exc) if self.client else None
            if target is None:
                _raise_redirect(exc, self.groups[gi][0])
                demoted = demoted_error(conn, exc)  # a replica promoted in its place
                if demoted is not None:
                    raise demoted from None
                raise  # an error reply: the connection is in step
            if target[1]:  # ASK: the next blocking read goes there, after ASKING
                self.asking[gi] = target[0]
            return []  # MOVED: the map is read again; the next round reads the new owner
        except BaseException:
            conn.disconnect()
            raise
        finally:
            waiting.pool.release(conn)
        return _batches(reply)

    def close(self) -> int:
        """Cut the reads still waiting; returns how many entries a reply that had already come
        held (in group mode: delivered to this consumer and left pending)."""
        delivered = 0
        for gi in list(self.waiting):
            waiting = self.waiting.pop(gi)
            try:
                if waiting.ready():
                    reply = waiting.conn.read_response(timeout=0.1)
                    delivered += sum(len(b.entries) for b in _batches(reply))
            except Exception:  # noqa: BLE001, S110 - the connection is closed below anyway
                pass
            finally:
                waiting.conn.disconnect()
                waiting.pool.release(waiting.conn)
        return delivered


# ---- the follow loop, in parts: where each stream starts, one round's read, what a batch
# writes, the group's acknowledgements, the retry policy; `_Follower` runs them ----


@dataclass
class _StreamState:
    name: str
    position: str  # the id of the last entry handled: the next read asks for what follows
    history: bool = False  # group mode: reading this consumer's own pending entries
    end: StreamId | None = None  # --no-follow: the last entry at the start
    done: bool = False


@dataclass
class _Starts:
    """Where each stream starts: checks the keys, resolves --from (`$` once, at the start),
    creates the group with `create_group`. Errors here are not retried."""

    client: Client
    opts: FollowOptions
    on_notice: Notice

    def states(self) -> dict[str, _StreamState]:
        kinds = self._types()
        for name, kind in kinds.items():
            if kind not in ("none", "stream"):
                raise ServerRefused(f"WRONGTYPE: key {name!r} holds a {kind}, not a stream")
        if self.opts.group is None:
            return {name: self._plain(name, kinds[name]) for name in self.opts.streams}
        return {name: self._group(name, kinds[name], self.opts.group) for name in self.opts.streams}

    def _types(self) -> dict[str, str]:
        out = {}
        for name in self.opts.streams:
            reply = _call(self.client, self.opts.command_timeout_s, "TYPE", name)
            out[name] = reply.decode() if isinstance(reply, bytes) else str(reply)
        return out

    def _last_id(self, name: str) -> StreamId | None:
        reply = _call(
            self.client, self.opts.command_timeout_s, "XREVRANGE", name, "+", "-", "COUNT", 1
        )
        return StreamId.parse(reply[0][0]) if reply else None

    def _now_ms(self) -> int:
        return server_time_ms(self.client)

    def _after(self, name: str) -> str:
        """The id to read after for --from (XREAD and a history read are exclusive of it)."""
        pos = self.opts.start
        if pos.kind == "last":
            last = self._last_id(name)
            return str(last) if last else "0-0"
        if pos.kind == "max":  # the last entry, then new ones
            last = self._last_id(name)
            return str(last.previous()) if last else "0-0"
        if pos.kind == "min":
            return "0-0"
        return str(StreamId.parse(resolve_start(pos, self._now_ms)).previous())

    def _plain(self, name: str, kind: str) -> _StreamState:
        state = _StreamState(name, self._after(name))
        if not self.opts.follow:
            if kind == "none":
                raise NotFound(f"stream {name!r} does not exist")
            state.end = self._last_id(name)
            state.done = state.end is None or StreamId.parse(state.position) >= state.end
        return state

    def _group(self, name: str, kind: str, group: str) -> _StreamState:
        if kind == "none" and not self.opts.create_group:
            raise NotFound(
                f"stream {name!r} does not exist (--create-group creates it with group {group!r})"
            )
        delivered = self._group_last_delivered(name, group)
        if delivered is None:
            if not self.opts.create_group:
                where = "$" if self.opts.start.kind == "last" else "--from"
                raise NotFound(
                    f"group {group!r} does not exist on stream {name!r} "
                    f"(--create-group creates it at {where})"
                )
            # at --from: `$` is the end; otherwise after the entry before the start
            at = "$" if self.opts.start.kind == "last" else self._after(name)
            self._create_group(name, group, at)
            self.on_notice(f"created group {group!r} on stream {name!r} at {at}")
            delivered = self._group_last_delivered(name, group) or "0-0"
        if self.opts.start.kind == "last":
            # only new entries: `>`; the position bounds the pending re-read after a reconnect
            state = _StreamState(name, delivered)
        else:
            state = _StreamState(name, self._after(name), history=True)
        if not self.opts.follow:
            state.end = self._last_id(name)
        return state

    def _group_last_delivered(self, name: str, group: str) -> str | None:
        try:
            reply = _call(self.client, self.opts.command_timeout_s, "XINFO", "GROUPS", name)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        for raw in reply:
            info = {raw[i]: raw[i + 1] for i in range(0, len(raw), 2)}
            if info.get(b"name") == group.encode("utf-8", "surrogateescape"):
                value = info.get(b"last-delivered-id", b"0-0")
                return value.decode() if isinstance(value, bytes) else str(value)
        return None

    def _create_group(self, name: str, group: str, at: str) -> None:
        try:
            _call(
                self.client,
                self.opts.command_timeout_s,
                "XGROUP",
                "CREATE",
                name,
                group,
                at,
                "MKSTREAM",
            )
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):  # created meanwhile by another tail: fine
                raise


@dataclass
class _Rounds:
    """One round's read: the positions to ask for (`>` in group mode, an id for a history
    read), how long to block and how many to ask for; one server or a cluster's fan-out."""

    client: Client
    opts: FollowOptions
    acks: _Acks | None = None  # group mode: acknowledgements owed ride in front of a read ahead
    fanout: _FanOut | None = None  # streams in several slots of a cluster
    last_count: int = READ_BATCH  # COUNT of the last read: a full batch means a backlog
    ahead: _Ahead | None = None  # the next read, sent before this one's entries are written

    def read(
        self, states: dict[str, _StreamState], *, remaining_ms: int | None, seen: int
    ) -> list[EntryBatch]:
        opts = self.opts
        active = {n: s for n, s in states.items() if not s.done}
        positions = {
            n: (s.position if s.history or opts.group is None else ">") for n, s in active.items()
        }
        block: int | None = None
        if opts.follow and not any(s.history for s in active.values()):
            block = opts.block_chunk_ms
            if remaining_ms is not None:
                block = min(block, remaining_ms)
        count = opts.batch_size
        if opts.group is not None and opts.count is not None:
            # `>` delivers: never ask for more than still wanted (COUNT applies per stream)
            count = min(count, opts.count - seen)
        self.last_count = count
        group = GroupRead(opts.group, opts.consumer or "") if opts.group else None
        taken = self._take_ahead(positions, count)
        if taken is not None:
            batches = taken
        elif self.fanout is None:
            batches = read_round(
                self.client,
                positions,
                group=group,
                count=count,
                block_ms=block,
                timeout_s=opts.command_timeout_s,
            )
        else:
            batches = self.fanout.read(
                positions,
                group=group,
                count=count,
                block_ms=block,
                timeout_s=opts.command_timeout_s,
            )
        if not opts.follow:
            returned = {b.stream for b in batches if b.entries}
            for name, state in active.items():
                if name not in returned and not state.history:
                    state.done = True  # nothing more to read now
        self._read_ahead(states, batches, count, group)
        return batches

    def _read_ahead(
        self,
        states: dict[str, _StreamState],
        batches: list[EntryBatch],
        count: int,
        group: GroupRead | None,
    ) -> None:
        """Send the next read now when this one is a full batch of a backlog (see _Ahead): one
        stream on one connection, no --count, and (--no-follow) its end not reached."""
        if self.fanout is not None or self.opts.count is not None or len(batches) != 1:
            return
        batch = batches[0]
        state = states[batch.stream]
        if len(batch.entries) < count or any(not s.done for s in states.values() if s is not state):
            return
        last = batch.entries[-1][0]
        if (
            not self.opts.follow
            and not state.history
            and (state.done or state.end is None or StreamId.parse(last) >= state.end)
        ):
            return  # this batch ends the read
        # the position the next read asks for once this batch is handled (as read() makes it)
        position = last.decode() if state.history or group is None else ">"
        positions = {batch.stream: position}
        timeout_s = self.opts.command_timeout_s
        args, _ = _read_args(
            positions, group=group, count=count, block_ms=None, timeout_s=timeout_s
        )
        owed = self.acks.owed() if self.acks is not None else {}
        try:
            self.ahead = _Ahead(
                self.client,
                args,
                positions,
                count,
                [self.acks.packed(name, ids) for name, ids in owed.items()] if self.acks else [],
                owed,
                timeout_s,
            )
        except BaseException:
            if self.acks is not None:
                self.acks.returned(owed)
            raise

    def _take_ahead(self, positions: dict[str, str], count: int) -> list[EntryBatch] | None:
        """The reply of the read sent ahead, when it asked for what is wanted now; None when
        there is none (or it was redirected: the caller reads again, following it)."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return None
        if ahead.positions != positions or ahead.count != count:
            self._drop(ahead)  # not what is wanted now (never expected): read again
            return None
        try:
            ack_replies, reply = ahead.take()
        except BaseException:
            if self.acks is not None:
                self.acks.returned(ahead.owed)
            raise
        self._acked(ahead, ack_replies)
        if isinstance(reply, ResponseError):
            if redirect_word(reply) in ("MOVED", "ASK"):
                return None
            _raise_redirect(reply, ahead.node)
            raise reply
        return _batches(reply)

    def _acked(self, ahead: _Ahead, ack_replies: list[Any]) -> None:
        if self.acks is None:
            return
        for ids, reply in zip(ahead.owed.values(), ack_replies, strict=True):
            if isinstance(reply, ResponseError):
                raise reply  # NOGROUP: the group is gone, reported as for a read
            self.acks.confirmed(ids)

    def _drop(self, ahead: _Ahead) -> int:
        """Take a read ahead that is not wanted: how many entries it delivered (group mode:
        left pending). Its reply is read, not cut: a read without BLOCK answers at once, and
        the acknowledgements in front of it count."""
        try:
            ack_replies, reply = ahead.take()
            self._acked(ahead, ack_replies)
        except Exception:
            if self.acks is not None:
                self.acks.returned(ahead.owed)
            return 0
        if self.opts.group is None or isinstance(reply, ResponseError):
            return 0
        return sum(len(b.entries) for b in _batches(reply) if b.entries)

    def cut(self) -> int:
        """Cut the reads still waiting (a fan-out, a read ahead); how many entries an arrived
        reply held."""
        left = self.fanout.close() if self.fanout is not None else 0
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            left += self._drop(ahead)
        return left


class _Ahead:
    """The next read of a backlog, sent before the current batch is written, so the server
    reads while this side writes (as `range` does); what the next read asks for is known once a
    full batch has come: the id after its last entry, or `>`. The acknowledgements owed for
    what was written and flushed before ride in front of it, in the same write: one round trip
    per batch for both. A read ahead never blocks (no BLOCK): an empty reply means caught up."""

    def __init__(
        self,
        client: Client,
        args: list[Any],
        positions: dict[str, str],
        count: int,
        ack_commands: list[bytes],
        owed: dict[str, list[bytes]],
        timeout_s: float,
    ) -> None:
        self.positions = positions
        self.count = count
        self.owed = owed
        self.timeout_s = timeout_s
        self.node = route(client, args)
        self._pool = self.node.connection_pool
        conn: Any = self._pool.get_connection()
        self._conn = conn
        try:
            conn.send_packed_command([b"".join([*ack_commands, hiredis.pack_command(tuple(args))])])
        except BaseException:
            conn.disconnect()
            self._pool.release(conn)
            raise

    def take(self) -> tuple[list[Any], Any]:
        """The XACK replies and the read's reply (error replies as their exceptions, after
        every reply is read: the connection stays usable). A reply from a demoted primary is a
        lost connection, as for every read."""
        conn = self._conn
        replies: list[Any] = []
        try:
            for _ in range(len(self.owed) + 1):
                try:
                    replies.append(conn.read_response(timeout=self.timeout_s))
                except ResponseError as exc:
                    replies.append(exc)
            for reply in replies:
                if isinstance(reply, ResponseError):
                    demoted = demoted_error(conn, reply)
                    if demoted is not None:
                        raise demoted
        except BaseException:
            conn.disconnect()
            raise
        finally:
            self._pool.release(conn)
        return replies[:-1], replies[-1]


@dataclass
class _Selection:
    """What a batch writes: --no-follow's end, deleted pending entries, the filter, --count;
    moves each stream's position past what was handled and counts into the result."""

    opts: FollowOptions
    result: FollowResult

    def select(self, state: _StreamState, batch: EntryBatch) -> list[RawEntry]:
        history = state.history
        if history and not batch.entries:
            state.history = False  # this consumer's pending entries are done: now `>`
            return []
        entries = batch.entries
        if not entries:
            return []
        opts, result = self.opts, self.result
        group_mode = opts.group is not None
        delivered = group_mode and not history  # new to this consumer, from `>`
        if not opts.follow and not history:
            entries = self._up_to_end(state, entries, keep_later=group_mode)
        if opts.count is not None:
            return self._counted(batch.stream, state, entries, delivered)
        if history:
            kept = [e for e in entries if e[1] is not None]
            result.deleted_pending += len(entries) - len(kept)
        else:
            kept = entries
        passing = kept if opts.filter is None else opts.filter.select(batch.stream, kept)
        result.skipped += len(kept) - len(passing)
        if entries:
            state.position = entries[-1][0].decode()
        self._written(len(passing))
        if delivered:
            acked = len(passing) if opts.ack else 0
            result.left_pending += len(entries) - acked
        return passing

    @staticmethod
    def _up_to_end(
        state: _StreamState, entries: list[RawEntry], *, keep_later: bool
    ) -> list[RawEntry]:
        """--no-follow: the stream is done once its last entry at the start is reached. Entries
        added after the start are dropped in a plain read (XREAD delivers nothing to anyone),
        kept in group mode (they were delivered to this consumer)."""
        end = state.end
        if end is not None and StreamId.parse(entries[-1][0]) < end:
            return entries  # the usual batch: all before the end, one comparison
        state.done = True
        if end is None or keep_later:
            return entries
        return [e for e in entries if StreamId.parse(e[0]) <= end]

    def _counted(
        self, stream: str, state: _StreamState, entries: list[RawEntry], delivered: bool
    ) -> list[RawEntry]:
        """With --count: entry by entry, up to the count (the rest of a `>` reply stays
        pending, delivered to this consumer)."""
        assert self.opts.count is not None
        result = self.result
        passing: list[RawEntry] = []
        flt = self.opts.filter
        for eid, flat in entries:
            if result.seen + len(passing) >= self.opts.count:
                if delivered:
                    result.left_pending += 1  # delivered in the same reply, beyond --count
                continue
            state.position = eid.decode()
            if flat is None:
                # our pending entry was deleted (XDEL/trim): nothing to write or acknowledge
                result.deleted_pending += 1
                continue
            if flt is not None and not flt.passes(stream, eid, flat):
                result.skipped += 1
                if delivered:
                    result.left_pending += 1
                continue
            passing.append((eid, flat))
            if delivered and not self.opts.ack:
                result.left_pending += 1
        self._written(len(passing))
        return passing

    def _written(self, n: int) -> None:
        self.result.seen += n


@dataclass
class _Acks:
    """Group mode: the ids written and flushed, acknowledged with one XACK per stream. Ids whose
    XACK was lost with the connection are kept, and sent again before the next read."""

    client: Client
    group: str
    timeout_s: float
    result: FollowResult
    unacked: dict[str, list[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._group = _name_bytes(self.group)

    def add(self, written: dict[str, list[bytes]]) -> None:
        for name, ids in written.items():
            self.unacked.setdefault(name, []).extend(ids)

    def packed(self, name: str, ids: list[bytes]) -> bytes:
        # hiredis packs the ids in one C call; redis-py's packer looks at each argument in
        # Python (a microsecond per id: a third of what writing an entry costs)
        packed: bytes = hiredis.pack_command(("XACK", _name_bytes(name), self._group, *ids))  # type: ignore[arg-type]
        return packed

    def send(self, *, best_effort: bool = False) -> None:
        for name in list(self.unacked):
            ids = self.unacked[name]
            try:
                _call(self.client, self.timeout_s, "XACK", name, packed=self.packed(name, ids))
            except CONNECTION_LOST:
                if best_effort:
                    return  # kept: acked after the reconnect, before the next read
                raise
            del self.unacked[name]
            self.confirmed(ids)

    def owed(self) -> dict[str, list[bytes]]:
        """Everything owed, handed to a read ahead (`confirmed` or `returned` after)."""
        owed, self.unacked = self.unacked, {}
        return owed

    def confirmed(self, ids: list[bytes]) -> None:
        self.result.acked += len(ids)

    def returned(self, owed: dict[str, list[bytes]]) -> None:
        """Acknowledgements whose reply was lost: owed again (XACK twice is harmless)."""
        self.add(owed)


@dataclass
class _Backoff:
    """The retry policy for a lost connection: a notice when it is lost and when it is back,
    a doubling delay (BACKOFF_FIRST_S up to BACKOFF_MAX_S), and giving up after
    `retry_for_ms` without the server (ConnectionFailed, exit 3)."""

    retry_for_ms: int
    clock: Callable[[], float]
    on_notice: Notice
    failing_since: float | None = None
    attempt: int = 0
    losses: int = 0

    def lost(self, exc: BaseException) -> float:
        """The delay before the next attempt; raises ConnectionFailed when time is up."""
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
            self.losses += 1
            self.on_notice(
                f"connection lost ({_one_line(exc)}); retrying for up to "
                f"{duration_text(self.retry_for_ms)}"
            )
        waited_ms = (now - self.failing_since) * 1000
        if waited_ms >= self.retry_for_ms:
            raise ConnectionFailed(
                f"gave up after {format_duration(waited_ms)} without the server "
                f"(--retry-for {duration_text(self.retry_for_ms)}): {_one_line(exc)}"
            ) from None
        delay: float = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0**self.attempt)
        delay = min(delay, max(0.0, self.retry_for_ms / 1000 - (now - self.failing_since)))
        self.attempt += 1
        return delay

    def recovered(self) -> bool:
        """After a successful read: True once per outage (the caller says where it resumes)."""
        if self.failing_since is None:
            return False
        self.failing_since, self.attempt = None, 0
        return True


class _Follower:
    """The loop: acknowledge what is owed, stop when done, read a round, write and flush what
    passes, acknowledge it; a lost connection is retried by `_Backoff`."""

    def __init__(
        self,
        client: Client,
        opts: FollowOptions,
        sink: EntrySink,
        on_notice: Notice,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.opts = opts
        self.sink = sink
        self.on_notice = on_notice
        self.sleep = sleep
        self.clock = clock
        self.result = FollowResult()
        self.states: dict[str, _StreamState] = {}
        self.selection = _Selection(opts, self.result)
        # the idle clock (--timeout): since the last matching entries were written and flushed,
        # so time spent writing to a slow reader is not idle; only waiting for the server is
        self.idle_since = 0.0
        self.acks = (
            _Acks(client, opts.group, opts.command_timeout_s, self.result)
            if opts.group is not None
            else None
        )
        self.rounds = _Rounds(client, opts, self.acks if opts.ack else None)
        self.backoff = _Backoff(opts.retry_for_ms, clock, on_notice)

    def run(self) -> FollowResult:
        try:
            return self._run()
        finally:
            left = self.rounds.cut()
            if self.opts.group is not None:
                self.result.left_pending += left

    def _setup(self) -> None:
        groups = slot_groups(self.client, list(self.opts.streams))
        if len(groups) > 1:
            self.rounds.fanout = _FanOut(groups, self.clock, self.client)
        self.states = _Starts(self.client, self.opts, self.on_notice).states()

    def _run(self) -> FollowResult:
        self._setup()
        self.idle_since = self.clock()
        while True:
            try:
                if self.acks is not None and self.acks.unacked and self.rounds.ahead is None:
                    self.acks.send()  # with a read ahead, they ride in front of the next one
                if self._finished():
                    return self.result
                batches = self.rounds.read(
                    self.states, remaining_ms=self._remaining_ms(), seen=self.result.seen
                )
                if self.backoff.recovered():
                    self.on_notice(f"reconnected; resuming after {self._positions_text()}")
                self._handle(batches)
                if self._idle_expired(batches):
                    return self.result
            except CONNECTION_LOST as exc:
                delay = self.backoff.lost(exc)
                self.result.reconnects = self.backoff.losses
                self._after_disconnect()
                self.sleep(delay)
            except ResponseError as exc:
                raise self._refusal(exc) from None

    def _finished(self) -> bool:
        if self.opts.count is not None and self.result.seen >= self.opts.count:
            self.result.stopped = "count"
            return True
        if not self.opts.follow and all(s.done for s in self.states.values()):
            self.result.stopped = "end"
            return True
        return False

    def _remaining_ms(self) -> int | None:
        if self.opts.idle_timeout_ms is None:
            return None
        waited = (self.clock() - self.idle_since) * 1000
        return max(0, int(self.opts.idle_timeout_ms - waited))

    def _idle_expired(self, batches: list[EntryBatch]) -> bool:
        """After a read: stop when the idle time is over. Entries that do not match do not reset
        the clock (a busy stream must not keep a wait-for-event alive), but a full batch means a
        backlog is being read: it is read to the end before the clock may stop it."""
        if self.opts.idle_timeout_ms is None or not self.opts.follow:
            return False
        if any(len(b.entries) >= self.rounds.last_count for b in batches):
            return False
        if self._finished():
            return False  # the loop's own check reports it
        remaining = self._remaining_ms()
        if remaining is not None and remaining <= 0:
            self.result.stopped = "timeout"
            self.result.idle_ms = int((self.clock() - self.idle_since) * 1000)
            return True
        return False

    def _handle(self, batches: list[EntryBatch]) -> None:
        """Write the read's passing entries as blocks, flush once, then acknowledge them (one
        XACK per stream). When writing or flushing fails (closed pipe, Ctrl-C), nothing of this
        read is acknowledged: whether the reader got it is unknown, so it stays pending."""
        written: dict[str, list[bytes]] = {}
        acking = self.acks is not None and self.opts.ack
        wrote = False
        try:
            for batch in batches:
                passing = self.selection.select(self.states[batch.stream], batch)
                if passing:
                    self.sink.write(batch.stream, passing)
                    wrote = True
                    if acking:
                        written.setdefault(batch.stream, []).extend(e[0] for e in passing)
            if any(b.entries for b in batches):
                self.sink.flush()
        except BaseException:
            # the interruption is what the user must see, not a failed ack
            if self.acks is not None:
                with contextlib.suppress(Exception):
                    self.acks.send(best_effort=True)
            raise
        if wrote:
            self.idle_since = self.clock()
        if self.acks is not None:
            self.acks.add(written)
            if self.rounds.ahead is None:
                self.acks.send(best_effort=True)

    def _after_disconnect(self) -> None:
        self.rounds.cut()  # reads on the lost connections: sent again after the retry
        if self.opts.group is None:
            return
        # replies lost with the connection may have delivered entries to us: re-read our own
        # pending entries after the last one handled before reading `>` again
        for state in self.states.values():
            if not state.done:
                state.history = True

    def _positions_text(self) -> str:
        return ", ".join(f"{s.name} {s.position}" for s in self.states.values())

    def _refusal(self, exc: ResponseError) -> Exception:
        text = _one_line(exc)
        group = self.opts.group
        if group is not None and (text.startswith("NOGROUP") or text.startswith("UNBLOCKED")):
            names = ", ".join(repr(n) for n in self.opts.streams)
            return NotFound(
                f"group {group!r} on {names} no longer exists (the stream or the group was deleted)"
            )
        if text.startswith("WRONGTYPE"):
            names = ", ".join(repr(n) for n in self.opts.streams)
            return ServerRefused(f"WRONGTYPE: a key among {names} is no longer a stream")
        return ServerRefused(f"the server refused: {text}")


def duration_text(ms: int) -> str:
    """A duration as given: '1500ms' stays exact where format_duration would say '1s'."""
    return f"{ms}ms" if ms % 1000 else format_duration(ms)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__


def follow(
    client: Client,
    opts: FollowOptions,
    sink: EntrySink | Callable[[str, RawEntry], None],
    *,
    on_notice: Notice = lambda message: None,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowResult:
    """Follow the streams until --count, the idle timeout, the end (--no-follow) or an error.

    `sink` gets each read's entries as blocks and one flush (or, a function, each entry, which
    it writes and flushes); raising from it stops the loop, and what that read delivered stays
    pending (entries of earlier reads are acknowledged). Errors: NotFound (stream or group),
    ServerRefused, ConnectionFailed (after `retry_for_ms` without the server), BadInput.
    """
    resolved = cast(EntrySink, sink) if hasattr(sink, "flush") else _EachEntry(sink)
    return _Follower(client, opts, resolved, on_notice, sleep).run()
