"""Moving history: replay a range into another stream (here or on another server), rewind a group,
export a stream as NDJSON envelopes and import them back.

Every bulk path works batch by batch on one connection (bounded memory), checks `should_stop`
between batches (a signal finishes the batch in flight) and reports exactly how far it got, so a
rerun continues without losing or duplicating an entry:
- replay: `resume_after` is the last source id processed; rerun with `--from "(ID"`.
- import: with `keep_ids`, ids at or below the stream's last id are skipped, so a rerun resumes.

The result models are in core.models_transfer; redis is imported where it is used.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import translate
from typing import TYPE_CHECKING, Any

from streamctl.core.models import EntryBatch, RawEntry
from streamctl.core.models_transfer import (
    GroupImport,
    GroupState,
    ImportResult,
    PendingState,
    ReplayResult,
    RewindResult,
)
from streamctl.core.trim import snapshot
from streamctl.core.wire import pairs, raw_command, require_stream, stream_exists, text
from streamctl.errors import (
    BadInput,
    ConnectionFailed,
    ExitCode,
    NotFound,
    PartialFailure,
    ServerRefused,
    StreamctlError,
)
from streamctl.ids import IdKey, StreamId, id_key, parse_position, resolve_end, resolve_start
from streamctl.inputs import EntryLine, GroupLine

if TYPE_CHECKING:
    from streamctl.core.connection import Client

BATCH = 1000
PENDING_PAGE = 1000
MATCH_FORMS = "accepted: FIELD=GLOB, e.g. status=shipped or region=eu-*"

ShouldStop = Callable[[], bool]


def _never() -> bool:
    return False


class PackedSender:
    """Packed commands in one write on one connection (kept for the whole run), every reply
    read with hiredis in C; error replies are returned (as hiredis.ReplyError), not raised.

    A failure while sending or reading drops the connection: unread replies never reach the
    next user of the pool. Every command acts on `key`: on a cluster the connection is to the
    node owning its slot.
    """

    def __init__(self, client: Client, key: str) -> None:
        import hiredis

        self.client = client
        self.key = key
        self.pool: Any = None
        self.conn: Any = None
        self.reader = hiredis.Reader()

    def send(self, packed: list[bytes]) -> list[Any]:
        from streamctl.core.connection import connection_answered, mark_lost, note_answered

        if self.conn is None:
            from streamctl.core.connection import node_client

            self.pool = node_client(self.client, self.key).connection_pool
            self.conn = self.pool.get_connection()
        conn = self.conn
        established = connection_answered(conn)
        try:
            conn.send_packed_command([b"".join(packed)])
            sock = conn._sock
            gets, feed = self.reader.gets, self.reader.feed
            replies: list[Any] = []
            append = replies.append
            n = len(packed)
            while len(replies) < n:
                reply = gets()
                if reply is False:
                    data = sock.recv(1 << 16)
                    if not data:
                        from redis.exceptions import ConnectionError as RedisConnectionError

                        raise RedisConnectionError("the server closed the connection")
                    feed(data)
                    continue
                append(reply)
            note_answered(conn)
            return replies
        except OSError as exc:
            self.close(broken=True)
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError

            failure: Exception
            if isinstance(exc, TimeoutError):
                failure = RedisTimeoutError("timed out reading replies")
            else:
                failure = RedisConnectionError(f"error reading replies: {exc}")
            raise (mark_lost(failure) if established else failure) from None
        except BaseException as exc:
            self.close(broken=True)
            if established:
                mark_lost(exc)
            raise

    def close(self, *, broken: bool = False) -> None:
        if self.conn is not None:
            if broken:
                self.conn.disconnect()
            self.pool.release(self.conn)
            self.conn = None
            if broken:
                import hiredis

                self.reader = hiredis.Reader()


# ---- --match FIELD=GLOB ----


@dataclass(frozen=True)
class FieldMatch:
    """FIELD=GLOB: the entry has FIELD and its value matches GLOB (fnmatch, case-sensitive)."""

    name: bytes
    glob: str
    pattern: re.Pattern[str] = field(compare=False)

    @classmethod
    def parse(cls, text: str) -> FieldMatch:
        name, sep, glob = text.partition("=")
        if not sep or not name:
            raise BadInput(f"bad --match {text!r}: {MATCH_FORMS}")
        return cls(name.encode(), glob, re.compile(translate(glob)))

    def matches(self, flat: list[bytes]) -> bool:
        for i in range(0, len(flat) - 1, 2):
            if flat[i] == self.name:
                value = flat[i + 1].decode("utf-8", "surrogateescape")
                if self.pattern.match(value):
                    return True
        return False


def parse_matches(texts: Iterable[str]) -> tuple[FieldMatch, ...]:
    return tuple(FieldMatch.parse(t) for t in texts)


def entry_matches(flat: list[bytes], matches: tuple[FieldMatch, ...]) -> bool:
    """Every --match holds (they are repeatable and all must match)."""
    return all(m.matches(flat) for m in matches)


# ---- positions ----


def _resolve_range(client: Client, start: str, end: str) -> tuple[str, str]:
    from streamctl.core.connection import server_time_ms

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


def _pin_end(end: str, last_id: str | None) -> str | None:
    """The range end, fixed at the stream's last id now: entries added later (possibly by this
    very replay) are not part of it. None when the range holds nothing."""
    if last_id is None or end == "-":
        return None
    if end == "+":
        return last_id
    return str(min(StreamId.parse(end), StreamId.parse(last_id)))


def _start_id(start: str) -> StreamId:
    if start in ("-", "0-0"):
        return StreamId(0, 0)
    return StreamId.parse(start)


# ---- replay --into ----


class _Throttle:
    """--rate N: entries per second, checked before each chunk; sleeps in short slices so a
    signal is noticed."""

    def __init__(self, rate: float | None, should_stop: ShouldStop) -> None:
        self.rate = rate
        self.should_stop = should_stop
        self.started = time.monotonic()

    def wait(self, done: int) -> bool:
        """Wait until `done` entries (those sent and the chunk about to go) are within the rate
        since the start; False if a stop was requested."""
        if self.rate is None:
            return not self.should_stop()
        due = self.started + done / self.rate
        while True:
            if self.should_stop():
                return False
            left = due - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.05))


def _chunk_size(batch_size: int, rate: float | None) -> int:
    if rate is None:
        return batch_size
    return max(1, min(batch_size, int(rate / 10)))


def replay_into(
    source: Client,
    stream: str,
    target_client: Client,
    target: str,
    *,
    start: str,
    end: str = "+",
    matches: tuple[FieldMatch, ...] = (),
    count: int | None = None,
    rate: float | None = None,
    dry_run: bool = False,
    target_server: str | None = None,
    should_stop: ShouldStop = _never,
    on_progress: Callable[[int, int], None] = lambda copied, scanned: None,
    batch_size: int = BATCH,
) -> ReplayResult:
    """Re-publish the entries of STREAM from `start` to `end` into `target` with new ids (`*`),
    pipelined in batches on one connection of `target_client`.

    The end is fixed at the stream's last id when the replay starts. Stops early on
    `should_stop` after the chunk in flight (result.stopped); a server failure raises
    PartialFailure naming how far it got and the `--from "(ID"` to continue with.
    """
    from streamctl.core.streams import read_range

    if count is not None and count < 1:
        raise BadInput(f"bad --count {count}: give a count of 1 or more")
    if rate is not None and rate <= 0:
        raise BadInput(f"bad --rate {rate}: give entries per second above 0")
    require_stream(source, stream)
    where = f" on {target_server}" if target_server else ""
    try:
        stream_exists(target_client, target, where)
    except StreamctlError:
        raise
    except Exception as exc:
        raise _target_error(exc, target_client, target_server) from None
    lo, hi = _resolve_range(source, start, end)
    pinned = _pin_end(hi, snapshot(source, stream).last_id)
    started = time.perf_counter()
    state = _ReplayState()
    throttle = _Throttle(None if dry_run else rate, should_stop)
    chunk_size = _chunk_size(batch_size, None if dry_run else rate)

    def result(stopped: bool = False) -> ReplayResult:
        return ReplayResult(
            stream=stream,
            target=target,
            target_server=target_server,
            start=lo,
            end=pinned or hi,
            dry_run=dry_run,
            scanned=state.scanned,
            copied=state.copied,
            first_id=state.first_id,
            last_id=state.last_id,
            resume_after=state.resume_after,
            first_new_id=state.first_new_id,
            last_new_id=state.last_new_id,
            seconds=time.perf_counter() - started,
            stopped=stopped,
        )

    if pinned is None or (lo not in ("-", "+") and StreamId.parse(lo) > StreamId.parse(pinned)):
        return result()
    try:
        stopped = _copy_range(
            read_range(source, stream, lo, pinned, batch_size=batch_size, check_exists=False),
            target_client,
            target,
            state,
            matches=matches,
            count=count,
            dry_run=dry_run,
            target_server=target_server,
            throttle=throttle,
            chunk_size=chunk_size,
            should_stop=should_stop,
            on_progress=on_progress,
        )
    except StreamctlError:
        raise
    except Exception as exc:  # reading the source failed: say how far the copy got
        from streamctl.core.connection import settings_of, translate_error

        mapped = translate_error(exc, settings_of(source))
        if mapped is None:
            raise
        raise PartialFailure(
            f"{mapped.message}; {state.copied:,} entries were copied before it"
            + _continue_hint(state),
            done=state.copied,
            exit_code=mapped.exit_code,
        ) from None
    return result(stopped)


def _copy_range(
    batches: Iterable[EntryBatch],
    target_client: Client,
    target: str,
    state: _ReplayState,
    *,
    matches: tuple[FieldMatch, ...],
    count: int | None,
    dry_run: bool,
    target_server: str | None,
    throttle: _Throttle,
    chunk_size: int,
    should_stop: ShouldStop,
    on_progress: Callable[[int, int], None],
) -> bool:
    """The copy loop of replay_into; True when it stopped on request."""
    import hiredis

    pack = hiredis.pack_command
    prefix: tuple[Any, ...] = ("XADD", target, "*")
    sender = PackedSender(target_client, target)
    chunk: list[bytes] = []
    chunk_ids: list[bytes] = []
    try:
        for batch in batches:
            for eid, flat in batch.entries:
                state.scanned += 1
                if matches and not entry_matches(flat, matches):
                    continue
                chunk.append(pack((*prefix, *flat)))
                chunk_ids.append(eid)
                reached = count is not None and state.copied + len(chunk) >= count
                if len(chunk) >= chunk_size or reached:
                    if not throttle.wait(state.copied + len(chunk)):
                        return True
                    _send_chunk(sender, chunk, chunk_ids, state, dry_run, target_server)
                    chunk, chunk_ids = [], []
                    on_progress(state.copied, state.scanned)
                    if reached:
                        return False
                    if should_stop():
                        return True
            if chunk:
                if not throttle.wait(state.copied + len(chunk)):
                    return True
                _send_chunk(sender, chunk, chunk_ids, state, dry_run, target_server)
                chunk, chunk_ids = [], []
            if batch.entries:
                state.resume_after = text(batch.entries[-1][0])
            on_progress(state.copied, state.scanned)
            if should_stop():
                return True
        return False
    finally:
        sender.close()


@dataclass
class _ReplayState:
    scanned: int = 0
    copied: int = 0
    first_id: str | None = None
    last_id: str | None = None
    resume_after: str | None = None
    first_new_id: str | None = None
    last_new_id: str | None = None


def _target_error(
    exc: BaseException, target_client: Client, target_server: str | None
) -> StreamctlError:
    """The target's failure, described with the target's settings (its URL, its timeout)."""
    from streamctl.core.connection import settings_of, translate_error

    mapped = translate_error(exc, settings_of(target_client))
    if mapped is None:
        raise exc
    if target_server and isinstance(mapped, ConnectionFailed):
        return ConnectionFailed(f"target {target_server}: {mapped.message}")
    return mapped


def _send_chunk(
    sender: PackedSender,
    chunk: list[bytes],
    chunk_ids: list[bytes],
    state: _ReplayState,
    dry_run: bool,
    target_server: str | None,
) -> None:
    if dry_run:
        replies: list[Any] = [None] * len(chunk)
    else:
        try:
            replies = sender.send(chunk)
        except Exception as exc:
            mapped = _target_error(exc, sender.client, target_server)
            raise PartialFailure(
                f"{mapped.message}; {state.copied:,} entries were copied before it, and up to "
                f"{len(chunk):,} more may have been{_continue_hint(state)}",
                done=state.copied,
                exit_code=mapped.exit_code,
            ) from None
    for i, reply in enumerate(replies):
        if isinstance(reply, Exception):
            later = sum(1 for r in replies[i + 1 :] if not isinstance(r, Exception))
            if i:
                _copied(state, chunk_ids[:i], replies[:i])
            what = f"the target refused entry {text(chunk_ids[i])}"
            raise PartialFailure(
                f"{_refusal_text(reply, what, sender)}; "
                f"{state.copied:,} entries were copied before it"
                + (f" ({later} after it were copied too)" if later else "")
                + _continue_hint(state),
                done=state.copied,
                exit_code=ExitCode.ERROR,
            )
    _copied(state, chunk_ids, replies)


def _refusal_text(reply: Exception, what: str, sender: PackedSender) -> str:
    """`what: reply`, or the one-line message of a cluster redirect (MOVED: a slot moved),
    naming the server the sender writes to."""
    from streamctl.core.connection import redirect_error, settings_of

    redirect = redirect_error(reply, settings_of(sender.client))
    return redirect.message if redirect is not None else f"{what}: {reply}"


def _copied(state: _ReplayState, source_ids: list[bytes], replies: list[Any]) -> None:
    """Count a run of entries the target acknowledged (replies: new ids, None on a dry run)."""
    if not source_ids:
        return
    state.copied += len(source_ids)
    if state.first_id is None:
        state.first_id = text(source_ids[0])
    state.last_id = state.resume_after = text(source_ids[-1])
    if replies[-1] is not None:
        if state.first_new_id is None:
            state.first_new_id = text(replies[0])
        state.last_new_id = text(replies[-1])


def _continue_hint(state: _ReplayState) -> str:
    if state.resume_after is None:
        return "; rerun with the same --from"
    return f"; continue with --from '({state.resume_after}'"


# ---- replay --group: rewind a group ----


def _group_position(client: Client, stream: str, group: str) -> str:
    for raw in raw_command(client, "XINFO", "GROUPS", stream):
        g = pairs(raw)
        if text(g["name"]) == group:
            return text(g["last-delivered-id"])
    raise NotFound(f"group {group!r} does not exist on stream {stream!r}")


def rewind_group(
    client: Client, stream: str, group: str, start: str, *, dry_run: bool = False
) -> RewindResult:
    """Set GROUP's last-delivered id to just before `start`, so its consumers get the entries
    from `start` on again, with ENTRIESREAD where it can be known: `group setid --execute`."""
    from streamctl.core.connection import server_time_ms
    from streamctl.core.groups import execute_setid, plan_setid

    plan = plan_setid(
        client, stream, group, parse_position(start), now_ms=lambda: server_time_ms(client)
    )
    if not dry_run:
        execute_setid(client, plan)
    return RewindResult(
        stream=stream,
        group=group,
        previous_id=plan.current_id,
        new_id=plan.new_id,
        entries_read=plan.entries_read,
        redeliver=plan.redeliver,
        skip=plan.skip,
        dry_run=dry_run,
    )


# ---- export ----


@dataclass(frozen=True)
class ExportResult:
    stream: str
    count: int
    first_id: str | None
    last_id: str | None
    groups: int
    seconds: float
    stopped: bool = False


def group_states(client: Client, stream: str) -> list[GroupState]:
    """Every group's position, consumers and pending entries (PEL read in pages)."""
    out = []
    for raw in raw_command(client, "XINFO", "GROUPS", stream):
        g = pairs(raw)
        name: bytes = g["name"]
        consumers = tuple(
            pairs(c)["name"] for c in raw_command(client, "XINFO", "CONSUMERS", stream, name)
        )
        pending: list[PendingState] = []
        start = "-"
        while True:
            page = raw_command(client, "XPENDING", stream, name, start, "+", PENDING_PAGE)
            pending.extend(PendingState(text(p[0]), p[1], int(p[3]), int(p[2])) for p in page)
            if len(page) < PENDING_PAGE:
                break
            start = str(StreamId.parse(page[-1][0]).next())
        entries_read = g.get("entries-read")
        out.append(
            GroupState(
                name=name,
                last_delivered_id=text(g["last-delivered-id"]),
                entries_read=int(entries_read) if entries_read is not None else None,
                consumers=consumers,
                pending=tuple(pending),
            )
        )
    return out


