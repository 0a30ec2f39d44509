"""import: NDJSON envelopes (inputs.read_envelopes) written back into a stream in pipelined
batches, then the groups' state restored (each group whole or not at all).

With `keep_ids`, ids at or below the stream's last id are skipped, so a rerun after an
interruption neither loses nor duplicates an entry. The result models are in
core.models_transfer.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import lt
from typing import TYPE_CHECKING, Any

from streamctl.core.failover import BulkSender, Recovered, send_following
from streamctl.core.models_transfer import GroupImport, GroupState, ImportResult, PendingState
from streamctl.core.streams import pack_uniform, pack_uniform_each
from streamctl.core.wire import (
    never,
    pairs,
    raw_command,
    stream_exists,
    text,
)
from streamctl.errors import (
    BadInput,
    CheckFailed,
    ExitCode,
    PartialFailure,
    ServerRefused,
    StreamctlError,
)
from streamctl.ids import IdKey, id_key
from streamctl.inputs import EntryBlock, EntryLine, GroupLine
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.core.connection import Client
    from streamctl.core.durability import Durability

BATCH = 1000  # entries per pipelined write (one batch in flight)


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
    items: Iterable[EntryBlock | EntryLine | GroupLine],
    *,
    keep_ids: bool = False,
    dry_run: bool = False,
    should_stop: Callable[[], bool] = never,
    on_progress: Callable[[int, int], None] = lambda imported, skipped: None,
    batch_size: int = BATCH,
    durability: Durability | None = None,
    on_notice: Callable[[str], None] = lambda text: None,
) -> ImportResult:
    """XADD the entries into STREAM in pipelined batches; then recreate the groups read.

    A malformed line N (from the reader, or an id not after the previous one with `keep_ids`)
    raises PartialFailure (exit 2) after publishing every line before N and none after it: a
    batch is validated and packed entry by entry before it is sent.
    With `keep_ids`, ids at or below the stream's last id are skipped: a rerun after an
    interruption neither loses nor duplicates. Without it, entries get new ids (`*`) and the
    groups' positions and pending ids are mapped onto them.
    `durability`: WAIT (WAITAOF) after each batch; a batch not confirmed ends the run with
    PartialFailure (exit 5), its entries imported and counted.
    Through Sentinel, a failover is followed (core/failover.py, `on_notice` is told): the
    entries the new primary lacks are sent again, at least once and in order; with `keep_ids`
    exactly once (those it holds are known by their ids).
    """
    if durability is not None and not dry_run:
        from streamctl.core.durability import require_support

        require_support(client, durability)
    from streamctl.core.failover import RETAINED_BYTES, Resend

    def too_old(held: int) -> BaseException:
        return PartialFailure(
            f"after a failover the primary lacks entry {held + 1} of this import, older than "
            f"the {RETAINED_BYTES >> 20} MiB of entries kept to send again; "
            f"{count_noun(held, 'entry is', 'entries are')} imported"
            + (
                "; rerun the same command to continue"
                if keep_ids
                else " (a rerun with --keep-ids continues without duplicates only if the ids "
                "were kept)"
            ),
            done=held,
            exit_code=ExitCode.CONNECTION,
        )

    resend = None if dry_run else Resend.wanted(client)
    sender = BulkSender(
        client, stream, None if dry_run else durability, resend=resend, too_old=too_old
    )
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
            on_notice=on_notice,
        )
    finally:
        sender.close()


def _import_entries(
    client: Client,
    stream: str,
    items: Iterable[EntryBlock | EntryLine | GroupLine],
    sender: BulkSender,
    *,
    keep_ids: bool = False,
    dry_run: bool = False,
    should_stop: Callable[[], bool] = never,
    on_progress: Callable[[int, int], None] = lambda imported, skipped: None,
    batch_size: int = BATCH,
    on_notice: Callable[[str], None] = lambda text: None,
) -> ImportResult:
    import hiredis

    pack = hiredis.pack_command
    started = time.perf_counter()
    last_generated = _last_generated(client, stream)
    state = _ImportState()
    groups: list[GroupState] = []
    wanted: set[str] = set()  # pending ids to map (new ids)
    batch: list[bytes] = []
    meta: list[EntryLine] = []
    previous: IdKey | None = None

    def send(packed: list[bytes], lines: list[EntryLine]) -> None:
        _import_batch(sender, packed, lines, state, groups, wanted, dry_run, keep_ids)
        try:
            sender.confirm("a batch of entries was imported")
        except CheckFailed as exc:  # the entries are imported all the same: counted
            raise PartialFailure(
                f"{exc.message}; "
                f"{count_noun(state.imported, 'entry was', 'entries were')} imported"
                + _skipped_note(state)
                + f", the last one line {lines[-1].lineno}"
                + ("; rerun the same command to continue" if keep_ids else ""),
                done=state.imported,
                exit_code=exc.exit_code,
            ) from None

    def recovered(lost: Recovered) -> list[tuple[bytes, Any]]:
        """After a failover: the counts rolled back to what the new primary holds."""
        units = lost.units
        state.imported = lost.held
        held_ids = sender.resend.ids if sender.resend is not None else []
        state.last_id = held_ids[-1].decode() if held_ids else None
        if not held_ids:
            state.first_id = None
        if keep_ids and units:  # entries in flight when the connection was lost may be there
            last = _last_generated(client, stream)
            there = [line for _, line in units if line.key <= last]
            if there:
                assert sender.resend is not None
                sender.resend.found([line.id.encode() for line in there])
                state.imported += len(there)
                state.first_id = state.first_id or there[0].id
                state.last_id = there[-1].id
                units = units[len(there) :]
        on_notice(
            f"the connection to the primary was lost ({lost.cause}); "
            + (
                f"importing again from line {units[0][1].lineno}, the first entry the primary "
                "now lacks"
                if units
                else "the primary holds every entry sent: importing on"
            )
        )
        return units

    inflight: list[list[EntryLine]] = []  # pipelined: batches sent, replies not read yet

    def drain(keep: int = 0) -> None:
        """Read and count the batches in flight, the oldest first, until `keep` are left."""
        while len(inflight) > keep:
            try:
                replies = sender.receive()
            except Exception as exc:
                unknown = [m for b in inflight for m in b]
                raise _lost(exc, sender, state, unknown, keep_ids) from None
            _account(sender, replies, inflight.pop(0), state, groups, wanted, keep_ids)

    def flush() -> None:
        nonlocal batch, meta
        if batch:
            if sender.pipelined() and not dry_run:
                # the server writes this batch while the next one is read and packed
                try:
                    sender.send(batch, len(meta))
                except Exception as exc:
                    lines = [m for b in inflight for m in b] + meta
                    raise _lost(exc, sender, state, lines, keep_ids) from None
                inflight.append(meta)
                drain(keep=1)
            elif sender.resend is None:
                send(batch, meta)
            else:  # the entries are kept to send again: without their fields (packed already)
                lines = [m._replace(flat=_PACKED) for m in meta]
                send_following(send, batch, lines, recovered, batch_size)
            on_progress(state.imported, state.skipped)
        batch, meta = [], []

    def result(group_results: tuple[GroupImport, ...] = (), stopped: bool = False) -> ImportResult:
        drain()
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

    def add_line(item: EntryLine) -> None:
        """One entry: its id checked (with keep_ids), packed and added to the batch."""
        nonlocal previous
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
                return
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

    def add_lines(lines: Iterable[EntryLine]) -> bool:
        """Entries one by one; True when stopped (should_stop after a batch)."""
        for line in lines:
            add_line(line)
            if len(meta) >= batch_size:
                flush()
                if should_stop():
                    return True
        return False

    def add_block(block: EntryBlock) -> bool:
        """A block's entries packed column by column, a batch at a time (no Python per entry);
        True when stopped. A block whose ids would be refused goes entry by entry, to name
        the line."""
        nonlocal previous
        keys, n, start = block.keys, len(block.ids), 0
        if keep_ids:
            if (
                (previous is not None and keys[0] <= previous)
                or keys[0] == (0, 0)
                or not all(map(lt, keys, islice(keys, 1, None)))
            ):
                return add_lines(block.lines())
            previous = keys[-1]
            start = bisect_right(keys, last_generated)  # already there: skipped
            if start:
                state.skipped += start
                state.last_source_id = block.ids[start - 1]
        # one packed item per entry where entries may be sent again (through Sentinel)
        pack_block = pack_uniform_each if sender.resend is not None else pack_uniform
        while start < n:
            end = min(n, start + batch_size - len(meta))
            ids = block.ids[start:end]
            if keep_ids:
                packed = pack_block(("XADD", stream), block.fields[start:end], ids)
            else:
                packed = pack_block(star, block.fields[start:end])
            if packed is None:  # not expected of a block: entry by entry, to name a bad one
                if add_lines(islice(block.lines(), start, end)):
                    return True
            else:
                if isinstance(packed, bytes):
                    batch.append(packed)  # the slice's commands in one item
                else:
                    batch.extend(packed)
                meta.extend(
                    map(
                        tuple.__new__,  # EntryLine._make without a Python call per entry
                        repeat(EntryLine),
                        zip(
                            range(block.lineno + start, block.lineno + end),
                            ids,
                            keys[start:end],
                            repeat(_PACKED),
                            strict=False,
                        ),
                    )
                )
                if len(meta) >= batch_size:
                    flush()
                    if should_stop():
                        return True
            start = end
        return False

    try:
        for item in items:
            kind = type(item)
            if kind is GroupLine:
                assert isinstance(item, GroupLine)
                if state.seen_entry:
                    raise BadInput(
                        f"line {item.lineno}: the groups' state must come before the entries"
                    )
                groups.append(item.state)
                wanted.update(p.id for p in item.state.pending)
                continue
            state.seen_entry = True
            if kind is EntryBlock:
                assert isinstance(item, EntryBlock)
                if add_block(item):
                    return result(stopped=True)
            else:
                assert isinstance(item, EntryLine)
                if add_lines((item,)):
                    return result(stopped=True)
    except BadInput as exc:
        flush()
        drain()
        raise PartialFailure(
            f"{exc.message}; "
            f"{count_noun(state.imported, 'entry before it was', 'entries before it were')} "
            "imported" + _skipped_note(state),
            done=state.imported,
            exit_code=ExitCode.USAGE,
        ) from None
    flush()
    drain()
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
            from streamctl.core.connection import translate_error

            mapped = translate_error(exc, client=client)
            if mapped is None:
                raise
            done = [r.name.decode("utf-8", "backslashreplace") for r in group_results]
            name = g.name.decode("utf-8", "backslashreplace")
            raise PartialFailure(
                f"{mapped.message}; "
                f"{count_noun(state.imported, 'entry was', 'entries were')} imported"
                + _skipped_note(state)
                + f", then group {name!r} was being restored"
                + (f" (after {', '.join(repr(n) for n in done)})" if done else "")
                + ("; rerun the same command to continue" if keep_ids else ""),
                done=state.imported,
                exit_code=mapped.exit_code,
            ) from None
    return result(tuple(group_results))


_PACKED: list[Any] = []  # the fields of an entry kept to send again: its packed XADD has them


def _last_generated(client: Client, stream: str) -> IdKey:
    """The stream's last id ((0, 0) when there is no stream)."""
    if not stream_exists(client, stream):
        return (0, 0)
    info = pairs(raw_command(client, "XINFO", "STREAM", stream))
    return id_key(text(info["last-generated-id"])) or (0, 0)


