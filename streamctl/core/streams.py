"""Streams: existence checks, publishing (one event or pipelined bulk), ranges, ls and info."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from streamctl.core.connection import (
    Client,
    command_key,
    is_cluster,
    node_client,
    primaries,
    redirect_error,
    route,
    server_time_ms,
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

if TYPE_CHECKING:
    from streamctl.core.durability import Durability
    from streamctl.core.filters import EntryFilter
    from streamctl.core.models import (
        Entry,
        EntryBatch,
        PublishResult,
        RawEntry,
        StreamInfo,
        StreamSummary,
    )

# models and ids load on first use: a one-shot publish needs neither (start-up time)

RANGE_BATCH = 1000
PUBLISH_BATCH = 1000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def key_type(client: Client, stream: str) -> str:
    return _text(node_client(client, stream).type(stream))


def require_stream(client: Client, stream: str) -> None:
    """Exit 4 when the key is missing, exit 1 when it holds something that is not a stream."""
    kind = key_type(client, stream)
    if kind == "none":
        raise NotFound(f"stream {stream!r} does not exist")
    if kind != "stream":
        raise ServerRefused(f"WRONGTYPE: key {stream!r} holds a {kind}, not a stream")


# ---- raw commands: replies without redis-py's per-entry callbacks ----
#
# On a Redis Cluster each command goes to the node owning its key (connection.route); a
# pipeline is split per node. A MOVED/ASK/CLUSTERDOWN reply is raised as a one-line error,
# never handed back as the command's verdict.


def raw_command(client: Client, *args: Any) -> Any:
    """Send one command and return the reply as hiredis parsed it (lists and bytes)."""
    node = route(client, args)
    pool = node.connection_pool
    conn: Any = pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    except ResponseError as exc:
        # an error reply: the connection is in step and can be reused
        redirect = redirect_error(exc, client=node)
        if redirect is not None:
            raise redirect from None
        raise
    except BaseException:
        conn.disconnect()  # a half-read reply must never reach the next command
        raise
    finally:
        pool.release(conn)


def raw_pipeline(client: Client, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send commands in one write and read every reply; an error reply is returned, not raised.

    On a cluster the commands are sent per node (one write each), the replies in their order;
    a MULTI ... EXEC block goes whole to the node of its first key (its keys share a slot)."""
    if not commands:
        return []
    if not is_cluster(client):
        return _pipeline_on(client, commands)
    by_node: dict[int, tuple[Client, list[int]]] = {}
    units: list[list[int]] = []
    block: list[int] | None = None
    for i, cmd in enumerate(commands):
        word = _text(cmd[0]).upper()
        if block is not None:
            block.append(i)
            if word in ("EXEC", "DISCARD"):
                units.append(block)
                block = None
        elif word == "MULTI":
            block = [i]
        else:
            units.append([i])
    if block is not None:
        units.append(block)
    for unit in units:
        keyed = [commands[i] for i in unit if command_key(commands[i]) is not None] or [
            commands[unit[0]]
        ]
        node = route(client, keyed[0])
        by_node.setdefault(id(node), (node, []))[1].extend(unit)
    replies: list[Any] = [None] * len(commands)
    for node, indexes in by_node.values():
        for i, reply in zip(
            indexes, _pipeline_on(node, [commands[i] for i in indexes]), strict=True
        ):
            replies[i] = reply
    return replies


def _pipeline_on(client: Client, commands: list[tuple[Any, ...]]) -> list[Any]:
    pool = client.connection_pool
    conn: Any = pool.get_connection()
    replies: list[Any] = []
    redirect: StreamctlError | None = None
    try:
        conn.send_packed_command([b"".join(_pack(list(cmd)) for cmd in commands)])
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
                redirect = redirect or redirect_error(exc, client=client)
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    if redirect is not None:
        raise redirect
    return replies


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
    text = str(exc)
    if "equal or smaller" in text:
        return ServerRefused(
            f"id {entry_id} is not after the last id of {stream!r}: stream ids only grow "
            "(use * or a larger id)"
        )
    if "Invalid stream ID" in text:
        return BadInput(f"bad --id {entry_id!r}: accepted * , ms-* or ms-seq")
    if text.startswith("WRONGTYPE"):
        return ServerRefused(f"WRONGTYPE: key {stream!r} is not a stream")
    return ServerRefused(f"the server refused: {text}")


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
    new_id = _text(reply)
    if durability is not None:
        waits.require(durability, waited, f"event {new_id} was published")
    return new_id