def export_stream(
    client: Client,
    stream: str,
    write_entries: Callable[[str, list[RawEntry]], None],
    *,
    start: str = "-",
    end: str = "+",
    count: int | None = None,
    write_groups: Callable[[str, list[GroupState]], None] | None = None,
    should_stop: ShouldStop = _never,
    batch_size: int = BATCH,
) -> ExportResult:
    """Hand the range to `write_entries` batch by batch (bounded memory).

    With `write_groups`, the groups' state is read first and handed over before the entries; the
    range then ends at the stream's last id at that moment, so every id the groups refer to is
    at or before the last entry exported.
    """
    from streamctl.core.streams import read_range

    if count is not None and count < 1:
        raise BadInput(f"bad --count {count}: give a count of 1 or more")
    require_stream(client, stream)
    started = time.perf_counter()
    groups: list[GroupState] = []
    if write_groups is not None:
        groups = group_states(client, stream)
    lo, hi = _resolve_range(client, start, end)
    pinned = _pin_end(hi, snapshot(client, stream).last_id)
    if write_groups is not None:
        write_groups(stream, groups)
    exported, first, last = 0, None, None
    stopped = False
    try:
        for batch in read_range(
            client,
            stream,
            lo,
            pinned or "-",
            count=count,
            batch_size=batch_size,
            check_exists=False,
        ):
            if pinned is None or not batch.entries:
                break
            write_entries(stream, batch.entries)
            exported += len(batch.entries)
            if first is None:
                first = text(batch.entries[0][0])
            last = text(batch.entries[-1][0])
            if should_stop():
                stopped = True
                break
    except StreamctlError:
        raise
    except Exception as exc:  # reading failed part-way: say how far the export got
        from streamctl.core.connection import settings_of, translate_error

        mapped = translate_error(exc, settings_of(client))
        if mapped is None:
            raise
        hint = f"; continue with --from '({last}'" if last else ""
        raise PartialFailure(
            f"{mapped.message}; {exported:,} entries were exported before it{hint}",
            done=exported,
            exit_code=mapped.exit_code,
        ) from None
    return ExportResult(
        stream, exported, first, last, len(groups), time.perf_counter() - started, stopped
    )


