"""The library under the CLI: `connect()` gives a `Client`, one method per command.

A Client owns its settings and its connections (a command client with the `timeout`, and a
blocking one for `tail`, whose BLOCK reads must not be cut by it), so two Clients in one program
never share state. Every method maps the server's and the network's errors to the
`streamctl.StreamctlError` kinds (each with the `exit_code` the CLI exits with); their messages
name arguments and values.

Ids and times are accepted as strings in the CLI's grammar everywhere: `-` `+` `0` `$`, full or
millisecond ids, ISO times and dates, durations ago (`15m`, measured on the server's clock) and
`(ID` for an exclusive start.

Nothing heavy is imported here: redis, the core modules, the id parser and the models load at
the first call that needs them (a one-shot `publish` loads neither ids nor models).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ParamSpec, TypeVar

from streamctl.config import Settings, resolve_settings
from streamctl.errors import BadInput, NotFound, ServerRefused, StreamctlError

if TYPE_CHECKING:
    from redis import Redis as RedisClient

    from streamctl import ids
    from streamctl.core.follow import EntrySink, FollowOptions, FollowResult
    from streamctl.core.health import Snapshot as HealthSnapshot
    from streamctl.core.models import (
        Entry,
        EntryBatch,
        FieldPairs,
        GroupInfo,
        StreamInfo,
        StreamSummary,
    )
    from streamctl.core.models_groups import (
        Consumer,
        DelConsumerResult,
        GroupCreateResult,
        GroupDestroyResult,
        SetIdPlan,
    )
    from streamctl.core.models_health import BenchResult, CheckReport, TopReport
    from streamctl.core.models_monitoring import DoctorReport, MetricsSnapshot
    from streamctl.core.models_pending import (
        AckResult,
        ClaimResult,
        DeadLetterResult,
        PendingEntry,
        PendingSummary,
    )
    from streamctl.core.models_repairs import PrunePlan, RedriveResult, TraceReport
    from streamctl.core.models_transfer import (
        ExportResult,
        ImportResult,
        ReplayResult,
        RewindResult,
        TrimResult,
    )
    from streamctl.core.pending import PendingFilter

P = ParamSpec("P")
R = TypeVar("R")

Fields = Mapping[str, Any] | Mapping[bytes, Any] | Sequence[tuple[Any, Any]]
ShouldStop = Callable[[], bool]


def connect(
    url: str | None = None,
    *,
    profile: str | None = None,
    config: str | None = None,
    cluster: bool | None = None,
    timeout: float | None = None,
    tls_ca: str | None = None,
) -> Client:
    """A Client for the server named by `url` or `profile`.

    With neither, the CLI's resolution applies: STREAMCTL_URL, then REDIS_URL, then
    STREAMCTL_PROFILE, then the config file's default profile, then redis://localhost:6379/0.
    `config` is the config file (default: STREAMCTL_CONFIG, then the app dir's config.yaml);
    `cluster` forces (True) or refuses (False) Redis Cluster mode, None detects it; `timeout`
    is the connect and command timeout in seconds (default 5); `tls_ca` a CA bundle for
    rediss://. Nothing is sent until the first call.
    """
    settings = resolve_settings(
        url=url,
        profile=profile,
        config_path=config,
        cluster=cluster,
        tls_ca=tls_ca,
        timeout=timeout,
    )
    return Client(settings)


def _mapped(method: Callable[P, R]) -> Callable[P, R]:
    """Errors of the server or the network leave a Client method as StreamctlError kinds."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        self = args[0]
        assert isinstance(self, Client)
        with self.errors():
            return method(*args, **kwargs)

    return wrapper


def _durability(replicas: int | None, timeout: float | None, aof: bool) -> Any:
    if replicas is None and timeout is None and not aof:
        return None  # no guarantee asked for (and core.durability not loaded for nothing)
    from streamctl.core.durability import durability

    if timeout is not None and not timeout > 0:  # also NaN
        raise BadInput(f"bad wait_timeout {timeout}: give a number of seconds above 0")
    return durability(replicas, None if timeout is None else max(1, round(timeout * 1000)), aof)


def as_pairs(fields: Fields, what: str = "fields") -> FieldPairs:
    """An event's fields as (name, value) bytes: str and bytes as they are, int and float as
    their text, anything else as its JSON text (as `publish --json` stores it)."""
    from streamctl.inputs import fields_from_object

    if isinstance(fields, Mapping):
        items: Iterable[tuple[Any, Any]] = fields.items()
    elif isinstance(fields, str | bytes):
        raise BadInput(f"bad {what}: give a mapping of names to values, or (name, value) pairs")
    else:
        items = fields
    pairs: list[tuple[bytes, bytes]] = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise BadInput(
                f"bad {what}: give a mapping of names to values, or (name, value) pairs"
            ) from None
        pairs.append((_as_bytes(name, f"{what} name"), _value_bytes(value, fields_from_object)))
    if not pairs:
        raise BadInput(f"bad {what}: an event needs at least one field")
    return tuple(pairs)


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise BadInput(f"bad {what} {value!r}: give text or bytes")


def _value_bytes(value: Any, from_object: Callable[[Any, str], FieldPairs]) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    # one rule for non-string values: the one `publish --json` applies
    return from_object({"v": value}, "fields")[0][1]


# Errors are worded once, with the command line's flags (core was written for it first, and the
# Client's own checks follow suit); a Client names its own arguments instead, in this one place:
# `--max-deliveries` reads `max_deliveries`. The CLI's Client keeps the flags (wording="flags"),
# so the CLI needs no checks of its own to word them.
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z-]*)")
_ARGUMENT_OF_FLAG = {
    "from": "start",
    "no-mkstream": "mkstream=False",
    "no-ack": "ack=False",
    "no-follow": "follow=False",
    "json": "fields",
    "file": "publish_many",
}


def argument_wording(message: str) -> str:
    """`message` with each --flag named as the Client's argument."""
    return _FLAG.sub(
        lambda m: _ARGUMENT_OF_FLAG.get(m.group(1), m.group(1).replace("-", "_")), message
    )


