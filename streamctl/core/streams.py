"""Streams: existence checks, publishing (one event or pipelined bulk), ranges, ls and info."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from streamctl.core.connection import (
    Client,
    is_cluster,
    node_client,
    redirect_error,
    redirect_word,
    server_time_ms,
)
from streamctl.core.wire import (
    PipelinedSender,
    opt_id,
    opt_int,
    pack,
    pairs,
    raw_command,
    require_stream,
    text,
)
from streamctl.errors import (
    BadInput,
    CheckFailed,
    NotFound,
    PartialFailure,
    ServerRefused,
    StreamctlError,
)
from streamctl.inputs import FieldPairs, json_text_values
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.core.durability import Durability
    from streamctl.core.filters import EntryFilter
    from streamctl.core.models import (
        EntryBatch,
        RawEntry,
        StreamInfo,
        StreamSummary,
    )

# models and ids load on first use: a one-shot publish needs neither (start-up time)

RANGE_BATCH = 1000
PUBLISH_BATCH = 1000


# ---- publish ----


class StoppedEarly(Exception):
    """Bulk work stopped on request (a signal) after `done` items, all of them complete."""

    def __init__(self, done: int) -> None:
        super().__init__(f"stopped after {done}")
        self.done = done


def trim_args(maxlen: int | None, minid: str | None, approx: bool) -> list[Any]:
    if maxlen is not None and minid is not None:
        raise BadInput("give --maxlen or --minid, not both")
    if maxlen is not None:
        if maxlen < 0:
            raise BadInput(f"bad --maxlen {maxlen}: give a count of 0 or more")
        return ["MAXLEN", "~" if approx else "=", maxlen]
    if minid is not None:
        return ["MINID", "~" if approx else "=", minid]
    return []


def xadd_args(
    stream: str,
    fields: FieldPairs,
    *,
    entry_id: str = "*",
    trim: list[Any] | None = None,
    mkstream: bool = True,
) -> list[Any]:
    args: list[Any] = ["XADD", stream]
    if not mkstream:
        args.append("NOMKSTREAM")
    if trim:
        args.extend(trim)
    args.append(entry_id)
    for name, value in fields:
        args.append(name)
        args.append(value)
    return args


def _xadd_refusal(client: Client, exc: ResponseError, stream: str, entry_id: str) -> StreamctlError:
    redirect = redirect_error(exc, client=client)
    if redirect is not None:
        return redirect
    message = str(exc)
    if "equal or smaller" in message:
        return ServerRefused(
            f"id {entry_id} is not after the last id of {stream!r}: stream ids only grow "
            "(use * or a larger id)"
        )
    if "Invalid stream ID" in message:
        return BadInput(f"bad --id {entry_id!r}: accepted * , ms-* or ms-seq")
    if message.startswith("WRONGTYPE"):
        return ServerRefused(f"WRONGTYPE: key {stream!r} is not a stream")
    return ServerRefused(f"the server refused: {message}")


def publish_one(
    client: Client,
    stream: str,
    fields: FieldPairs,
    *,
    entry_id: str = "*",
    trim: list[Any] | None = None,
    mkstream: bool = True,
    durability: Durability | None = None,
) -> str:
    """XADD one event and return its id; with `durability`, WAIT (or WAITAOF) after it on the
    same connection (CheckFailed when it is not confirmed: the event stays published)."""
    if not fields:
        raise BadInput("an event needs at least one field: FIELD=VALUE, --json or --file")
    args = xadd_args(stream, fields, entry_id=entry_id, trim=trim, mkstream=mkstream)
    waited: Any = None
    if durability is not None:
        from streamctl.core import durability as waits

        waits.require_support(client, durability)
        reply, waited = waits.write_then_wait(client, args, durability)
        if isinstance(reply, ResponseError):
            raise _xadd_refusal(client, reply, stream, entry_id) from None
    else:
        try:
            reply = raw_command(client, *args)
        except ResponseError as exc:
            raise _xadd_refusal(client, exc, stream, entry_id) from None
    if reply is None:
        raise NotFound(f"stream {stream!r} does not exist (--no-mkstream)")
    new_id = text(reply)
    if durability is not None:
        waits.require(durability, waited, f"event {new_id} was published")
    return new_id


class _Publication:
    """XADD batches on one PipelinedSender with two batches in flight: the next batch is sent
    before the replies of the previous one are read, so the server works while we parse and
    pack. `published` counts only the replies read, i.e. the events the server acknowledged.
    With `durability`, each batch is followed by its WAIT (WAITAOF), the batch's last reply.
    """

    def __init__(
        self,
        client: Client,
        stream: str,
        on_ids: Callable[[list[bytes]], None],
        durability: Durability | None = None,
    ) -> None:
        self.sender = PipelinedSender(client, stream)
        self.stream = stream
        self.on_ids = on_ids
        self.published = 0
        self.durability = durability
        self.wait_packed = pack(durability.command()) if durability is not None else b""

    def send(self, commands: list[bytes], count: int | None = None) -> None:
        """Send packed commands: one per event, or `count` events packed together."""
        if not commands:
            return
        if self.durability is not None:
            events = len(commands) if count is None else count
            commands, count = [*commands, self.wait_packed], events + 1
        self.sender.send(commands, count)
        if len(self.sender.inflight) > 1:
            self._read()

    def flush(self) -> None:
        while self.sender.inflight:
            self._read()

    def _read(self) -> None:
        replies: list[Any] = []
        try:
            if self.durability is None:
                self.sender.receive(replies)
            else:
                self._receive_waited(replies)
        finally:
            ids = [r for r in replies if r.__class__ is bytes]
            self.published += len(ids)
            if ids:
                self.on_ids(ids)
        waited: Any = None
        if self.durability is not None:
            waited = replies.pop()
        if len(ids) == len(replies):
            if self.durability is not None:
                from streamctl.core.durability import require, wait_reply

                require(self.durability, wait_reply(waited), "a batch of events was published")
            return
        if any(r is None for r in replies):  # no id for that event
            raise NotFound(f"stream {self.stream!r} does not exist (--no-mkstream)")
        failure = next(r for r in replies if r.__class__ is not bytes)
        if str(failure).startswith("READONLY"):  # the primary was demoted (a failover)
            from redis.exceptions import ConnectionError as RedisConnectionError

            from streamctl.core.connection import mark_lost

            self.sender.close(broken=True)
            raise mark_lost(RedisConnectionError(f"the primary was demoted: {failure}"))
        raise _xadd_refusal(self.sender.client, ResponseError(str(failure)), self.stream, "*")

    def _receive_waited(self, replies: list[Any]) -> None:
        from streamctl.core.durability import receive_waited

        assert self.durability is not None
        receive_waited(self.sender, self.durability, replies)

    def close(self, *, broken: bool) -> None:
        self.sender.close(broken=broken)


def _event_args(fields: Any) -> tuple[Any, ...]:
    """XADD's field arguments for an event: a dict, FieldPairs or a flat [name, value, ...]."""
    kind = type(fields)
    if kind is dict:
        return tuple(chain.from_iterable(fields.items()))
    if fields and type(fields[0]) is tuple:
        return tuple(chain.from_iterable(fields))
    return tuple(fields)