# ---- import ----


@dataclass
class _ImportState:
    imported: int = 0
    skipped: int = 0
    first_id: str | None = None
    last_id: str | None = None
    last_source_id: str | None = None
    seen_entry: bool = False
    # without --keep-ids: where the groups' old positions and pending ids landed
    positions: dict[bytes, str] = field(default_factory=dict)
    id_map: dict[str, str] = field(default_factory=dict)


def import_entries(
    client: Client,
    stream: str,
    items: Iterable[EntryLine | GroupLine],
    *,
    keep_ids: bool = False,
    dry_run: bool = False,
    should_stop: ShouldStop = _never,
    on_progress: Callable[[int, int], None] = lambda imported, skipped: None,
    batch_size: int = BATCH,
) -> ImportResult:
    """XADD the entries into STREAM in pipelined batches; then recreate the groups read.

    A malformed line N (from the reader, or an id not after the previous one with `keep_ids`)
    raises PartialFailure (exit 2) after publishing every line before N and none after it: a
    batch is validated and packed entry by entry before it is sent.
    With `keep_ids`, ids at or below the stream's last id are skipped: a rerun after an
    interruption neither loses nor duplicates. Without it, entries get new ids (`*`) and the
    groups' positions and pending ids are mapped onto them.
    """
    sender = PackedSender(client, stream)
    try:
        return _import_entries(
            client,
            stream,
            items,
            sender,
            keep_ids=keep_ids,
            dry_run=dry_run,
            should_stop=should_stop,
            on_progress=on_progress,
            batch_size=batch_size,
        )
    finally:
        sender.close()