def _pack(args: list[Any]) -> bytes:
    import hiredis

    return hiredis.pack_command(tuple(args))  # type: ignore[no-any-return]


class _BulkSender:
    """Pipelined XADD on one connection: pack a batch, one send, read the replies in C.

    Two batches are in flight: the next batch is sent before the replies of the previous one are
    read, so the server works while we parse and pack. `published` counts only the replies read,
    i.e. the events the server acknowledged.
    """

    def __init__(
        self,
        client: Client,
        stream: str,
        on_ids: Callable[[list[bytes]], None],
        durability: Durability | None = None,
    ) -> None:
        import hiredis

        self.durability = durability
        self.wait_packed = _pack(list(durability.command())) if durability is not None else b""
        self.client = client
        self.stream = stream
        self.on_ids = on_ids
        self.published = 0
        self.pool: Any = None
        self.conn: Any = None
        self.reader = hiredis.Reader()
        self.inflight: list[int] = []  # events per batch sent, replies not read yet

    def _connection(self) -> Any:
        if self.conn is None:
            # one stream is one key: its node's connection (resolved with the first batch, so a
            # failure to reach the server is reported with the published count like any other)
            self.pool = node_client(self.client, self.stream).connection_pool
            self.conn = self.pool.get_connection()
        return self.conn

    def send(self, commands: list[bytes], count: int | None = None) -> None:
        """Send packed commands: one per event, or `count` events packed together."""
        if not commands:
            return
        if self.durability is not None:  # the batch, then the wait for it (its last reply)
            commands = [*commands, self.wait_packed]
        try:
            self._connection().send_packed_command([b"".join(commands)])
        except BaseException as exc:
            raise self._worded(exc)  # noqa: B904 - the same exception, reworded
        self.inflight.append(
            (len(commands) - (self.durability is not None)) if count is None else count
        )
        if len(self.inflight) > 1:
            self._read(self.inflight.pop(0))

    def flush(self) -> None:
        while self.inflight:
            self._read(self.inflight.pop(0))

    def _worded(self, exc: BaseException, replies_now: int = 0) -> BaseException:
        """A failure after the server acknowledged events reads "lost the connection to URL"
        (not "cannot connect", nor the TLS hint of a first exchange)."""
        from streamctl.core.connection import mark_lost

        return mark_lost(exc) if self.published or replies_now else exc

    def close(self, *, broken: bool) -> None:
        if self.conn is not None:
            if broken or self.inflight:
                self.conn.disconnect()  # unread replies must never reach the next user
            self.pool.release(self.conn)
            self.conn = None

    def _read(self, n: int) -> None:
        import hiredis

        sock = self.conn._sock
        reader = self.reader
        gets = reader.gets
        ids: list[bytes] = []
        append = ids.append
        got = 0
        failure: StreamctlError | None = None
        missing = False
        try:
            while got < n:
                reply = gets()
                if reply.__class__ is bytes:
                    append(reply)
                    got += 1
                    continue
                if reply is False:
                    data = sock.recv(1 << 16)
                    if not data:
                        from redis.exceptions import ConnectionError as RedisConnectionError

                        closed = RedisConnectionError("the server closed the connection")
                        raise self._worded(closed, got)
                    reader.feed(data)
                    continue
                n -= 1  # an error or a nil reply: no id for that event
                if reply is None:
                    missing = True
                elif isinstance(reply, hiredis.ReplyError) and failure is None:
                    failure = _xadd_refusal(
                        self.client, ResponseError(str(reply)), self.stream, "*"
                    )
        except OSError as exc:
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError

            lost: Exception = (
                RedisTimeoutError("timed out reading replies")
                if isinstance(exc, TimeoutError)
                else RedisConnectionError(f"error reading replies: {exc}")
            )
            raise self._worded(lost, got) from None
        finally:
            self.published += len(ids)
            if ids:
                self.on_ids(ids)
        if self.durability is not None:
            self._read_wait(missing or failure is not None)
        if missing:
            raise NotFound(f"stream {self.stream!r} does not exist (--no-mkstream)")
        if failure:
            raise failure

    def _read_wait(self, failed: bool) -> None:
        """The WAIT/WAITAOF reply after a batch (read with the wait's timeout added)."""
        import hiredis

        from streamctl.core import durability as waits

        assert self.durability is not None
        sock = self.conn._sock
        base = sock.gettimeout()
        sock.settimeout(None if base is None else base + self.durability.timeout_s)
        try:
            while (reply := self.reader.gets()) is False:
                data = sock.recv(1 << 16)
                if not data:
                    from redis.exceptions import ConnectionError as RedisConnectionError

                    closed = RedisConnectionError("the server closed the connection")
                    raise self._worded(closed, 1)
                self.reader.feed(data)
        except OSError as exc:
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise self._worded(RedisConnectionError(f"error reading replies: {exc}"), 1) from None
        finally:
            sock.settimeout(base)
        if failed:
            return  # the batch's own failure is the one to report
        if isinstance(reply, hiredis.ReplyError):
            reply = ResponseError(str(reply))
        waits.require(self.durability, reply, "a batch of events was published")


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
    slice at a time, column by column (_pack_uniform); anything else one event at a time with
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
            packed = _pack_uniform(prefix, part) if len(part) > 1 else None
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