def _packed_units(
    prefix: tuple[Any, ...], events: Iterable[Any], batch_size: int
) -> Iterator[tuple[bytes, int]]:
    """(packed XADD commands, how many events) for the events, in order.

    Blocks of NDJSON objects of one shape with string values (the usual file) are packed a
    slice at a time, column by column (pack_uniform); anything else one event at a time with
    hiredis, values that are not str/bytes/int/float as their JSON text.
    """
    import hiredis

    pack = hiredis.pack_command
    blocks = getattr(events, "blocks", None)
    groups: Iterable[list[Any]] = blocks() if blocks is not None else ([e] for e in events)
    done = 0
    for group in groups:
        for start in range(0, len(group), batch_size):
            part = group[start : start + batch_size]
            packed = pack_uniform(prefix, part) if len(part) > 1 else None
            if packed is not None:
                done += len(part)
                yield packed, len(part)
                continue
            for fields in part:
                if not fields:
                    raise BadInput("an event needs at least one field")
                try:
                    command = pack(prefix + _event_args(fields))
                except TypeError:  # a value that is not str/bytes/int/float: its JSON text
                    command = pack(prefix + tuple(json_text_values(list(_event_args(fields)))))
                except UnicodeEncodeError as exc:
                    raise BadInput(f"event {done + 1}: {exc}") from None
                done += 1
                yield command, 1