def _import_entries(
    client: Client,
    stream: str,
    items: Iterable[EntryLine | GroupLine],
    sender: PackedSender,
    *,
    keep_ids: bool = False,
    dry_run: bool = False,
    should_stop: ShouldStop = _never,
    on_progress: Callable[[int, int], None] = lambda imported, skipped: None,
    batch_size: int = BATCH,
) -> ImportResult:
    import hiredis

    pack = hiredis.pack_command
    started = time.perf_counter()
    exists = stream_exists(client, stream)
    last_generated: IdKey = (0, 0)
    if exists:
        info = pairs(raw_command(client, "XINFO", "STREAM", stream))
        last_generated = id_key(text(info["last-generated-id"])) or (0, 0)
    state = _ImportState()
    groups: list[GroupState] = []
    wanted: set[str] = set()  # pending ids to map (new ids)
    batch: list[bytes] = []
    meta: list[EntryLine] = []
    previous: IdKey | None = None

    def flush() -> None:
        nonlocal batch, meta
        if batch:
            _import_batch(sender, batch, meta, state, groups, wanted, dry_run, keep_ids)
            on_progress(state.imported, state.skipped)
        batch, meta = [], []

    def result(group_results: tuple[GroupImport, ...] = (), stopped: bool = False) -> ImportResult:
        return ImportResult(
            stream=stream,
            keep_ids=keep_ids,
            dry_run=dry_run,
            imported=state.imported,
            skipped=state.skipped,
            first_id=state.first_id,
            last_id=state.last_id,
            last_source_id=state.last_source_id,
            groups=group_results,
            seconds=time.perf_counter() - started,
            stopped=stopped,
        )

    star = ("XADD", stream, "*")
    try:
        for item in items:
            if type(item) is GroupLine:
                if state.seen_entry:
                    raise BadInput(
                        f"line {item.lineno}: the groups' state must come before the entries"
                    )
                groups.append(item.state)
                wanted.update(p.id for p in item.state.pending)
                continue
            assert isinstance(item, EntryLine)
            state.seen_entry = True
            if keep_ids:
                key = item.key
                if previous is not None and key <= previous:
                    raise BadInput(
                        f"line {item.lineno}: id {item.id} is not after the previous id "
                        f"{previous[0]}-{previous[1]} (with --keep-ids, ids must increase)"
                    )
                previous = key
                if key == (0, 0):
                    raise BadInput(f"line {item.lineno}: id 0-0 cannot be written to a stream")
                if key <= last_generated:
                    state.skipped += 1
                    state.last_source_id = item.id
                    continue
                prefix: tuple[Any, ...] = ("XADD", stream, item.id)
            else:
                prefix = star
            try:
                batch.append(pack((*prefix, *item.flat)))
            except UnicodeEncodeError:
                raise BadInput(
                    f"line {item.lineno}: a string that is not valid Unicode (a lone surrogate); "
                    'write raw bytes as {"base64": "..."}'
                ) from None
            meta.append(item)
            if len(batch) >= batch_size:
                flush()
                if should_stop():
                    return result(stopped=True)
    except BadInput as exc:
        flush()
        raise PartialFailure(
            f"{exc.message}; {state.imported:,} entries before it were imported"
            + (f" ({state.skipped:,} already there were skipped)" if state.skipped else ""),
            done=state.imported,
            exit_code=ExitCode.USAGE,
        ) from None
    flush()
    if should_stop():
        return result(stopped=True)
    group_results: list[GroupImport] = []
    for g in groups:
        try:
            group_results.append(
                _recreate_group(client, stream, g, state, last_generated, keep_ids, dry_run)
            )
        except StreamctlError:
            raise
        except Exception as exc:  # a group is restored whole or not at all: say which were
            from streamctl.core.connection import settings_of, translate_error

            mapped = translate_error(exc, settings_of(client))
            if mapped is None:
                raise
            done = [r.name.decode("utf-8", "backslashreplace") for r in group_results]
            name = g.name.decode("utf-8", "backslashreplace")
            raise PartialFailure(
                f"{mapped.message}; {state.imported:,} entries were imported"
                + (f" ({state.skipped:,} already there were skipped)" if state.skipped else "")
                + f", then group {name!r} was being restored"
                + (f" (after {', '.join(repr(n) for n in done)})" if done else "")
                + ("; rerun the same command to continue" if keep_ids else ""),
                done=state.imported,
                exit_code=mapped.exit_code,
            ) from None
    return result(tuple(group_results))