def _pack_uniform(prefix: tuple[Any, ...], events: list[Any]) -> bytes | None:
    """The XADD commands of `events` in RESP, built column by column (C-level map/zip/join,
    nothing per event in Python), when every event is a dict with the same keys in the same
    order and only string values; None otherwise. Byte for byte what hiredis packs."""
    if events[0].__class__ is not dict:
        return None
    shapes = set(map(tuple, events))
    if len(shapes) != 1:
        return None
    (keys,) = shapes
    if not keys:
        return None
    import hiredis

    try:
        columns: list[Iterable[bytes]] = []
        for key in keys:
            values = list(map(itemgetter(key), events))
            if set(map(type, values)) != {str}:
                return None
            encoded = list(map(str.encode, values))
            name = key.encode()
            columns.append(repeat(b"$%d\r\n%s\r\n$" % (len(name), name)))
            columns.append(map(b"%d\r\n".__mod__, map(len, encoded)))
            columns.append(encoded)
            columns.append(repeat(b"\r\n"))
    except UnicodeEncodeError:
        return None  # a lone surrogate: the per-event path names it
    head = hiredis.pack_command(prefix)
    head = b"*%d\r\n" % (len(prefix) + 2 * len(keys)) + head[head.index(b"\r\n") + 2 :]
    return b"".join(chain.from_iterable(zip(repeat(head), *columns, strict=False)))


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
    """
    if durability is not None:
        from streamctl.core.durability import require_support

        require_support(client, durability)
    sender = _BulkSender(client, stream, on_ids, durability)
    prefix = tuple(xadd_args(stream, (), trim=trim, mkstream=mkstream))
    batch: list[bytes] = []
    in_batch = 0
    broken = True
    try:
        try:
            for packed, count in _packed_units(prefix, events, batch_size):
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
            batch, in_batch = [], 0
            raise PartialFailure(
                f"{exc}; {sender.published} events before it were published",
                done=sender.published,
                exit_code=exc.exit_code,
            ) from None
        sender.send(batch, in_batch)
        sender.flush()
        broken = False
    except (PartialFailure, StoppedEarly):
        broken = False
        raise
    except CheckFailed as exc:  # a wait not confirmed: the events it followed are published
        with contextlib.suppress(CheckFailed):
            sender.flush()  # the batch in flight is published too: count it
        raise PartialFailure(
            f"{exc}; {sender.published} events were published (rerun with --skip "
            f"{skipped + sender.published} to publish the rest)",
            done=sender.published,
            exit_code=exc.exit_code,
        ) from None
    except BaseException as exc:
        from streamctl.core.connection import translate_error

        mapped = translate_error(exc, client=client)
        if mapped is None:
            raise
        raise PartialFailure(
            f"{mapped}; {sender.published} events were published before it "
            f"(rerun with --skip {skipped + sender.published} to publish the rest)",
            done=sender.published,
            exit_code=mapped.exit_code,
        ) from None
    finally:
        sender.close(broken=broken)
    return sender.published


def publish_events(
    client: Client,
    stream: str,
    events: Iterable[FieldPairs],
    **kwargs: Any,
) -> PublishResult:
    """publish_many, collecting the ids and timing it."""
    from streamctl.core.models import PublishResult

    ids: list[str] = []
    start = time.perf_counter()
    publish_many(
        client, stream, events, on_ids=lambda new: ids.extend(i.decode() for i in new), **kwargs
    )
    return PublishResult(stream, ids, time.perf_counter() - start)


# ---- ranges ----


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
            reply: list[RawEntry] = conn.read_response()
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


def read_entries(
    client: Client, stream: str, start: str = "-", end: str = "+", **kw: Any
) -> list[Entry]:
    """A small range as Entry objects (for callers that need few entries, not bulk paths)."""
    from streamctl.core.models import Entry

    return [
        Entry.from_raw(stream, raw)
        for batch in read_range(client, stream, start, end, **kw)
        for raw in batch.entries
    ]


# ---- ls / info ----


def scan_streams(client: Client, pattern: str = "*") -> list[str]:
    """Stream names matching the glob, sorted; on a cluster every primary is scanned."""
    names: set[str] = set()
    for node in primaries(client):
        for key in node.scan_iter(match=pattern, count=1000, _type="stream"):
            names.add(_text(key))
    return sorted(names)


def _xinfo_stream(client: Client, stream: str) -> dict[str, Any]:
    try:
        reply = raw_command(client, "XINFO", "STREAM", stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            raise NotFound(f"stream {stream!r} does not exist") from None
        if str(exc).startswith("WRONGTYPE"):
            raise ServerRefused(f"WRONGTYPE: key {stream!r} is not a stream") from None
        raise
    return _pairs_to_dict(reply)


def _pairs_to_dict(reply: list[Any]) -> dict[str, Any]:
    return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_id(value: Any) -> str | None:
    if value is None:
        return None
    text = _text(value)
    return None if text == "0-0" else text


def list_streams(
    client: Client,
    pattern: str = "*",
    *,
    memory: bool = False,
    on_refused: Callable[[str, str], None] | None = None,
) -> list[StreamSummary]:
    """The streams SCAN finds, described. A stream the user may not read (NOPERM) is left out
    and reported to `on_refused(name, reason)`; one deleted since the SCAN is left out."""
    from streamctl.core.models import StreamSummary

    names = scan_streams(client, pattern)
    now = server_time_ms(client)
    out: list[StreamSummary] = []
    for i in range(0, len(names), 200):
        chunk = names[i : i + 200]
        commands: list[tuple[Any, ...]] = []
        for name in chunk:
            commands.append(("XINFO", "STREAM", name))
            if memory:
                commands.append(("MEMORY", "USAGE", name))
        replies = raw_pipeline(client, commands)
        step = 2 if memory else 1
        for j, name in enumerate(chunk):
            reply = replies[j * step]
            if isinstance(reply, Exception):
                reason = str(reply)
                if on_refused is not None and reason.startswith("NOPERM"):
                    on_refused(name, reason)
                continue  # refused, or deleted (or replaced) between SCAN and now
            info = _pairs_to_dict(reply)
            first, last = info.get("first-entry"), info.get("last-entry")
            mem = replies[j * step + 1] if memory else None
            out.append(
                StreamSummary(
                    name=name,
                    length=int(info["length"]),
                    groups=int(info["groups"]),
                    first_id=_text(first[0]) if first else None,
                    last_id=_text(last[0]) if last else None,
                    last_generated_id=_text(info["last-generated-id"]),
                    now_ms=now,
                    memory=int(mem) if isinstance(mem, int) else None,
                )
            )
    return out


def stream_info(client: Client, stream: str) -> StreamInfo:
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
        last_generated_id=_text(info["last-generated-id"]),
        entries_added=_opt_int(info.get("entries-added")),
        max_deleted_id=_opt_id(info.get("max-deleted-entry-id")),
        recorded_first_id=_opt_id(info.get("recorded-first-entry-id")),
        radix_tree_keys=_opt_int(info.get("radix-tree-keys")),
        radix_tree_nodes=_opt_int(info.get("radix-tree-nodes")),
        now_ms=now,
        groups=list_groups(client, stream, check_exists=False),
    )