def pack_uniform(
    prefix: tuple[Any, ...], events: list[Any], ids: list[str] | None = None
) -> bytes | None:
    """The XADD commands of `events` in RESP, built column by column (C-level map/zip/join,
    nothing per event in Python), when every event is a dict with the same keys in the same
    order and only string values; None otherwise. Byte for byte what hiredis packs for
    `(*prefix, *fields)`, or with `ids` `(*prefix, ids[i], *fields)`."""
    shape = _uniform_values(events)
    if shape is None:
        return None
    packed = _pack_ascii(prefix, shape, ids)
    if packed is not None:
        return packed
    rows = _uniform_rows(prefix, shape, ids)
    return None if rows is None else b"".join(chain.from_iterable(rows))


def pack_uniform_each(
    prefix: tuple[Any, ...], events: list[Any], ids: list[str] | None = None
) -> list[bytes] | None:
    """pack_uniform's commands one by one (a list of packed commands, one per event)."""
    shape = _uniform_values(events)
    rows = None if shape is None else _uniform_rows(prefix, shape, ids)
    return None if rows is None else list(map(b"".join, rows))


_Shape = list[tuple[str, list[str]]]  # each field's name and its values, one per event


def _uniform_values(events: list[Any]) -> _Shape | None:
    """The events' fields column by column when every event is a dict with the same keys in
    the same order and only string values; None otherwise."""
    if events[0].__class__ is not dict:
        return None
    shapes = set(map(tuple, events))
    if len(shapes) != 1:
        return None
    (keys,) = shapes
    if not keys:
        return None
    shape: _Shape = []
    for key in keys:
        values = list(map(itemgetter(key), events))
        if set(map(type, values)) != {str}:
            return None
        shape.append((key, values))
    return shape


def _pack_ascii(prefix: tuple[Any, ...], shape: _Shape, ids: list[str] | None) -> bytes | None:
    """pack_uniform built as text and encoded once, when all of it is ASCII (a character is
    then a byte, so the lengths are the strings' lengths): no encoding per value; None
    otherwise."""
    import hiredis

    try:
        head = hiredis.pack_command(prefix).decode("ascii")
    except UnicodeDecodeError:
        return None
    arity = len(prefix) + (ids is not None) + 2 * len(shape)
    rest = head[head.index("\r\n") + 2 :]
    columns: list[Iterable[str]] = [repeat(f"*{arity}\r\n{rest}")]
    if ids is not None:
        columns += [repeat("$"), map(str, map(len, ids)), repeat("\r\n"), ids, repeat("\r\n")]
    for key, values in shape:
        columns += [
            repeat(f"${len(key)}\r\n{key}\r\n$"),
            map(str, map(len, values)),
            repeat("\r\n"),
            values,
            repeat("\r\n"),
        ]
    text = "".join(chain.from_iterable(zip(*columns, strict=False)))
    return text.encode("ascii") if text.isascii() else None


def _uniform_rows(
    prefix: tuple[Any, ...], shape: _Shape, ids: list[str] | None
) -> Iterator[tuple[bytes, ...]] | None:
    """The pieces of each event's command, in order (see pack_uniform)."""
    import hiredis

    keys = [key for key, _ in shape]
    try:
        columns: list[Iterable[bytes]] = []
        for key, values in shape:
            encoded = list(map(str.encode, values))
            name = key.encode()
            columns.append(repeat(b"$%d\r\n%s\r\n$" % (len(name), name)))
            columns.append(map(b"%d\r\n".__mod__, map(len, encoded)))
            columns.append(encoded)
            columns.append(repeat(b"\r\n"))
    except UnicodeEncodeError:
        return None  # a lone surrogate: the per-event path names it
    if ids is not None:
        encoded_ids = list(map(str.encode, ids))
        columns[:0] = [
            map(b"$%d\r\n".__mod__, map(len, encoded_ids)),
            encoded_ids,
            repeat(b"\r\n"),
        ]
    head = hiredis.pack_command(prefix)
    arity = len(prefix) + (ids is not None) + 2 * len(keys)
    head = b"*%d\r\n" % arity + head[head.index(b"\r\n") + 2 :]
    return zip(repeat(head), *columns, strict=False)