def _import_batch(
    sender: PackedSender,
    batch: list[bytes],
    meta: list[EntryLine],
    state: _ImportState,
    groups: list[GroupState],
    wanted: set[str],
    dry_run: bool,
    keep_ids: bool,
) -> None:
    if dry_run:
        replies: list[Any] = [m.id.encode() if keep_ids else None for m in meta]
    else:
        try:
            replies = sender.send(batch)
        except Exception as exc:
            from streamctl.core.connection import settings_of, translate_error

            mapped = translate_error(exc, settings_of(sender.client))
            if mapped is None:
                raise
            raise PartialFailure(
                f"{mapped.message}; {state.imported:,} entries were imported before it, and up "
                f"to {len(batch):,} more (lines {meta[0].lineno}-{meta[-1].lineno}) may have been"
                # with --keep-ids the same command skips what is there: it continues
                + ("; rerun the same command to continue" if keep_ids else ""),
                done=state.imported,
                exit_code=mapped.exit_code,
            ) from None
    limits = [(g.name, id_key(g.last_delivered_id) or (0, 0)) for g in groups]
    for item, reply in zip(meta, replies, strict=True):
        if isinstance(reply, Exception):
            what = f"line {item.lineno}: the server refused id {item.id}"
            raise PartialFailure(
                f"{_refusal_text(reply, what, sender)}; "
                f"{state.imported:,} entries before it were imported",
                done=state.imported,
                exit_code=ExitCode.ERROR,
            )
        state.imported += 1
        if reply is None:  # a dry run without --keep-ids: no id yet
            continue
        new_id = reply.decode()
        if state.first_id is None:
            state.first_id = new_id
        state.last_id = new_id
        if not keep_ids and groups:
            if item.id in wanted:
                state.id_map[item.id] = new_id
            for name, limit in limits:
                if item.key <= limit:
                    state.positions[name] = new_id
    if meta:
        state.last_source_id = meta[-1].id