def _import_batch(
    sender: BulkSender,
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
            replies = sender.exchange(batch, meta)
        except PartialFailure:  # already says how far the run got (a loss past the kept)
            raise
        except Exception as exc:
            raise _lost(exc, sender, state, meta, keep_ids) from None
    _account(sender, replies, meta, state, groups, wanted, keep_ids)


def _skipped_note(state: _ImportState) -> str:
    """What follows the imported count when entries already there were skipped (--keep-ids)."""
    if not state.skipped:
        return ""
    return f" ({count_noun(state.skipped, 'already there was', 'already there were')} skipped)"


def _lost(
    exc: Exception, sender: BulkSender, state: _ImportState, meta: list[EntryLine], keep_ids: bool
) -> BaseException:
    """A batch's write or reply failed: how far the run got (`meta`: the entries whose fate is
    unknown), or `exc` itself when it is not a server's failure."""
    from streamctl.core.connection import translate_error

    mapped = translate_error(exc, client=sender.client)
    if mapped is None:
        return exc
    return PartialFailure(
        f"{mapped.message}; {count_noun(state.imported, 'entry was', 'entries were')} imported "
        "before it, and up "
        f"to {len(meta):,} more (lines {meta[0].lineno}-{meta[-1].lineno}) may have been"
        # with --keep-ids the same command skips what is there: it continues
        + ("; rerun the same command to continue" if keep_ids else ""),
        done=state.imported,
        exit_code=mapped.exit_code,
    )


def _account(
    sender: BulkSender,
    replies: list[Any],
    meta: list[EntryLine],
    state: _ImportState,
    groups: list[GroupState],
    wanted: set[str],
    keep_ids: bool,
) -> None:
    """Count a batch's replies (its new ids); a refused entry ends the run, named."""
    # no group to map and every entry written (bytes: its new id): the batch is accounted for
    # at once, in C; a refused entry goes through the loop below, which names it
    if (keep_ids or not groups) and replies and set(map(type, replies)) == {bytes}:
        state.imported += len(replies)
        if state.first_id is None:
            state.first_id = replies[0].decode()
        state.last_id = replies[-1].decode()
        state.last_source_id = meta[-1].id
        return
    limits = [(g.name, id_key(g.last_delivered_id) or (0, 0)) for g in groups]
    for item, reply in zip(meta, replies, strict=True):
        if isinstance(reply, Exception):
            what = f"line {item.lineno}: the server refused id {item.id}"
            raise PartialFailure(
                f"{sender.refusal_text(reply, what)}; "
                f"{count_noun(state.imported, 'entry before it was', 'entries before it were')} "
                "imported",
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
