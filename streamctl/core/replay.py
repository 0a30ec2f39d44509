"""replay: re-publish a range of a stream into another stream (here or on another server), and
rewind a group so its consumers get a range again.

The copy works batch by batch on one connection (bounded memory), checks `should_stop` between
chunks (a signal finishes the chunk in flight) and reports exactly how far it got: `resume_after`
is the last source id processed; a rerun with `--from "(ID"` continues without losing or
duplicating an entry. The result models are in core.models_transfer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamctl.core.failover import BulkSender, Recovered, send_following
from streamctl.core.filters import EntryFilter
from streamctl.core.models import EntryBatch
from streamctl.core.models_transfer import ReplayResult, RewindResult
from streamctl.core.streams import pin_end, resolve_range
from streamctl.core.trim import snapshot
from streamctl.core.wire import (
    never,
    require_stream,
    stream_exists,
    text,
)
from streamctl.errors import (
    BadInput,
    CheckFailed,
    ConnectionFailed,
    ExitCode,
    PartialFailure,
    StreamctlError,
)
from streamctl.ids import StreamId, parse_position
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from streamctl.core.connection import Client
    from streamctl.core.durability import Durability

BATCH = 1000  # entries per chunk sent to the target (one chunk in flight)

ShouldStop = Callable[[], bool]


# ---- replay --into ----


class Throttle:
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


def chunk_size_for(batch_size: int, rate: float | None) -> int:
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
    filter: EntryFilter | None = None,
    count: int | None = None,
    rate: float | None = None,
    dry_run: bool = False,
    target_server: str | None = None,
    should_stop: ShouldStop = never,
    on_progress: Callable[[int, int], None] = lambda copied, scanned: None,
    batch_size: int = BATCH,
    durability: Durability | None = None,
    on_notice: Callable[[str], None] = lambda text: None,
) -> ReplayResult:
    """Re-publish the entries of STREAM from `start` to `end` into `target` with new ids (`*`),
    pipelined in batches on one connection of `target_client`.

    The end is fixed at the stream's last id when the replay starts. Stops early on
    `should_stop` after the chunk in flight (result.stopped); a server failure raises
    PartialFailure naming how far it got and the `--from "(ID"` to continue with.
    `durability`: WAIT (WAITAOF) on the target after each batch; a batch not confirmed ends the
    run with PartialFailure (exit 5), its entries copied and counted.
    A target reached through Sentinel is followed through a failover (core/failover.py,
    `on_notice` is told): the entries its new primary lacks are copied again, at least once
    and in order.
    """

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
    if durability is not None and not dry_run:
        from streamctl.core.durability import require_support

        try:
            require_support(target_client, durability)
        except StreamctlError:
            raise
        except Exception as exc:
            raise _target_error(exc, target_client, target_server) from None
    lo, hi = resolve_range(source, start, end)
    pinned = pin_end(hi, snapshot(source, stream).last_id)
    started = time.perf_counter()
    state = _ReplayState()
    throttle = Throttle(None if dry_run else rate, should_stop)
    chunk_size = chunk_size_for(batch_size, None if dry_run else rate)

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
            _read_following(source, stream, lo, pinned, batch_size, on_notice),
            target_client,
            target,
            state,
            entry_filter=filter,
            count=count,
            dry_run=dry_run,
            target_server=target_server,
            throttle=throttle,
            chunk_size=chunk_size,
            should_stop=should_stop,
            on_progress=on_progress,
            durability=None if dry_run else durability,
            on_notice=on_notice,
        )
    except StreamctlError:
        raise
    except Exception as exc:  # reading the source failed: say how far the copy got
        from streamctl.core.connection import translate_error

        mapped = translate_error(exc, client=source)
        if mapped is None:
            raise
        raise PartialFailure(
            f"{mapped.message}; "
            f"{count_noun(state.copied, 'entry was', 'entries were')} copied before it"
            + _continue_hint(state),
            done=state.copied,
            exit_code=mapped.exit_code,
        ) from None
    return result(stopped)


def _read_following(
    source: Client,
    stream: str,
    lo: str,
    hi: str,
    batch_size: int,
    on_notice: Callable[[str], None],
) -> Iterator[EntryBatch]:
    """The range in batches (streams.read_range); through Sentinel, a lost connection (a
    failover) is followed: once there is a primary again, reading goes on after the last entry
    handed out."""
    from streamctl.core.connection import sentinel_of
    from streamctl.core.failover import LOST, MAX_FAILOVERS, wait_for_primary
    from streamctl.core.streams import read_range

    last: bytes | None = None
    failovers = 0
    while True:
        start = lo if last is None else f"({text(last)}"
        try:
            for batch in read_range(source, stream, start, hi, batch_size=batch_size,
                                    check_exists=False):  # fmt: skip
                if batch.entries:
                    last = batch.entries[-1][0]
                yield batch
            return
        except LOST as exc:
            failovers += 1
            if sentinel_of(source) is None or failovers > MAX_FAILOVERS:
                raise
            wait_for_primary(source, exc)
            on_notice(
                f"the connection to the primary was lost ({exc}); reading {stream!r} again "
                + (f"after {text(last)}" if last is not None else "from the start")
            )


def _copy_range(
    batches: Iterable[EntryBatch],
    target_client: Client,
    target: str,
    state: _ReplayState,
    *,
    entry_filter: EntryFilter | None,
    count: int | None,
    dry_run: bool,
    target_server: str | None,
    throttle: Throttle,
    chunk_size: int,
    should_stop: ShouldStop,
    on_progress: Callable[[int, int], None],
    durability: Durability | None,
    on_notice: Callable[[str], None],
) -> bool:
    """The copy loop of replay_into; True when it stopped on request."""
    import hiredis

    from streamctl.core.failover import RETAINED_BYTES, Resend

    pack = hiredis.pack_command
    prefix: tuple[Any, ...] = ("XADD", target, "*")
    copied_from: list[bytes] = []  # through Sentinel: the source id of each entry copied

    def too_old(held: int) -> BaseException:
        after = f"--from '({text(copied_from[held - 1])}'" if held else "the same --from"
        return PartialFailure(
            f"after a failover the target's primary lacks entry {held + 1} of this replay, older "
            f"than the {RETAINED_BYTES >> 20} MiB of entries kept to copy again; "
            f"{count_noun(held, 'entry is', 'entries are')} copied: continue with {after}",
            done=held,
            exit_code=ExitCode.CONNECTION,
        )

    resend = None if dry_run else Resend.wanted(target_client)
    sender = BulkSender(target_client, target, durability, resend=resend, too_old=too_old)

    def send(packed: list[bytes], source_ids: list[bytes]) -> None:
        _send_chunk(sender, packed, source_ids, state, dry_run, target_server)
        copied_from.extend(source_ids)

    def recovered(lost: Recovered) -> list[tuple[bytes, Any]]:
        """After a failover: the counts rolled back to what the new primary holds."""
        held = lost.held
        del copied_from[held:]
        state.copied = held
        new_ids = resend.ids if resend is not None else []
        if held:
            state.last_id = state.resume_after = text(copied_from[-1])
            state.last_new_id = text(new_ids[-1])
        else:
            state.first_id = state.last_id = state.resume_after = None
            state.first_new_id = state.last_new_id = None
        on_notice(
            f"the connection to the target's primary was lost ({lost.cause}); "
            + (
                f"copying again from entry {text(lost.units[0][1])}, the first the primary now "
                "lacks"
                if lost.units
                else "the primary holds every entry sent: copying on"
            )
        )
        return lost.units

    def send_chunk(packed: list[bytes], source_ids: list[bytes]) -> None:
        if resend is None:
            _send_chunk(sender, packed, source_ids, state, dry_run, target_server)
        else:
            send_following(send, packed, source_ids, recovered, chunk_size)

    chunk: list[bytes] = []
    chunk_ids: list[bytes] = []
    try:
        for batch in batches:
            for eid, flat in batch.entries:
                state.scanned += 1
                if entry_filter is not None and not entry_filter.passes(batch.stream, eid, flat):
                    continue
                chunk.append(pack((*prefix, *flat)))
                chunk_ids.append(eid)
                reached = count is not None and state.copied + len(chunk) >= count
                if len(chunk) >= chunk_size or reached:
                    if not throttle.wait(state.copied + len(chunk)):
                        return True
                    send_chunk(chunk, chunk_ids)
                    chunk, chunk_ids = [], []
                    on_progress(state.copied, state.scanned)
                    if reached:
                        return False
                    if should_stop():
                        return True
            if chunk:
                if not throttle.wait(state.copied + len(chunk)):
                    return True
                send_chunk(chunk, chunk_ids)
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
    from streamctl.core.connection import translate_error

    mapped = translate_error(exc, client=target_client)
    if mapped is None:
        raise exc
    if target_server and isinstance(mapped, ConnectionFailed):
        return ConnectionFailed(f"target {target_server}: {mapped.message}")
    return mapped


def _send_chunk(
    sender: BulkSender,
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
            replies = sender.exchange(chunk, chunk_ids)
        except PartialFailure:  # already says how far the run got (a loss past the kept)
            raise
        except Exception as exc:
            mapped = _target_error(exc, sender.client, target_server)
            raise PartialFailure(
                f"{mapped.message}; {count_noun(state.copied, 'entry was', 'entries were')} copied "
                "before it, and up to "
                f"{len(chunk):,} more may have been{_continue_hint(state)}",
                done=state.copied,
                exit_code=mapped.exit_code,
            ) from None
    for i, reply in enumerate(replies):
        if isinstance(reply, Exception):
            later = sum(1 for r in replies[i + 1 :] if not isinstance(r, Exception))
            also = count_noun(later, "after it was", "after it were", grouped=False)
            if i:
                _copied(state, chunk_ids[:i], replies[:i])
            what = f"the target refused entry {text(chunk_ids[i])}"
            raise PartialFailure(
                f"{sender.refusal_text(reply, what)}; "
                f"{count_noun(state.copied, 'entry was', 'entries were')} copied before it"
                + (f" ({also} copied too)" if later else "")
                + _continue_hint(state),
                done=state.copied,
                exit_code=ExitCode.ERROR,
            )
    _copied(state, chunk_ids, replies)
    try:
        sender.confirm("a batch of entries was copied")
    except CheckFailed as exc:  # the entries are copied all the same: counted
        raise PartialFailure(
            f"{exc.message}; {count_noun(state.copied, 'entry was', 'entries were')} copied"
            + _continue_hint(state),
            done=state.copied,
            exit_code=exc.exit_code,
        ) from None


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