# Restores one group whole: created with its consumers and every pending entry in one script,
# or (a group of that name already there: BUSYGROUP) not touched at all. A script is atomic: an
# import killed while it restores a group leaves no group, and the rerun creates it whole, instead
# of finding a group without its pending entries and leaving it "as it is". Every command acts on
# the one stream key: on a cluster the script runs on that key's node.
# ARGV: group, position, entries-read ('' when unknown), the number of consumers, the consumers,
# then runs of pending entries: consumer, idle ms, deliveries, n, and n ids.
_RESTORE_GROUP_SCRIPT = """
local stream, group = KEYS[1], ARGV[1]
local create = {'XGROUP', 'CREATE', stream, group, ARGV[2], 'MKSTREAM'}
if ARGV[3] ~= '' then
  create[#create + 1] = 'ENTRIESREAD'
  create[#create + 1] = ARGV[3]
end
local created = redis.pcall(unpack(create))
if type(created) == 'table' and created.err then
  return created
end
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call('XGROUP', 'CREATECONSUMER', stream, group, ARGV[i])
  i = i + 1
end
local restored = 0
while i <= #ARGV do
  local n = tonumber(ARGV[i + 3])
  local claim = {'XCLAIM', stream, group, ARGV[i], 0}
  for j = i + 4, i + 3 + n do
    claim[#claim + 1] = ARGV[j]
  end
  for _, word in ipairs({'IDLE', ARGV[i + 1], 'RETRYCOUNT', ARGV[i + 2], 'FORCE', 'JUSTID'}) do
    claim[#claim + 1] = word
  end
  restored = restored + #redis.call(unpack(claim))
  i = i + 4 + n
end
return restored
"""
CLAIM_RUN = 1000  # ids per XCLAIM in the script (a Lua call takes a bounded number of arguments)