class Client:
    """A connection to one Redis or Valkey deployment and every streamctl operation on it.

    Use it as a context manager (or call `close()`). Methods return the same models the CLI
    renders (frozen dataclasses); entry readers return `streamctl.Entry` objects.
    """

    def __init__(self, settings: Settings, *, wording: str = "arguments") -> None:
        """A Client for resolved settings (`connect` resolves them). `wording="flags"` keeps the
        command-line flags in error messages (the CLI's choice); by default they name this
        class's arguments (`force`, `max_deliveries`, `mkstream=False`)."""
        if wording not in ("arguments", "flags"):
            raise BadInput(f"bad wording {wording!r}: accepted 'arguments' or 'flags'")
        self._settings = settings
        self._wording = wording
        self._redis: RedisClient | None = None
        self._blocking: RedisClient | None = None
        self._lock = threading.Lock()

    # ---- connection ----

    @property
    def settings(self) -> Settings:
        """The resolved connection settings (URL, credentials, timeout, cluster mode)."""
        return self._settings

    @property
    def url(self) -> str:
        """The server's URL with its password masked."""
        return self._settings.display_url

    @property
    def redis(self) -> RedisClient:
        """The underlying redis-py client (RESP2, bytes replies, `timeout` on every command)."""
        with self._lock:
            if self._redis is None:
                from streamctl.core.connection import connect as build

                self._redis = build(self._settings)
            return self._redis

    @property
    def blocking_redis(self) -> RedisClient:
        """A second redis-py client without a socket timeout, for blocking reads."""
        with self._lock:
            if self._blocking is None:
                from streamctl.core.connection import connect as build

                self._blocking = build(self._settings, socket_timeout=None)
            return self._blocking

    def close(self) -> None:
        """Close the connections (a closed Client reconnects if used again)."""
        with self._lock:
            for client in (self._redis, self._blocking):
                if client is not None:
                    client.close()
            self._redis = self._blocking = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<streamctl.Client {self.url}>"

    def translate(self, exc: BaseException) -> StreamctlError | None:
        """The StreamctlError an exception of redis-py (or the network) stands for, worded
        with this Client's URL; None for anything else."""
        if isinstance(exc, StreamctlError):
            return exc
        import sys

        if "redis" not in sys.modules:
            return None
        from streamctl.core.connection import translate_error

        return translate_error(exc, self._settings)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Map what escapes the block to StreamctlError kinds (see `translate`)."""
        try:
            yield
        except StreamctlError as exc:
            if self._wording == "arguments":
                exc.message = argument_wording(exc.message)
                exc.args = (exc.message,)
            raise
        except Exception as exc:
            mapped = self.translate(exc)
            if mapped is None:
                raise
            if self._wording == "arguments":
                mapped.message = argument_wording(mapped.message)
                mapped.args = (mapped.message,)
            raise mapped from exc

    @_mapped
    def ping(self) -> bool:
        """True when the server answers."""
        from streamctl.core.connection import default_node

        return bool(default_node(self.redis).ping())

    @_mapped
    def now_ms(self) -> int:
        """The server's clock (TIME) in milliseconds: durations ago are measured on it."""
        from streamctl.core.connection import server_time_ms

        return server_time_ms(self.redis)

    # ---- ids and times ----

    def resolve_exact(self, text: str, what: str) -> str:
        """An id, a time or a duration ago as one exact id (for a MINID or an XADD id)."""
        from streamctl import ids

        pos = ids.parse_position(text, allow_exclusive=False)
        if pos.kind in ("max", "last"):
            raise BadInput(f"bad {what} {text!r}: give an id, a time or a duration ago")
        return ids.resolve_exact(pos, self.now_ms)

    def _range_bounds(
        self, start: str, end: str, *, exclusive_end: bool = False
    ) -> tuple[str, str]:
        """Server ids for a range (XRANGE takes an exclusive end too; XPENDING does not)."""
        from streamctl import ids

        first = ids.resolve_start(ids.parse_position(start), self.now_ms)
        end_pos = ids.parse_position(end, allow_exclusive=exclusive_end)
        return first, ids.resolve_end(end_pos, self.now_ms)

    # ---- publish ----

    @_mapped
    def publish(
        self,
        stream: str,
        fields: Fields,
        *,
        id: str = "*",  # noqa: A002 - the name the SPEC and XADD give it
        maxlen: int | None = None,
        minid: str | None = None,
        approx: bool = False,
        mkstream: bool = True,
        wait_replicas: int | None = None,
        wait_timeout: float | None = None,
        wait_aof: bool = False,
    ) -> str:
        """Append one event and return its id.

        `fields`: a mapping or (name, value) pairs; str and bytes values are stored as they
        are, others as their JSON text. `maxlen`/`minid` cap the stream (exactly unless
        `approx`); `mkstream=False` fails with NotFound when the stream does not exist.
        `wait_replicas` N: succeed only when N replicas hold the event (WAIT), `wait_aof`: and
        the primary's AOF on disk (WAITAOF, Redis >= 7.2), within `wait_timeout` seconds
        (default 5); CheckFailed otherwise, naming how many confirmed (the event stays).
        """
        from streamctl.core import streams

        trim = self._trim_args(maxlen, minid, approx)
        return streams.publish_one(
            self.redis,
            stream,
            as_pairs(fields),
            entry_id=id,
            trim=trim,
            mkstream=mkstream,
            durability=_durability(wait_replicas, wait_timeout, wait_aof),
        )

    def _trim_args(self, maxlen: int | None, minid: str | None, approx: bool) -> list[Any]:
        from streamctl.core import streams

        if maxlen is not None and maxlen < 0:
            raise BadInput(f"bad maxlen {maxlen}: give a count of 0 or more")
        exact = self.resolve_exact(minid, "minid") if minid is not None else None
        return streams.trim_args(maxlen, exact, approx)

    @_mapped
    def publish_many(
        self,
        stream: str,
        events: Iterable[Fields],
        *,
        maxlen: int | None = None,
        minid: str | None = None,
        approx: bool = False,
        mkstream: bool = True,
        on_ids: Callable[[list[bytes]], None] | None = None,
        should_stop: ShouldStop | None = None,
        skipped: int = 0,
        wait_replicas: int | None = None,
        wait_timeout: float | None = None,
        wait_aof: bool = False,
        on_notice: Callable[[str], None] | None = None,
    ) -> int:
        """Publish many events, pipelined in batches; returns how many the server acknowledged.

        `on_ids` gets each batch's new ids (bytes) as the server acknowledges it. A failure
        raises PartialFailure with `done` = events acknowledged before it (the rerun skips
        that many); `should_stop` is asked between batches: when it says stop, the batches in
        flight are completed and the count so far is returned. `skipped` counts events of the
        input skipped before these, for the rerun hint. `wait_replicas`, `wait_timeout`,
        `wait_aof` as for `publish`, after each batch: a batch not confirmed raises
        PartialFailure with exit code 5. A failover (Sentinel, or a cluster's replica promoted)
        is followed (see the README's "High availability"); `on_notice` is told.
        """
        from streamctl.core import streams

        trim = self._trim_args(maxlen, minid, approx)
        try:
            return streams.publish_many(
                self.redis,
                stream,
                events,
                trim=trim,
                mkstream=mkstream,
                on_ids=on_ids or (lambda new_ids: None),
                should_stop=should_stop or (lambda: False),
                skipped=skipped,
                durability=_durability(wait_replicas, wait_timeout, wait_aof),
                on_notice=on_notice or (lambda text: None),
            )
        except streams.StoppedEarly as early:
            return early.done

    # ---- reading ----

    def range(
        self,
        stream: str,
        start: str = "-",
        end: str = "+",
        *,
        count: int | None = None,
        reverse: bool = False,
        match: Sequence[str] = (),
        where: str | None = None,
    ) -> Iterator[Entry]:
        """The entries from `start` to `end` (inclusive; `(ID` starts after ID), oldest first
        (newest first with `reverse`), at most `count` of those passing `match` (FIELD=GLOB,
        all must match) and `where` (JMESPath on the envelope). Read in batches: bounded
        memory. NotFound when the stream does not exist."""
        from streamctl.core.models import Entry

        batches = self.range_batches(
            stream, start, end, count=count, reverse=reverse, match=match, where=where
        )
        return (Entry.from_raw(b.stream, raw) for b in batches for raw in b.entries)

    def range_batches(
        self,
        stream: str,
        start: str = "-",
        end: str = "+",
        *,
        count: int | None = None,
        reverse: bool = False,
        match: Sequence[str] = (),
        where: str | None = None,
    ) -> Iterator[EntryBatch]:
        """`range` as the server's batches (`EntryBatch`: raw entries, no object per entry):
        the fast path the CLI writes NDJSON from. Bad arguments and a missing stream raise
        here, before the first batch is asked for."""
        from streamctl.core import streams, wire
        from streamctl.core.filters import compile_filter

        if count is not None and count < 0:
            raise BadInput(f"bad count {count}: give a count of 0 or more")
        entry_filter = compile_filter(match, where)
        with self.errors():
            first, last = self._range_bounds(start, end, exclusive_end=True)
            wire.require_stream(self.redis, stream)
        batches = streams.read_range(
            self.redis,
            stream,
            first,
            last,
            count=count,
            reverse=reverse,
            check_exists=False,
            filter=entry_filter,
        )
        return self._mapped_iter(batches)

    def _mapped_iter(self, items: Iterator[R]) -> Iterator[R]:
        while True:
            with self.errors():
                item = next(items, None)
            if item is None:
                return
            yield item

    def tail(
        self,
        streams: str | Sequence[str],
        *,
        start: str = "$",
        group: str | None = None,
        consumer: str | None = None,
        count: int | None = None,
        timeout: str | None = None,
        follow: bool = True,
        match: Sequence[str] = (),
        where: str | None = None,
        ack: bool = True,
        create_group: bool = False,
        retry_for: str = "60s",
    ) -> Iterator[Entry]:
        """Follow new entries of one or more streams, like `tail -f`: a generator.

        `start` (default `$`: only new entries), `count` (stop after that many), `timeout`
        (a duration: stop after that long without a new entry), `follow=False` (what is
        there, then stop), `match` (FIELD=GLOB, all must match) and `where` (a JMESPath
        expression on the envelope): only passing entries count and are yielded. In group
        mode (`group`, `consumer`, default `<hostname>-<pid>`) nothing is acknowledged
        before the loop body has finished with it: a read's entries are acknowledged
        together, no sooner than the loop asks for the entry after the last of them (a
        backlog's XACK rides with the next read; at-least-once: breaking out of the loop
        leaves that read's entries pending, for this consumer to read again with `start="0"`
        or for a claim); `ack=False` leaves them all pending, and so do entries that do not
        pass the filters; `create_group` creates the group at `start` if missing. A dropped
        connection is retried for `retry_for`.

        With `count` and `timeout` together, seeing fewer than `count` entries before the
        timeout raises CheckFailed (the CI wait-for-event). Entries a read delivered to the
        consumer but the loop never took (it stopped early) stay pending for that consumer.
        """
        with self.errors():
            opts = self._follow_options(
                streams,
                start=start,
                group=group,
                consumer=consumer,
                count=count,
                timeout=timeout,
                follow=follow,
                match=match,
                where=where,
                ack=ack,
                create_group=create_group,
                retry_for=retry_for,
            )
        return self._follow(opts)

    def tail_into(
        self,
        sink: EntrySink,
        streams: str | Sequence[str],
        *,
        start: str = "$",
        group: str | None = None,
        consumer: str | None = None,
        count: int | None = None,
        timeout: str | None = None,
        follow: bool = True,
        match: Sequence[str] = (),
        where: str | None = None,
        ack: bool = True,
        create_group: bool = False,
        retry_for: str = "60s",
        on_notice: Callable[[str], None] | None = None,
    ) -> TailRun:
        """`tail` at full speed, pushing instead of yielding: each read's entries go to
        `sink.write(stream, raw_entries)` (raw: `(id, [name, value, ...])` as bytes), then
        one `sink.flush()`; in group mode they are acknowledged after that flush (one XACK
        per read; while a backlog is drained, it rides in front of the next read, sent
        ahead). Raising from the sink stops the run; that read's entries (and a read sent
        ahead) stay pending. `on_notice` gets retries and group creation. Returns the
        options it ran with and what it did (`.failure`: the CheckFailed of a count +
        timeout wait that saw too few)."""
        from streamctl.core.follow import follow as run_follow

        with self.errors():
            opts = self._follow_options(
                streams,
                start=start,
                group=group,
                consumer=consumer,
                count=count,
                timeout=timeout,
                follow=follow,
                match=match,
                where=where,
                ack=ack,
                create_group=create_group,
                retry_for=retry_for,
            )
            result = run_follow(
                self.blocking_redis, opts, sink, on_notice=on_notice or (lambda text: None)
            )
        return TailRun(opts, result)

    def _follow(self, opts: FollowOptions) -> Iterator[Entry]:
        from streamctl.core.follow import follow as run_follow

        handoff = _Handoff()

        def run() -> None:
            try:
                with self.errors():
                    result = run_follow(self.blocking_redis, opts, handoff.put)
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                handoff.fail(exc)
                return
            failure = result.check_failure(opts)  # count + timeout: fewer than asked
            if failure is not None:
                handoff.fail(failure)
            else:
                handoff.finish()

        worker = threading.Thread(target=run, name="streamctl-tail", daemon=True)
        worker.start()
        try:
            yield from handoff.entries()
        finally:
            handoff.stop()
            # the follower acknowledges what the loop finished with, then ends; one blocked in
            # a read (nothing handed over, so nothing to acknowledge) ends when the read does
            worker.join(timeout=max(1.0, self._settings.timeout))

    def _follow_options(self, streams: str | Sequence[str], **kw: Any) -> FollowOptions:
        from streamctl import ids
        from streamctl.core.filters import compile_filter
        from streamctl.core.follow import FollowOptions

        names = (streams,) if isinstance(streams, str) else tuple(streams)
        group = kw["group"]
        consumer = kw["consumer"]
        if group is not None and not consumer:
            import os
            import socket

            consumer = f"{socket.gethostname()}-{os.getpid()}"
        timeout = kw["timeout"]
        return FollowOptions(
            streams=names,
            start=ids.parse_position(kw["start"], allow_last=True),
            group=group,
            consumer=consumer if group is not None else None,
            count=kw["count"],
            idle_timeout_ms=ids.parse_duration(timeout, what="--timeout")
            if timeout is not None
            else None,
            follow=kw["follow"],
            filter=compile_filter(kw["match"], kw["where"]),
            ack=kw["ack"],
            create_group=kw["create_group"],
            retry_for_ms=ids.parse_duration(kw["retry_for"], what="--retry-for"),
            command_timeout_s=self._settings.timeout,
        )

    @_mapped
    def streams(
        self,
        pattern: str = "*",
        *,
        memory: bool = False,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> list[StreamSummary]:
        """The streams matching the glob (every primary of a cluster): length, groups, first and
        last entry (`ls`). A stream the ACL user may not read goes to `on_refused(name, why)`."""
        from streamctl.core.streams import list_streams

        return list_streams(self.redis, pattern, memory=memory, on_refused=on_refused)

    @_mapped
    def delete_stream(self, stream: str) -> bool:
        """Delete the stream (its entries and groups); True when it existed. A key of another
        type is left alone (ServerRefused)."""
        from streamctl.core.connection import node_client
        from streamctl.core.wire import key_type

        kind = key_type(self.redis, stream)
        if kind == "none":
            return False
        if kind != "stream":
            raise ServerRefused(f"WRONGTYPE: key {stream!r} holds a {kind}, not a stream")
        return bool(node_client(self.redis, stream).delete(stream))

    @_mapped
    def info(self, stream: str) -> StreamInfo:
        """XINFO STREAM in full, with the stream's groups."""
        from streamctl.core.streams import stream_info

        return stream_info(self.redis, stream)

    # ---- groups ----

    @_mapped
    def groups(self, stream: str) -> list[GroupInfo]:
        """The consumer groups of `stream` with lag (computed where the server has none) and
        behind."""
        from streamctl.core.groups import list_groups

        return list_groups(self.redis, stream)

    @_mapped
    def group(self, stream: str, group: str) -> GroupInfo:
        """One consumer group (NotFound naming the stream or the group)."""
        from streamctl.core.groups import get_group

        return get_group(self.redis, stream, group)

    @_mapped
    def create_group(
        self,
        stream: str,
        group: str,
        *,
        start: str = "$",
        mkstream: bool = True,
        exist_ok: bool = False,
    ) -> GroupCreateResult:
        """Create consumer group `group` delivering from `start` on (`$`: only new entries; `0`:
        everything; an id or time; `(ID`: after ID), with ENTRIESREAD where it can be known.
        `exist_ok` makes an existing group a success."""
        from streamctl.core.groups import create_group

        pos = self._group_position(start, "start")
        return create_group(
            self.redis,
            stream,
            group,
            pos,
            mkstream=mkstream,
            exist_ok=exist_ok,
            now_ms=self.now_ms,
        )

    def _group_position(self, text: str, what: str) -> ids.Position:
        from streamctl import ids

        pos = ids.parse_position(text, allow_last=True)
        if pos.kind == "max":
            raise BadInput(f"bad {what} {text!r}: use $ for the end of the stream")
        return pos

    @_mapped
    def destroy_group(self, stream: str, group: str, *, force: bool = False) -> GroupDestroyResult:
        """Delete a consumer group; refused (Refused, exit 6) while it has pending entries,
        unless `force`."""
        from streamctl.core.groups import destroy_group

        return destroy_group(self.redis, stream, group, force=force)

    @_mapped
    def setid(self, stream: str, group: str, to: str, *, execute: bool = False) -> SetIdPlan:
        """Move a group's last-delivered id to `to`: the plan (how many entries are delivered
        again or skipped), applied only with `execute=True`."""
        from streamctl.core.groups import execute_setid, plan_setid

        plan = plan_setid(
            self.redis, stream, group, self._group_position(to, "to"), now_ms=self.now_ms
        )
        return execute_setid(self.redis, plan) if execute else plan

    @_mapped
    def consumers(self, stream: str, group: str) -> list[Consumer]:
        """Each consumer of a group: pending, idle, inactive (where the server reports it)."""
        from streamctl.core.groups import list_consumers

        return list_consumers(self.redis, stream, group)

    @_mapped
    def delete_consumer(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        reassign_to: str | None = None,
        force: bool = False,
    ) -> DelConsumerResult:
        """Delete a consumer; refused (exit 6) while it owns pending entries, unless
        `reassign_to` (claims them first) or `force` (drops them)."""
        from streamctl.core.groups import delete_consumer

        return delete_consumer(
            self.redis, stream, group, consumer, reassign_to=reassign_to, force=force
        )

    # ---- pending, claim, dead-letter, ack ----

    @_mapped
    def pending_filter(
        self,
        *,
        consumer: str | None = None,
        min_idle: str | None = None,
        min_deliveries: int = 0,
        start: str = "-",
        end: str = "+",
    ) -> PendingFilter:
        """The PendingFilter these arguments select (ids and times resolved on the server)."""
        from streamctl import ids
        from streamctl.core.pending import PendingFilter

        if min_deliveries < 0:
            raise BadInput(f"bad --min-deliveries {min_deliveries}: give a count of 0 or more")
        min_idle_ms = ids.parse_duration(min_idle, what="--min-idle") if min_idle else 0
        first, last = self._range_bounds(start, end)
        return PendingFilter(
            consumer=consumer,
            min_idle_ms=min_idle_ms,
            min_deliveries=min_deliveries,
            start=first,
            end=last,
        )

    @_mapped
    def pending(self, stream: str, group: str) -> PendingSummary:
        """The group's pending summary: count, oldest and newest id, count per consumer."""
        from streamctl.core.pending import pending_summary

        return pending_summary(self.redis, stream, group)

    def pending_entries(
        self,
        stream: str,
        group: str,
        *,
        consumer: str | None = None,
        min_idle: str | None = None,
        min_deliveries: int = 0,
        start: str = "-",
        end: str = "+",
        count: int | None = None,
    ) -> Iterator[PendingEntry]:
        """The pending entries these filters select, in id order, read a page at a time;
        at most `count` (None: all)."""
        pages = self.pending_pages(
            stream,
            group,
            self.pending_filter(
                consumer=consumer,
                min_idle=min_idle,
                min_deliveries=min_deliveries,
                start=start,
                end=end,
            ),
            limit=count,
        )
        return (entry for page in pages for entry in page)

    def pending_pages(
        self, stream: str, group: str, flt: PendingFilter, *, limit: int | None = None
    ) -> Iterator[list[PendingEntry]]:
        """Pending entries selected by a PendingFilter, a page at a time."""
        from streamctl.core.pending import iter_pending

        with self.errors():
            pages = iter_pending(self.redis, stream, group, flt, limit=limit)
        return self._mapped_iter(pages)

    @_mapped
    def claim(
        self,
        stream: str,
        group: str,
        to: str,
        *,
        ids: Sequence[str] = (),
        consumer: str | None = None,
        min_idle: str | None = None,
        min_deliveries: int = 0,
        start: str = "-",
        end: str = "+",
        count: int | None = None,
        dry_run: bool = False,
        should_stop: ShouldStop | None = None,
    ) -> ClaimResult:
        """Claim pending entries for consumer `to`: the `ids` given (XCLAIM), or those the
        filters select (an XAUTOCLAIM cursor loop, or a PEL scan for the consumer, deliveries
        and end filters), at most `count`. Reports claimed ids and ids deleted while pending;
        `dry_run` changes nothing."""
        from streamctl.core import pending

        if not to:
            raise BadInput("claim needs `to`: the consumer that gets the entries")
        if count is not None and count < 0:
            raise BadInput(f"bad count {count}: give a count of 0 or more (0 = all)")
        if ids and (consumer is not None or min_deliveries or (start, end) != ("-", "+")):
            raise BadInput(
                "ids name the entries: they cannot be combined with consumer, "
                "min_deliveries, start or end"
            )
        stop = should_stop or (lambda: False)
        flt = self.pending_filter(
            consumer=consumer,
            min_idle=min_idle,
            min_deliveries=min_deliveries,
            start=start,
            end=end,
        )
        limit = count or None
        if ids:
            wanted = pending.normalize_ids(ids)
            return pending.claim_ids(
                self.redis,
                stream,
                group,
                to,
                wanted,
                min_idle_ms=flt.min_idle_ms,
                dry_run=dry_run,
            )
        if dry_run:
            return pending.plan_claim(self.redis, stream, group, to, flt, limit=limit)
        if flt.needs_pel_scan:
            return pending.claim_selected(
                self.redis, stream, group, to, flt, limit=limit, should_stop=stop
            )
        return pending.claim_idle(
            self.redis,
            stream,
            group,
            to,
            min_idle_ms=flt.min_idle_ms,
            start=flt.start,
            limit=limit,
            should_stop=stop,
        )

    @_mapped
    def dead_letter(
        self,
        stream: str,
        group: str,
        dlq: str,
        *,
        max_deliveries: int,
        consumer: str | None = None,
        min_idle: str | None = None,
        min_deliveries: int = 0,
        start: str = "-",
        end: str = "+",
        count: int | None = None,
        dry_run: bool = False,
        should_stop: ShouldStop | None = None,
    ) -> DeadLetterResult:
        """Move entries delivered `max_deliveries` times or more into stream `dlq` (their fields
        plus dlq_stream, dlq_group, dlq_id, dlq_consumer, dlq_deliveries) and acknowledge them,
        each in one atomic step."""
        from streamctl.core.pending import dead_letter

        if max_deliveries < 1:
            raise BadInput(f"bad max_deliveries {max_deliveries}: give a count of 1 or more")
        if count is not None and count < 0:
            raise BadInput(f"bad count {count}: give a count of 0 or more (0 = all)")
        flt = self.pending_filter(
            consumer=consumer,
            min_idle=min_idle,
            min_deliveries=min_deliveries,
            start=start,
            end=end,
        )
        return dead_letter(
            self.redis,
            stream,
            group,
            dlq,
            max_deliveries,
            flt,
            limit=count or None,
            dry_run=dry_run,
            should_stop=should_stop or (lambda: False),
        )

    @_mapped
    def ack(self, stream: str, group: str, ids: Iterable[str]) -> AckResult:
        """Acknowledge ids: how many were acknowledged and how many were not pending. A missing
        group is NotFound (XACK itself answers 0). A list is checked whole first (full ids,
        repeats dropped); an iterator is acknowledged as it comes, in batches."""
        from streamctl.core.pending import ack_ids, normalize_ids

        if isinstance(ids, Sequence) and not isinstance(ids, str):
            ids = normalize_ids(ids)
        elif isinstance(ids, str):
            raise BadInput("bad ids: give a list of ids, not one string")
        return ack_ids(self.redis, stream, group, ids)

    # ---- trim, replay, export, import ----

    @_mapped
    def trim(
        self,
        stream: str,
        *,
        maxlen: int | None = None,
        minid: str | None = None,
        older_than: str | None = None,
        approx: bool = False,
        acked_only: bool = False,
        dry_run: bool = False,
        force: bool = False,
    ) -> TrimResult:
        """Trim by `maxlen`, `minid` (id or time) or `older_than` (a duration); refused
        (exit 6, naming the groups) when it would remove entries a group has not read or still
        has pending, unless `force`. `dry_run` only plans."""
        from streamctl import ids
        from streamctl.core import trim as core_trim

        older_than_ms = (
            ids.parse_duration(older_than, what="--older-than") if older_than is not None else None
        )
        return core_trim.trim(
            self.redis,
            stream,
            maxlen=maxlen,
            minid=minid,
            older_than_ms=older_than_ms,
            approx=approx,
            acked_only=acked_only,
            dry_run=dry_run,
            force=force,
        )

    @_mapped
    def rewind(self, stream: str, group: str, start: str, *, dry_run: bool = False) -> RewindResult:
        """Rewind `group` so its consumers get the entries from `start` on again (`replay
        --group`)."""
        from streamctl.core.replay import rewind_group

        return rewind_group(self.redis, stream, group, start, dry_run=dry_run)

    @_mapped
    def replay(
        self,
        stream: str,
        start: str,
        end: str = "+",
        *,
        into: str | None = None,
        target: Client | None = None,
        group: str | None = None,
        match: Sequence[str] = (),
        where: str | None = None,
        count: int | None = None,
        rate: float | None = None,
        dry_run: bool = False,
        should_stop: ShouldStop | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        wait_replicas: int | None = None,
        wait_timeout: float | None = None,
        wait_aof: bool = False,
        on_notice: Callable[[str], None] | None = None,
    ) -> ReplayResult | RewindResult:
        """Replay a range: `into` re-publishes the entries (new ids) into that stream, on this
        server or on `target` (another Client); `group` rewinds that group to `start` instead
        (`rewind`). `match` (FIELD=GLOB) and `where` (JMESPath) select entries; `count`,
        `rate` (entries per second), `dry_run`. A stop (`should_stop`) finishes the batch in
        flight: `result.resume_after` is where a rerun continues (`start="(ID"`).
        `wait_replicas`, `wait_timeout`, `wait_aof` as for `publish`, on the target after each
        batch: a batch not confirmed raises PartialFailure with exit code 5. A target reached
        through Sentinel is followed through a failover (see the README's "High
        availability"); `on_notice` is told."""
        from streamctl.core.filters import compile_filter
        from streamctl.core.replay import replay_into

        if (into is None) == (group is None):
            raise BadInput("give `into` (copy the entries) or `group` (rewind it)")
        if group is not None:
            extra = [
                name
                for name, given in (
                    ("end", end != "+"),
                    ("target", target is not None),
                    ("match", bool(match)),
                    ("where", where is not None),
                    ("count", count is not None),
                    ("rate", rate is not None),
                    ("wait_replicas", wait_replicas is not None),
                    ("wait_timeout", wait_timeout is not None),
                    ("wait_aof", wait_aof),
                )
                if given
            ]
            if extra:
                raise BadInput(f"{', '.join(extra)} apply to `into`, not to `group`")
            return self.rewind(stream, group, start, dry_run=dry_run)
        assert into is not None
        destination = target or self
        entry_filter = compile_filter(match, where)
        waits = _durability(wait_replicas, wait_timeout, wait_aof)
        return replay_into(
            self.redis,
            stream,
            destination.redis,
            into,
            start=start,
            end=end,
            filter=entry_filter,
            count=count,
            rate=rate,
            dry_run=dry_run,
            target_server=target.url if target is not None else None,
            should_stop=should_stop or (lambda: False),
            on_progress=on_progress or (lambda copied, scanned: None),
            durability=waits,
            on_notice=on_notice or (lambda text: None),
        )

    @_mapped
    def export(
        self,
        stream: str,
        out: IO[str] | Callable[[str], object],
        *,
        start: str = "-",
        end: str = "+",
        count: int | None = None,
        match: Sequence[str] = (),
        where: str | None = None,
        with_groups: bool = False,
        should_stop: ShouldStop | None = None,
    ) -> ExportResult:
        """Write the range as NDJSON envelopes (what `import_` reads) to `out` (a text file or
        a function taking text), only entries passing `match`/`where` when given (at most
        `count` of them); `with_groups` first writes one line per consumer group."""
        from streamctl.core.export import export_stream
        from streamctl.core.filters import compile_filter
        from streamctl.render.serialize import ndjson_lines
        from streamctl.render.transfer import group_state_lines

        sink: Callable[[str], object] = out if callable(out) else out.write

        def write(text: str) -> None:
            sink(text)

        if count is not None and count < 1:
            raise BadInput(f"bad count {count}: give a count of 1 or more")
        return export_stream(
            self.redis,
            stream,
            lambda name, entries: write(ndjson_lines(name, entries)),
            start=start,
            end=end,
            count=count,
            write_groups=(lambda name, groups: write(group_state_lines(name, groups)))
            if with_groups
            else None,
            entry_filter=compile_filter(match, where),
            should_stop=should_stop or (lambda: False),
        )

    @_mapped
    def import_(
        self,
        stream: str,
        source: str,
        *,
        keep_ids: bool = False,
        dry_run: bool = False,
        should_stop: ShouldStop | None = None,
        on_progress: Callable[[int, int], None] | None = None,
        wait_replicas: int | None = None,
        wait_timeout: float | None = None,
        wait_aof: bool = False,
        on_notice: Callable[[str], None] | None = None,
    ) -> ImportResult:
        """Import envelopes (NDJSON, as `export` writes them) from the file `source` (`-`:
        stdin) into `stream`, pipelined; `keep_ids` keeps the original ids and skips those
        already present (a rerun neither loses nor duplicates an entry), and recreates the
        groups an export `with_groups` wrote. `wait_replicas`, `wait_timeout`, `wait_aof` as
        for `publish`, after each batch: a batch not confirmed raises PartialFailure with exit
        code 5. Through Sentinel, a failover is followed (see the README's "High
        availability"); `on_notice` is told."""
        from streamctl.core.import_ import import_entries
        from streamctl.inputs import read_envelope_blocks

        waits = _durability(wait_replicas, wait_timeout, wait_aof)
        return import_entries(
            self.redis,
            stream,
            read_envelope_blocks(source),
            keep_ids=keep_ids,
            dry_run=dry_run,
            should_stop=should_stop or (lambda: False),
            on_progress=on_progress or (lambda imported, skipped: None),
            durability=waits,
            on_notice=on_notice or (lambda text: None),
        )

    # ---- health ----

    @_mapped
    def check(
        self,
        streams: Sequence[str] = (),
        *,
        group: str | None = None,
        max_lag: int | None = None,
        max_pending: int | None = None,
        max_idle: str | None = None,
        max_behind: str | None = None,
        max_length: int | None = None,
    ) -> CheckReport:
        """Measure streams (all of them when none is named) and their groups against the
        thresholds; `report.breached` is true when one is exceeded (the CLI exits 5)."""
        from streamctl import ids
        from streamctl.core.health import check_streams
        from streamctl.core.models_health import Thresholds

        for name, value in (
            ("--max-lag", max_lag),
            ("--max-pending", max_pending),
            ("--max-length", max_length),
        ):
            if value is not None and value < 0:
                raise BadInput(f"bad {name} {value}: give a count of 0 or more")
        thresholds = Thresholds(
            max_length=max_length,
            max_lag=max_lag,
            max_pending=max_pending,
            max_idle_ms=ids.parse_duration(max_idle, what="--max-idle")
            if max_idle is not None
            else None,
            max_behind_ms=ids.parse_duration(max_behind, what="--max-behind")
            if max_behind is not None
            else None,
        )
        return check_streams(self.redis, list(streams), thresholds=thresholds, group=group)

    @_mapped
    def snapshot(self, pattern: str = "*") -> HealthSnapshot:
        """One sample of every stream matching the glob (lengths, entries added, groups'
        reads), for rates between two samples (`top`)."""
        from streamctl.core.health import take_snapshot

        return take_snapshot(self.redis, pattern)

    @_mapped
    def rates(self, pattern: str = "*", interval: float = 1.0) -> TopReport:
        """Two samples `interval` seconds apart: per stream its length and incoming rate, per
        group its lag, pending and outgoing rate (`top --once`)."""
        from streamctl.core.health import sample_rates

        return sample_rates(self.redis, pattern, interval)

    @_mapped
    def bench(
        self,
        *,
        events: int = 100_000,
        size: int = 128,
        producers: int = 1,
        consumers: int = 1,
        batch: int = 100,
        should_stop: ShouldStop | None = None,
    ) -> BenchResult:
        """Publish and consume throughput and latency percentiles against a scratch stream
        (`producers` and `consumers` threads, each with its own connection), then delete it."""
        from streamctl.core.bench import run_bench, validate
        from streamctl.core.connection import connect as build

        validate(events, size, producers, consumers, batch)
        self.ping()  # a missing server fails before any thread starts
        return run_bench(
            lambda: build(self._settings),
            events=events,
            size=size,
            producers=producers,
            consumers=consumers,
            batch=batch,
            should_stop=should_stop or (lambda: False),
        )

    @_mapped
    def metrics(
        self,
        pattern: str = "*",
        *,
        group: str | None = None,
        consumers: bool = False,
        max_streams: int = 10_000,
    ) -> MetricsSnapshot:
        """One scrape for Prometheus: every stream matching the glob (every primary of a
        cluster) with its groups' lag, pending, idle and behind; only streams having `group`
        when given; `consumers` adds per-consumer figures; at most `max_streams` streams (the
        first by name; `truncated` says when more matched). A server that does not answer
        gives `up=False` (not an exception): a scrape reports it."""
        from streamctl.core.metrics import collect_metrics

        if max_streams < 1:
            raise BadInput(f"bad max_streams {max_streams}: give 1 or more")
        return collect_metrics(
            self.redis, pattern, group=group, consumers=consumers, max_streams=max_streams
        )

    @_mapped
    def doctor(self) -> DoctorReport:
        """Is this server a safe home for streams? Kind, version, topology, capabilities (asked
        of the server) and findings with a level and what to do; `failed` when one is at error
        level. What the server refuses to tell is an `unknown` finding."""
        from streamctl.core.doctor import diagnose

        return diagnose(self.redis, self._settings)

    # ==== repairs: trace, group prune, redrive (issue 16) ====

    @_mapped
    def trace(self, stream: str, id: str, *, dlqs: Sequence[str] = ()) -> TraceReport:  # noqa: A002
        """Where is entry `id` of `stream`? Its envelope (or None when gone), its state in
        every group (not-delivered, pending with consumer/deliveries/idle, acked,
        deleted-while-pending, or gone) and its copies in the dead-letter streams `dlqs`
        (by dlq_stream and dlq_id). NotFound when neither the stream, a group nor a dead-letter
        stream knows the id (`report.found` is then false)."""
        from streamctl import ids
        from streamctl.core.trace import trace_entry

        if isinstance(dlqs, str):
            raise BadInput("bad dlqs: give a list of stream names, not one string")
        try:
            entry_id = str(ids.StreamId.parse(id.strip()))
        except BadInput:
            raise BadInput(
                f"bad id {id!r}: give a full id (1795773600000-3) or a millisecond id"
            ) from None
        report = trace_entry(self.redis, stream, entry_id, list(dlqs))
        if not report.found:
            where = "" if report.stream_exists else f" (stream {stream!r} does not exist)"
            searched = f" nor in {', '.join(map(repr, report.dlqs))}" if report.dlqs else ""
            raise NotFound(f"entry {entry_id} is not in stream {stream!r}{where}{searched}")
        return report

    @_mapped
    def prune_consumers(
        self,
        stream: str,
        group: str,
        *,
        idle: str,
        reassign_to: str | None = None,
        execute: bool = False,
    ) -> PrunePlan:
        """Consumers of `group` idle for `idle` (a duration) or longer that own no pending
        entries: the plan (who goes, who stays and why; `measure` says whether the server's
        `inactive` (7.2+) or `idle` was compared); `execute=True` deletes them. A consumer
        owning pending entries stays, unless `reassign_to` names the consumer that claims them
        first (`group prune`)."""
        from streamctl import ids
        from streamctl.core.prune import prune_consumers

        idle_ms = ids.parse_duration(idle, what="idle")
        return prune_consumers(
            self.redis, stream, group, idle_ms, reassign_to=reassign_to, execute=execute
        )

    @_mapped
    def redrive(
        self,
        dlq: str,
        *,
        into: str | None = None,
        start: str = "-",
        end: str = "+",
        match: Sequence[str] = (),
        where: str | None = None,
        count: int | None = None,
        rate: float | None = None,
        keep: bool = False,
        dry_run: bool = False,
        should_stop: ShouldStop | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> RedriveResult:
        """Move the entries of dead-letter stream `dlq` back into the stream each came from (its
        dlq_stream field, or `into`), without the dlq_* fields and with
        redriven_from=<DLQ id>, deleting each from `dlq` in the same atomic step (across
        cluster slots: with idempotency marks), so a rerun after an interruption never
        publishes an entry twice. `start`/`end` (ids or times), `match`/`where` select entries,
        `count` and `rate` (entries per second) bound the run, `keep` copies and leaves the DLQ
        as it is, `dry_run` changes nothing. Entries without a usable dlq_stream are reported
        (`unusable`) and left in place. A stop (`should_stop`) finishes the batch in flight
        (`result.stopped`; `result.last_id` is the last DLQ id handled)."""
        from streamctl.core.filters import compile_filter
        from streamctl.core.redrive import redrive

        entry_filter = compile_filter(match, where)
        return redrive(
            self.redis,
            dlq,
            into=into,
            start=start,
            end=end,
            entry_filter=entry_filter,
            count=count,
            rate=rate,
            keep=keep,
            dry_run=dry_run,
            should_stop=should_stop or (lambda: False),
            on_progress=on_progress or (lambda redriven, scanned: None),
        )


@dataclass(frozen=True)
class TailRun:
    """What `tail_into` ran with (`options`: the streams, group, consumer chosen, ...) and did
    (`result`: entries seen, acknowledged, left pending, why it stopped)."""

    options: FollowOptions
    result: FollowResult

    @property
    def failure(self) -> StreamctlError | None:
        """CheckFailed when `count` and `timeout` were given and fewer entries came in time."""
        failure: StreamctlError | None = self.result.check_failure(self.options)
        return failure


class _Stop(BaseException):
    """Raised inside the follower's thread to end it when the reader stops the generator."""


class _Handoff:
    """Hands entries from the follower's thread to the generator one at a time. The follower
    acknowledges an entry once its sink returns, so the sink returns only when the loop asks
    for the next entry (or stops)."""

    def __init__(self) -> None:
        from streamctl.core.models import Entry

        self._entry = Entry.from_raw
        self._cond = threading.Condition()
        self._item: Entry | None = None
        self._taken = True
        self._done = False
        self._error: BaseException | None = None
        self._stopped = False

    def put(self, stream: str, raw: Any) -> None:
        with self._cond:
            if self._stopped:
                raise _Stop()
            self._item = self._entry(stream, raw)
            self._taken = False
            self._cond.notify_all()
            while not self._taken and not self._stopped:
                self._cond.wait()
            if self._stopped and not self._taken:
                raise _Stop()
            # taken: wait until the reader asks for the next one before acknowledging it
            while self._item is not None and not self._stopped:
                self._cond.wait()
            if self._stopped and self._item is not None:
                raise _Stop()

    def entries(self) -> Iterator[Entry]:
        while True:
            with self._cond:
                if self._item is not None and self._taken:
                    self._item = None  # the loop asked for the next: the last one is done
                    self._cond.notify_all()
                while self._taken and not self._done:
                    self._cond.wait()
                if self._taken and self._done:
                    if self._error is not None and not isinstance(self._error, _Stop):
                        raise self._error
                    return
                item = self._item
                self._taken = True
                self._cond.notify_all()
            assert item is not None
            yield item

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = exc
            self._done = True
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
