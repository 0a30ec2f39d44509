"""Pending entries of a consumer group: summary, list (paged), claim, dead-letter and ack.

Every read of the PEL is paged with exclusive ranges (`(ID`), so memory is bounded by the page
size however many entries are pending. Claims use JUSTID: the delivery counter is left to the
consumer that reads the entry next (so `--max-deliveries` keeps counting real deliveries).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from streamctl.core.connection import Client, same_slot, same_slot_key, server_time_ms
from streamctl.core.models_pending import (
    AckResult,
    ClaimResult,
    DeadLetter,
    DeadLetterResult,
    PendingEntry,
    PendingSummary,
)
from streamctl.core.wire import (
    eval_script,
    key_type,
    raw_command,
    raw_pipeline,
    require_group,
    require_stream,
    text,
)
from streamctl.errors import BadInput, NotFound, PartialFailure, ServerRefused
from streamctl.ids import MAX_ID, StreamId
from streamctl.wording import count_noun

PAGE = 1000
AUTOCLAIM_COUNT = 100  # XAUTOCLAIM scans at most 10x this many PEL entries per call
SCRIPT_BATCH = 100
ACK_BATCH = 1000


# ---- options (the result models are in core.models_pending) ----


@dataclass(frozen=True)
class PendingFilter:
    """Which pending entries a listing, claim or dead-letter run selects.

    `start`/`end` are server ids (resolved from the id/time grammar by the caller)."""

    consumer: str | None = None
    min_idle_ms: int = 0
    min_deliveries: int = 0
    start: str = "-"
    end: str = "+"

    @property
    def needs_pel_scan(self) -> bool:
        """True when XAUTOCLAIM alone cannot apply the filter (it knows only idle and start)."""
        return self.consumer is not None or self.min_deliveries > 0 or self.end != "+"


# ---- checks ----


def require_stream_group(client: Client, stream: str, group: str) -> None:
    """NotFound naming the stream, or the group: XPENDING/XACK cannot tell them apart."""
    require_stream(client, stream)
    require_group(client, stream, group)


def _missing_group(exc: ResponseError, stream: str, group: str) -> Exception:
    if str(exc).startswith("NOGROUP"):
        return NotFound(f"group {group!r} does not exist on stream {stream!r}")
    return exc  # worded where every refusal is (connection.translate_error: NOPERM, ...)


# ---- summary and listing ----


def pending_summary(client: Client, stream: str, group: str) -> PendingSummary:
    require_stream_group(client, stream, group)
    try:
        count, oldest, newest, per_consumer = raw_command(client, "XPENDING", stream, group)
    except ResponseError as exc:
        raise _missing_group(exc, stream, group) from None
    consumers = tuple((text(name), int(n)) for name, n in (per_consumer or []))
    return PendingSummary(
        stream=stream,
        group=group,
        count=int(count),
        oldest_id=text(oldest) if oldest is not None else None,
        newest_id=text(newest) if newest is not None else None,
        consumers=consumers,
        now_ms=server_time_ms(client),
    )


def _entry(raw: list[Any]) -> PendingEntry:
    return PendingEntry(text(raw[0]), text(raw[1]), int(raw[2]), int(raw[3]))


def iter_pending(
    client: Client,
    stream: str,
    group: str,
    flt: PendingFilter,
    *,
    limit: int | None = None,
    page: int = PAGE,
) -> Iterator[list[PendingEntry]]:
    """Pending entries matching `flt`, in id order, a page at a time (at most `limit`).

    Pages continue after the last id seen (`(ID`), so entries claimed or acknowledged while the
    caller works on a page do not shift the next one. The next page is asked for as soon as a
    page arrives (one page in flight on a connection of its own), so the server reads it while
    the caller works on this one; memory holds two pages at most. The caller checks the group
    exists."""
    if limit is not None and limit <= 0:
        return
    from streamctl.core.wire import PipelinedSender, pack

    def request(start: str) -> bytes:
        args: list[Any] = ["XPENDING", stream, group]
        if flt.min_idle_ms:
            args += ["IDLE", flt.min_idle_ms]
        args += [start, flt.end, page]
        if flt.consumer is not None:
            args.append(flt.consumer)
        return pack(args)

    sender = PipelinedSender(client, stream, redis_errors=True)
    remaining = limit
    try:
        sender.send([request(flt.start)])
        while True:
            replies: list[Any] = []
            sender.receive(replies)
            reply = replies[0]
            if isinstance(reply, ResponseError):
                raise _missing_group(reply, stream, group)
            if isinstance(reply, Exception):
                raise reply
            if not reply:
                return
            last_raw = reply[-1][0]
            last = StreamId.parse(last_raw)
            done = len(reply) < page or last == MAX_ID
            if not done and (remaining is None or remaining > len(reply)):
                sender.send([request("(" + text(last_raw))])  # read while this page is used
            selected = [e for e in map(_entry, reply) if e.deliveries >= flt.min_deliveries]
            if remaining is not None:
                selected = selected[:remaining]
                remaining -= len(selected)
            if selected:
                yield selected
            if done or remaining == 0:
                return
            if not sender.inflight:
                sender.send([request("(" + text(last_raw))])
    finally:
        sender.close()


def _existing(client: Client, stream: str, ids: list[str]) -> set[str]:
    """Which of `ids` are still in the stream (one pipelined round trip)."""
    replies = raw_pipeline(client, [("XRANGE", stream, i, i, "COUNT", 1) for i in ids])
    return {i for i, reply in zip(ids, replies, strict=True) if isinstance(reply, list) and reply}


# ---- claim ----


def _xautoclaim(
    client: Client, stream: str, group: str, to: str, min_idle_ms: int, cursor: str, count: int
) -> tuple[str, list[str], list[str]]:
    # JUSTID through a raw command: redis-py's xautoclaim(justid=True) drops the cursor and the
    # deleted ids (the reply's third element, Redis >= 7.0)
    try:
        reply = raw_command(
            client, "XAUTOCLAIM", stream, group, to, min_idle_ms, cursor, "COUNT", count, "JUSTID"
        )
    except ResponseError as exc:
        raise _missing_group(exc, stream, group) from None
    deleted = [text(i) for i in reply[2]] if len(reply) > 2 else []
    return text(reply[0]), [text(i) for i in reply[1]], deleted


def claim_idle(
    client: Client,
    stream: str,
    group: str,
    to: str,
    *,
    min_idle_ms: int = 0,
    start: str = "-",
    limit: int | None = None,
    batch: int = AUTOCLAIM_COUNT,
    should_stop: Callable[[], bool] = lambda: False,
) -> ClaimResult:
    """Claim every entry idle at least `min_idle_ms` (from `start` on) for `to`: an XAUTOCLAIM
    cursor loop until the cursor comes back as 0-0 (or `limit` entries are claimed)."""
    require_stream_group(client, stream, group)
    result = ClaimResult(stream, group, to, "xautoclaim", dry_run=False)
    cursor = "0-0" if start == "-" else start
    remaining = limit
    while remaining is None or remaining > 0:
        count = batch if remaining is None else min(batch, remaining)
        cursor, claimed, deleted = _xautoclaim(
            client, stream, group, to, min_idle_ms, cursor, count
        )
        result.claimed.extend(claimed)
        result.deleted.extend(deleted)
        if remaining is not None:
            remaining -= len(claimed)
        if cursor == "0-0" or should_stop():
            break
    return result


def _claim_page(
    client: Client, stream: str, group: str, to: str, ids: list[str], min_idle_ms: int
) -> tuple[list[str], list[str], list[str]]:
    """XCLAIM pending `ids` (JUSTID): (claimed, deleted while pending, skipped)."""
    try:
        reply = raw_command(client, "XCLAIM", stream, group, to, min_idle_ms, *ids, "JUSTID")
    except ResponseError as exc:
        raise _missing_group(exc, stream, group) from None
    claimed_set = {text(i) for i in reply}
    rest = [i for i in ids if i not in claimed_set]
    # XCLAIM drops an entry deleted while pending from the PEL without saying so: find them
    exists = _existing(client, stream, rest) if rest else set()
    claimed = [i for i in ids if i in claimed_set]
    deleted = [i for i in rest if i not in exists]
    skipped = [i for i in rest if i in exists]
    return claimed, deleted, skipped


def claim_selected(
    client: Client,
    stream: str,
    group: str,
    to: str,
    flt: PendingFilter,
    *,
    limit: int | None = None,
    page: int = PAGE,
    should_stop: Callable[[], bool] = lambda: False,
) -> ClaimResult:
    """Claim what a PEL scan selects (consumer, deliveries or end filters that XAUTOCLAIM cannot
    apply): XPENDING pages, each claimed with XCLAIM (which re-checks the idle time)."""
    require_stream_group(client, stream, group)
    result = ClaimResult(stream, group, to, "xclaim", dry_run=False)
    for entries in iter_pending(client, stream, group, flt, limit=limit, page=page):
        claimed, deleted, skipped = _claim_page(
            client, stream, group, to, [e.id for e in entries], flt.min_idle_ms
        )
        result.claimed.extend(claimed)
        result.deleted.extend(deleted)
        result.skipped.extend(skipped)
        if should_stop():
            break
    return result


def normalize_ids(ids: Iterable[str]) -> list[str]:
    """Full ids ('5' is 5-0), in the order given, without repeats; BadInput for a bad one."""
    seen: dict[str, None] = {}
    for given in ids:
        seen.setdefault(str(StreamId.parse(given.strip())), None)
    return list(seen)


def _pending_of(client: Client, stream: str, group: str, ids: list[str]) -> dict[str, PendingEntry]:
    replies = raw_pipeline(client, [("XPENDING", stream, group, i, i, 1) for i in ids])
    out: dict[str, PendingEntry] = {}
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise _missing_group(reply, stream, group)
        if reply:
            e = _entry(reply[0])
            out[e.id] = e
    return out


def claim_ids(
    client: Client,
    stream: str,
    group: str,
    to: str,
    ids: list[str],
    *,
    min_idle_ms: int = 0,
    dry_run: bool = False,
) -> ClaimResult:
    """XCLAIM explicit ids; reports those that were not pending and those deleted meanwhile."""
    require_stream_group(client, stream, group)
    result = ClaimResult(stream, group, to, "xclaim", dry_run=dry_run)
    for i in range(0, len(ids), PAGE):
        chunk = ids[i : i + PAGE]
        pending = _pending_of(client, stream, group, chunk)
        result.not_pending.extend(x for x in chunk if x not in pending)
        selected = [x for x in chunk if x in pending]
        if not selected:
            continue
        if dry_run:
            exists = _existing(client, stream, selected)
            for x in selected:
                if x not in exists:
                    result.deleted.append(x)
                elif pending[x].idle_ms >= min_idle_ms:
                    result.claimed.append(x)
                else:
                    result.skipped.append(x)
            continue
        claimed, deleted, skipped = _claim_page(client, stream, group, to, selected, min_idle_ms)
        result.claimed.extend(claimed)
        result.deleted.extend(deleted)
        result.skipped.extend(skipped)
    return result


def plan_claim(
    client: Client,
    stream: str,
    group: str,
    to: str,
    flt: PendingFilter,
    *,
    limit: int | None = None,
    page: int = PAGE,
) -> ClaimResult:
    """What a claim with these filters would do (a dry run: nothing changes)."""
    require_stream_group(client, stream, group)
    method = "xclaim" if flt.needs_pel_scan else "xautoclaim"
    result = ClaimResult(stream, group, to, method, dry_run=True)
    for entries in iter_pending(client, stream, group, flt, limit=limit, page=page):
        ids = [e.id for e in entries]
        exists = _existing(client, stream, ids)
        result.claimed.extend(i for i in ids if i in exists)
        result.deleted.extend(i for i in ids if i not in exists)
    return result


def claim_consumer_entries(
    client: Client, stream: str, group: str, consumer: str, to: str
) -> tuple[list[str], list[str]]:
    """Hand every pending entry of `consumer` to `to`: (claimed ids, ids deleted meanwhile)."""
    result = claim_selected(client, stream, group, to, PendingFilter(consumer=consumer))
    return result.claimed, result.deleted


# ---- dead letter ----


def _eligible_entries_script(keys: str, none: str, copy: str) -> str:
    """A Lua script that re-checks each id of ARGV[5:] is pending (of ARGV[4]'s consumer when
    given) with at least ARGV[2] deliveries and ARGV[3] ms idle, acks an entry deleted while
    pending, and runs `copy` (Lua, with id, owner, deliveries, e) for the others. Shared by the
    one-step (same slot) and the select step (cross slot) of dead-lettering."""
    return f"""
{keys}
local group, max_deliveries, min_idle, consumer = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local out = {{}}
for i = 5, #ARGV do
  local id = ARGV[i]
  local p
  if consumer ~= '' then
    p = redis.call('XPENDING', src, group, 'IDLE', min_idle, id, id, 1, consumer)
  else
    p = redis.call('XPENDING', src, group, 'IDLE', min_idle, id, id, 1)
  end
  if #p == 0 or p[1][4] < max_deliveries then
    out[#out + 1] = {{id, 'skipped', '', 0, {none}}}
  else
    local owner, deliveries = p[1][2], p[1][4]
    local e = redis.call('XRANGE', src, id, id)
    if #e == 0 then
      redis.call('XACK', src, group, id)
      out[#out + 1] = {{id, 'deleted', owner, deliveries, {none}}}
    else
{copy}
    end
  end
end
return out
"""


# Same slot (a single server, or a cluster where the source and the DLQ share a hash tag): one
# step per batch: re-check each entry is still pending and eligible, copy it with the dlq_*
# fields, acknowledge it. A script runs atomically, so an entry is either copied and acked or
# untouched: a crash cannot lose it or copy it twice, and a rerun finds nothing left to move.
# XADD comes before XACK: if XADD fails (e.g. the DLQ is not a stream) nothing is acked.
_DEAD_LETTER_SCRIPT = _eligible_entries_script(
    "local src, dlq = KEYS[1], KEYS[2]",
    "''",
    """      local args = {dlq, '*'}
      for _, v in ipairs(e[1][2]) do args[#args + 1] = v end
      for _, v in ipairs({'dlq_stream', src, 'dlq_group', group, 'dlq_id', id,
                          'dlq_consumer', owner, 'dlq_deliveries', tostring(deliveries)}) do
        args[#args + 1] = v
      end
      local new_id = redis.call('XADD', unpack(args))
      redis.call('XACK', src, group, id)
      out[#out + 1] = {id, 'moved', owner, deliveries, new_id}""",
)


# Different slots (a cluster; no script may touch both keys): three steps per batch, each one
# atomic on its own node, with an idempotency mark in a hash in the DLQ's slot
# (`streamctl-dlq-marks:{tag}`, see connection.same_slot_key; field: [dlq, stream, group, id]):
#   1. select (source's slot, _DLQ_SELECT_SCRIPT): re-check each entry is pending and eligible;
#      one deleted while pending is acknowledged here (nothing to copy); the others are read.
#   2. copy (DLQ's slot, copy_with_marks): for each entry, when its mark names an entry still
#      in the DLQ, an earlier run copied it and nothing is written; otherwise XADD the copy and
#      set the mark to its new id, both in one step.
#   3. ack (source's slot): XACK the copied ids; then their marks are removed (HDEL).
# An interruption after 1 changed nothing but deleted entries' acks. After 2 the entries are in
# the DLQ, marked, and still pending: the rerun selects them again, finds their marks, does not
# copy them again, and acknowledges them. After 3 the entries are no longer pending: no rerun
# selects them; a mark left behind (no HDEL yet) is removed by the next run that moves that id,
# and until then stops a second copy of the same id while its first copy is in the DLQ.
# Nothing is acknowledged before its copy is in the DLQ, and no id is copied twice while its
# copy is there. Unlike the script, step 1 and step 3 are not one step: an entry acknowledged
# by its consumer in between is still copied (it was eligible when selected).
_DLQ_SELECT_SCRIPT = _eligible_entries_script(
    "local src = KEYS[1]",
    "{}",
    "      out[#out + 1] = {id, 'copy', owner, deliveries, e[1][2]}",
)

# The copy step of a cross-slot move (dead-letter, redrive): KEYS target stream, marks hash;
# ARGV per entry: mark field, n, then n field/value items. An entry whose mark names an entry
# still in the target was copied by an earlier run: nothing is written. Otherwise XADD and set
# the mark, in one step. Replies per entry {target id, 1 when copied now / 0 when earlier}.
MARKED_COPY_SCRIPT = """
local target, marks = KEYS[1], KEYS[2]
local out = {}
local i = 1
while i <= #ARGV do
  local mark, n = ARGV[i], tonumber(ARGV[i + 1])
  local done = redis.call('HGET', marks, mark)
  if done and #redis.call('XRANGE', target, done, done) > 0 then
    out[#out + 1] = {done, 0}
  else
    local args = {target, '*'}
    for k = i + 2, i + 1 + n do args[#args + 1] = ARGV[k] end
    local new_id = redis.call('XADD', unpack(args))
    redis.call('HSET', marks, mark, new_id)
    out[#out + 1] = {new_id, 1}
  end
  i = i + 2 + n
end
return out
"""

DLQ_MARKS = "streamctl-dlq-marks"


def dlq_marks_key(dlq: str) -> str:
    """The hash of idempotency marks of a cross-slot dead-letter move (in the DLQ's slot)."""
    return same_slot_key(dlq, DLQ_MARKS)


def copy_with_marks(
    client: Client, target: str, items: list[tuple[str, list[Any]]]
) -> list[tuple[str, bool]]:
    """The copy step of a cross-slot move (MARKED_COPY_SCRIPT, on the target's node): `items`
    are (mark field, flat fields) in order; returns per item (its id in `target`, True when
    copied now, False when an earlier run's copy is still there). The marks live in
    `dlq_marks_key(target)`; remove them with `clear_marks` once the source side is done."""
    argv: list[Any] = []
    for mark, flat in items:
        argv += [mark, len(flat), *flat]
    reply = eval_script(client, MARKED_COPY_SCRIPT, [target, dlq_marks_key(target)], argv)
    return [(text(new_id), bool(int(fresh))) for new_id, fresh in reply]


def clear_marks(client: Client, target: str, marks: list[str]) -> None:
    """Remove marks of `copy_with_marks` (HDEL) once their entries' source step is done."""
    if marks:
        raw_command(client, "HDEL", dlq_marks_key(target), *marks)


def _mark_field(dlq: str, stream: str, group: str, entry_id: str) -> str:
    return json.dumps([dlq, stream, group, entry_id], ensure_ascii=False)


def dead_letter(
    client: Client,
    stream: str,
    group: str,
    dlq: str,
    max_deliveries: int,
    flt: PendingFilter | None = None,
    *,
    limit: int | None = None,
    dry_run: bool = False,
    page: int = SCRIPT_BATCH,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeadLetterResult:
    """Move entries delivered `max_deliveries` times or more into `dlq` and acknowledge them,
    each in one atomic step. Entries deleted while pending are acknowledged, not copied."""
    if max_deliveries < 1:
        raise BadInput(f"bad --max-deliveries {max_deliveries}: give a count of 1 or more")
    if dlq == stream:
        raise BadInput("the dead-letter stream must not be the stream itself")
    flt = flt or PendingFilter()
    require_stream_group(client, stream, group)
    kind = key_type(client, dlq)
    if kind not in ("none", "stream"):
        raise ServerRefused(f"WRONGTYPE: dead-letter key {dlq!r} holds a {kind}, not a stream")
    selecting = PendingFilter(
        consumer=flt.consumer,
        min_idle_ms=flt.min_idle_ms,
        min_deliveries=max(max_deliveries, flt.min_deliveries),
        start=flt.start,
        end=flt.end,
    )
    result = DeadLetterResult(stream, group, dlq, max_deliveries, dry_run)
    if not dry_run and not same_slot(client, stream, dlq):
        _dead_letter_cross_slot(
            client, stream, group, dlq, selecting, flt.consumer, result, limit, page, should_stop
        )
        return result
    # a script runs on the node owning its keys (one node: they share a slot)
    for entries in iter_pending(client, stream, group, selecting, limit=limit, page=page):
        if dry_run:
            exists = _existing(client, stream, [e.id for e in entries])
            for e in entries:
                item = DeadLetter(e.id, e.consumer, e.deliveries)
                (result.moved if e.id in exists else result.deleted).append(item)
            continue
        argv: list[str | int] = [group, selecting.min_deliveries, selecting.min_idle_ms]
        argv.append(flt.consumer or "")
        try:
            reply = eval_script(
                client, _DEAD_LETTER_SCRIPT, [stream, dlq], argv + [e.id for e in entries]
            )
        except ResponseError as exc:
            done = len(result.moved) + len(result.deleted)
            raise PartialFailure(
                f"the server refused the dead-letter step: {exc}; "
                f"{count_noun(done, 'entry was', 'entries were', grouped=False)} handled before it "
                "(each entry is moved and acknowledged together, or not at all)",
                done=done,
                exit_code=ServerRefused.exit_code,
            ) from None
        for eid, status, owner, deliveries, new_id in reply:
            sid, state = text(eid), text(status)
            if state == "moved":
                result.moved.append(DeadLetter(sid, text(owner), int(deliveries), text(new_id)))
            elif state == "deleted":
                result.deleted.append(DeadLetter(sid, text(owner), int(deliveries)))
            else:
                result.skipped.append(sid)
        if should_stop():
            break
    return result


def _dead_letter_cross_slot(
    client: Client,
    stream: str,
    group: str,
    dlq: str,
    selecting: PendingFilter,
    consumer: str | None,
    result: DeadLetterResult,
    limit: int | None,
    page: int,
    should_stop: Callable[[], bool],
) -> None:
    """The three-step move (select, copy with a mark, ack) described above."""
    argv: list[Any] = [group, selecting.min_deliveries, selecting.min_idle_ms, consumer or ""]

    def refused(step: str, exc: ResponseError) -> PartialFailure:
        done = len(result.moved) + len(result.deleted)
        return PartialFailure(
            f"the server refused the dead-letter {step}: {exc}; "
            f"{count_noun(done, 'entry was', 'entries were', grouped=False)} handled before it "
            "(an entry copied but not yet acknowledged is pending and marked: a rerun "
            "acknowledges it without copying it again)",
            done=done,
            exit_code=ServerRefused.exit_code,
        )

    for entries in iter_pending(client, stream, group, selecting, limit=limit, page=page):
        try:
            selected = eval_script(
                client, _DLQ_SELECT_SCRIPT, [stream], argv + [e.id for e in entries]
            )
        except ResponseError as exc:
            raise refused("step (select)", exc) from None
        to_copy: list[tuple[str, str, int]] = []
        items: list[tuple[str, list[Any]]] = []
        for eid, status, owner, deliveries, flat in selected:
            sid, state = text(eid), text(status)
            if state == "deleted":
                result.deleted.append(DeadLetter(sid, text(owner), int(deliveries)))
            elif state == "skipped":
                result.skipped.append(sid)
            else:
                to_copy.append((sid, text(owner), int(deliveries)))
                dlq_fields = [
                    *("dlq_stream", stream, "dlq_group", group, "dlq_id", sid),
                    *("dlq_consumer", owner, "dlq_deliveries", str(int(deliveries))),
                ]
                items.append((_mark_field(dlq, stream, group, sid), [*flat, *dlq_fields]))
        if to_copy:
            try:
                copied = copy_with_marks(client, dlq, items)
            except ResponseError as exc:
                raise refused("copy", exc) from None
            new_ids = {
                sid: new_id for (sid, _, _), (new_id, _) in zip(to_copy, copied, strict=True)
            }
            ids = [sid for sid, _, _ in to_copy]
            try:
                raw_command(client, "XACK", stream, group, *ids)
            except ResponseError as exc:
                raise refused("acknowledgement", exc) from None
            clear_marks(client, dlq, [_mark_field(dlq, stream, group, i) for i in ids])
            for sid, owner, deliveries in to_copy:
                result.moved.append(DeadLetter(sid, owner, deliveries, new_ids[sid]))
        if should_stop():
            break


# ---- ack ----


def parse_id_line(line: str, lineno: int) -> str | None:
    """An id from one line of `ack --stdin`: a bare id, or a JSON object with an "id" (the
    ndjson of `pending` or `range`). Blank lines and #-comments give None."""
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except ValueError as exc:
            raise BadInput(f"line {lineno}: malformed JSON: {exc}") from None
        value = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(value, str):
            raise BadInput(f'line {lineno}: a JSON line needs an "id" string')
        stripped = value
    try:
        return str(StreamId.parse(stripped))
    except BadInput as exc:
        raise BadInput(f"line {lineno}: {exc}") from None


def read_id_lines(lines: Iterable[str]) -> Iterator[str]:
    for n, line in enumerate(lines, 1):
        parsed = parse_id_line(line, n)
        if parsed is not None:
            yield parsed


def ack_ids(
    client: Client, stream: str, group: str, ids: Iterable[str], *, batch: int = ACK_BATCH
) -> AckResult:
    """XACK ids in batches. The group is checked first: XACK answers 0 for a missing group.

    A bad id in `ids` (BadInput from the reader) first acks every id before it, then raises
    PartialFailure with the count."""
    require_stream_group(client, stream, group)
    requested = acked = 0
    chunk: list[str] = []

    def flush() -> None:
        nonlocal requested, acked, chunk
        if not chunk:
            return
        try:
            n = raw_command(client, "XACK", stream, group, *chunk)
        except ResponseError as exc:
            raise _missing_group(exc, stream, group) from None
        requested += len(chunk)
        acked += int(n)
        chunk = []

    try:
        for i in ids:
            chunk.append(i)
            if len(chunk) >= batch:
                flush()
    except BadInput as exc:
        flush()
        raise PartialFailure(
            f"{exc}; acknowledged {acked} of the "
            f"{count_noun(requested, 'id', 'ids', grouped=False)} before it",
            done=acked,
            exit_code=exc.exit_code,
        ) from None
    flush()
    return AckResult(stream, group, requested, acked)