def publish_many(
    client: Client,
    stream: str,
    events: Iterable[Any],
    *,
    trim: list[Any] | None = None,
    mkstream: bool = True,
    on_ids: Callable[[list[bytes]], None] = lambda ids: None,
    batch_size: int = PUBLISH_BATCH,
    should_stop: Callable[[], bool] = lambda: False,
    skipped: int = 0,
    durability: Durability | None = None,
    on_notice: Callable[[str], None] = lambda text: None,
) -> int:
    """Publish events in pipelined batches; returns how many the server acknowledged.

    An event is a dict, FieldPairs ((name, value), ...) or a flat [name, value, ...] list; str,
    bytes, int and float values are written as they are, others as their JSON text. `on_ids`
    gets the new ids (bytes) of each batch as the server acknowledges it.
    A malformed event (BadInput from the reader) first publishes every event before it, then
    raises PartialFailure naming the line and the count; so does a failure of the server, with
    the count of events it acknowledged before the failure. `should_stop` is checked between
    batches (a signal): the batches in flight are completed, then StoppedEarly is raised.
    `skipped`: events of the input skipped before these (the rerun hint counts from the start).
    `durability`: WAIT (or WAITAOF) after each batch; a batch not confirmed ends the run with
    PartialFailure (exit 5), its events published and counted.
    Through Sentinel or on a cluster, a lost connection or a replica promoted (a failover) is
    followed: the run waits for the new primary and publishes again from the first event it
    lacks (core/failover.py), saying so with `on_notice`.
    """
    if durability is not None:
        from streamctl.core.durability import require_support

        require_support(client, durability)
    from streamctl.core.failover import LOST, Resend

    sender = _Publication(client, stream, on_ids, durability)
    prefix = tuple(xadd_args(stream, (), trim=trim, mkstream=mkstream))
    units: Iterator[tuple[bytes, int]] = _packed_units(prefix, events, batch_size)
    broken = True
    resend: Resend | None = None
    try:
        # Sentinel, cluster: ready to publish again after a failover (asking whether the server
        # is a cluster node is its first round trip: a failure there is the run's)
        resend = Resend.wanted(client)
        if resend is not None:
            sender.on_ids = resend.keeping(on_ids)
        while True:
            try:
                _publish_units(sender, units, resend, batch_size, should_stop)
                break
            except LOST as exc:
                if resend is None:
                    raise
                sender.close(broken=True)
                sender.published = resend.recover(client, stream, skipped, exc)
                on_notice(
                    f"the connection to the primary was lost ({exc}); publishing again from "
                    f"event {skipped + sender.published + 1}, the first the primary now lacks"
                )
                units = chain(resend.again(), units)
        broken = False
    except (PartialFailure, StoppedEarly):
        broken = False
        raise
    except CheckFailed as exc:  # a wait not confirmed: the events it followed are published
        with contextlib.suppress(CheckFailed):
            sender.flush()  # the batch in flight is published too: count it
        published = count_noun(sender.published, "event was", "events were", grouped=False)
        raise PartialFailure(
            f"{exc}; {published} published "
            f"(rerun with --skip {skipped + sender.published} to publish the rest)",
            done=sender.published,
            exit_code=exc.exit_code,
        ) from None
    except BaseException as exc:
        from streamctl.core.connection import translate_error

        mapped = translate_error(exc, client=client)
        if mapped is None:
            raise
        published = count_noun(sender.published, "event was", "events were", grouped=False)
        raise PartialFailure(
            f"{mapped}; {published} published before it "
            f"(rerun with --skip {skipped + sender.published} to publish the rest)",
            done=sender.published,
            exit_code=mapped.exit_code,
        ) from None
    finally:
        sender.close(broken=broken)
        if resend is not None:
            resend.close()
    return sender.published