def _claim_runs(pending: list[tuple[PendingState, str | None]]) -> tuple[list[Any], int, int]:
    """The script's runs of pending entries (consecutive entries with the same consumer, idle
    time and delivery count share one XCLAIM), how many ids they hold, and how many pending
    entries have no id to claim (not imported)."""
    args: list[Any] = []
    run: list[str] = []
    run_key: tuple[bytes, int, int] | None = None
    claimed = unmapped = 0

    def close_run() -> None:
        if run_key is not None and run:
            args.extend((run_key[0], run_key[1], run_key[2], len(run), *run))

    for p, mapped in pending:
        if mapped is None:
            unmapped += 1
            continue
        key = (p.consumer, p.idle_ms, p.deliveries)
        if key != run_key or len(run) >= CLAIM_RUN:
            close_run()
            run, run_key = [], key
        run.append(mapped)
        claimed += 1
    close_run()
    return args, claimed, unmapped


def _recreate_group(
    client: Client,
    stream: str,
    group: GroupState,
    state: _ImportState,
    last_generated: IdKey,
    keep_ids: bool,
    dry_run: bool,
) -> GroupImport:
    """Create the group at its position (mapped onto the new ids without --keep-ids), its
    consumers, and its pending entries (XCLAIM ... FORCE with their delivery count and idle
    time), all in one script: the group appears whole or not at all. A group that already
    exists is left as it is."""
    from redis.exceptions import ResponseError

    if keep_ids:
        position = group.last_delivered_id
    else:
        position = state.positions.get(group.name, f"{last_generated[0]}-{last_generated[1]}")
    pending = [(p, p.id if keep_ids else state.id_map.get(p.id)) for p in group.pending]
    stream_there = stream_exists(client, stream)
    exists = stream_there and any(
        pairs(g)["name"] == group.name for g in raw_command(client, "XINFO", "GROUPS", stream)
    )
    if exists or dry_run:
        return GroupImport(
            group.name,
            "exists" if exists else "would create",
            position,
            None,
            len(group.consumers),
            0,
            0,
        )
    entries_read = None
    if stream_there:
        from streamctl.core.groups import entries_read_at

        entries_read, _why_unknown = entries_read_at(client, stream, position)
    runs, claimed, unmapped = _claim_runs(pending)
    args: list[Any] = [
        group.name,
        position,
        "" if entries_read is None else entries_read,
        len(group.consumers),
        *group.consumers,
        *runs,
    ]
    try:
        restored = int(raw_command(client, "EVAL", _RESTORE_GROUP_SCRIPT, 1, stream, *args))
    except ResponseError as exc:
        if str(exc).startswith("BUSYGROUP"):
            return GroupImport(group.name, "exists", position, None, len(group.consumers), 0, 0)
        raise ServerRefused(f"the server refused to create group {group.name!r}: {exc}") from None
    dropped = unmapped + claimed - restored  # ids no longer in the stream are not claimed
    return GroupImport(
        group.name, "created", position, entries_read, len(group.consumers), restored, dropped
    )