def _publish_units(
    sender: _Publication,
    units: Iterator[tuple[bytes, int]],
    resend: Any,
    batch_size: int,
    should_stop: Callable[[], bool],
) -> None:
    """Send the units in batches and read every reply (see publish_many); each unit is handed
    to `resend` (when publishing through Sentinel) as it is taken."""
    batch: list[bytes] = []
    in_batch = 0
    try:
        for packed, count in units:
            if resend is not None:
                resend.pulled(packed, count)
            batch.append(packed)
            in_batch += count
            if in_batch >= batch_size:
                sender.send(batch, in_batch)
                batch, in_batch = [], 0
                if should_stop():
                    sender.flush()
                    raise StoppedEarly(sender.published)
    except BadInput as exc:
        sender.send(batch, in_batch)
        sender.flush()
        before = count_noun(
            sender.published, "event before it was", "events before it were", grouped=False
        )
        raise PartialFailure(
            f"{exc}; {before} published",
            done=sender.published,
            exit_code=exc.exit_code,
        ) from None
    sender.send(batch, in_batch)
    sender.flush()


# ---- ranges ----


def resolve_range(client: Client, start: str, end: str) -> tuple[str, str]:
    """START and END (the id/time grammar) as the server's inclusive ids; the server's clock is
    read once, and only for a duration."""
    from streamctl.ids import parse_position, resolve_end, resolve_start

    start_pos = parse_position(start)
    end_pos = parse_position(end)
    if end_pos.exclusive:
        raise BadInput(f"bad --to {end!r}: '(' marks an exclusive start, not an end")
    now: list[int] = []

    def now_ms() -> int:
        if not now:
            now.append(server_time_ms(client))
        return now[0]

    return resolve_start(start_pos, now_ms), resolve_end(end_pos, now_ms)


def pin_end(end: str, last_id: str | None) -> str | None:
    """The range end, fixed at the stream's last id now: entries added later (possibly by this
    very replay) are not part of it. None when the range holds nothing."""
    if last_id is None or end == "-":
        return None
    if end == "+":
        return last_id
    from streamctl.ids import StreamId

    return str(min(StreamId.parse(end), StreamId.parse(last_id)))


def read_range(
    client: Client,
    stream: str,
    start: str = "-",
    end: str = "+",
    *,
    count: int | None = None,
    reverse: bool = False,
    batch_size: int = RANGE_BATCH,
    check_exists: bool = True,
    filter: EntryFilter | None = None,
) -> Iterator[EntryBatch]:
    """Entries from start to end (inclusive ids as the server understands them), in batches.

    Memory is bounded by the batch size. The next batch is requested before the current one is
    handed out, so the server works while the caller writes. With `filter` (match/where), only
    the passing entries, and `count` is how many of those.
    """
    from streamctl.core.models import EntryBatch
    from streamctl.ids import MAX_ID, MIN_ID, StreamId

    if check_exists:
        require_stream(client, stream)
    if count is not None and count <= 0:
        return
    if filter is not None:
        wanted = count
        for batch in read_range(
            client, stream, start, end, reverse=reverse, batch_size=batch_size, check_exists=False
        ):
            passing = filter.select(stream, batch.entries)
            if wanted is not None:
                passing = passing[:wanted]
                wanted -= len(passing)
            if passing:
                yield EntryBatch(stream, passing)
            if wanted == 0:
                return  # the read ahead is cut with its connection (closing the generator)
        return
    remaining = count
    pool = node_client(client, stream).connection_pool
    conn: Any = pool.get_connection()
    command = "XREVRANGE" if reverse else "XRANGE"
    # XRANGE key start end / XREVRANGE key end start; paging moves the first bound
    first, second = (end, start) if reverse else (start, end)

    def request(n: int) -> None:
        conn.send_command(command, stream, first, second, "COUNT", n)

    try:
        n = min(batch_size, remaining) if remaining is not None else batch_size
        request(n)
        while True:
            try:
                reply: list[RawEntry] = conn.read_response()
            except ResponseError as exc:
                if redirect_word(exc) not in ("MOVED", "ASK") or not is_cluster(client):
                    raise
                # the slot is moving: this page again as raw_command follows it, the next
                # ones from the node that owns the slot now
                reply = raw_command(client, command, stream, first, second, "COUNT", n)
                pool.release(conn)
                pool = node_client(client, stream).connection_pool
                conn = pool.get_connection()
            if not reply:
                return
            if remaining is not None:
                remaining -= len(reply)
            more = len(reply) == n and (remaining is None or remaining > 0)
            if more:
                last = StreamId.parse(reply[-1][0])
                if reverse:
                    more = last != MIN_ID
                    first = str(last.previous())
                else:
                    more = last != MAX_ID
                    first = str(last.next())
                if more:
                    n = min(batch_size, remaining) if remaining is not None else batch_size
                    request(n)
            yield EntryBatch(stream, reply)
            if not more:
                return
    except BaseException:
        # a half-read pipeline leaves replies on the socket: never reuse that connection
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


# ---- ls / info ----


def scan_streams(client: Client, pattern: str = "*") -> list[str]:
    """Stream names matching the glob, sorted; on a cluster every primary is scanned."""
    from streamctl.core.fleet import scan_names

    return scan_names(client, pattern)[0]


def _xinfo_stream(client: Client, stream: str) -> dict[str, Any]:
    try:
        reply = raw_command(client, "XINFO", "STREAM", stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            raise NotFound(f"stream {stream!r} does not exist") from None
        if str(exc).startswith("WRONGTYPE"):
            raise ServerRefused(f"WRONGTYPE: key {stream!r} is not a stream") from None
        raise
    return pairs(reply)


def list_streams(
    client: Client,
    pattern: str = "*",
    *,
    memory: bool = False,
    on_refused: Callable[[str, str], None] | None = None,
) -> list[StreamSummary]:
    """The streams SCAN finds, described. A stream the user may not read (NOPERM) is left out
    and reported to `on_refused(name, reason)`; one deleted since the SCAN is left out."""
    from streamctl.core.connection import node_client
    from streamctl.core.endpoint import endpoint_of
    from streamctl.core.fleet import describe_streams
    from streamctl.core.models import Endpoint, StreamSummary

    endpoints: dict[int, Endpoint] = {}  # per node (one on a single server)

    def endpoint(name: str) -> Endpoint:
        node = node_client(client, name)
        if id(node) not in endpoints:
            endpoints[id(node)] = endpoint_of(client, node)
        return endpoints[id(node)]

    described = describe_streams(
        client, scan_streams(client, pattern), groups=False, memory=memory, on_refused=on_refused
    )
    return [
        StreamSummary(
            name=s.name,
            length=s.length,
            groups=s.group_count,
            first_id=s.first_id,
            last_id=s.last_id,
            last_generated_id=s.last_generated_id,
            now_ms=s.now_ms,
            memory=s.memory,
            endpoint=endpoint(s.name),
        )
        for s in described
    ]


def stream_info(client: Client, stream: str) -> StreamInfo:
    from streamctl.core.connection import node_client
    from streamctl.core.endpoint import endpoint_of
    from streamctl.core.groups import list_groups
    from streamctl.core.models import Entry, StreamInfo

    info = _xinfo_stream(client, stream)
    now = server_time_ms(client)
    first = info.get("first-entry")
    last = info.get("last-entry")
    return StreamInfo(
        name=stream,
        length=int(info["length"]),
        first_entry=Entry.from_raw(stream, first) if first else None,
        last_entry=Entry.from_raw(stream, last) if last else None,
        last_generated_id=text(info["last-generated-id"]),
        entries_added=opt_int(info.get("entries-added")),
        max_deleted_id=opt_id(info.get("max-deleted-entry-id")),
        recorded_first_id=opt_id(info.get("recorded-first-entry-id")),
        radix_tree_keys=opt_int(info.get("radix-tree-keys")),
        radix_tree_nodes=opt_int(info.get("radix-tree-nodes")),
        now_ms=now,
        groups=list_groups(client, stream, check_exists=False),
        endpoint=endpoint_of(client, node_client(client, stream)),
    )
