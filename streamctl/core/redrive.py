"""redrive: the way back from a dead-letter stream.

Each DLQ entry goes back into the stream it came from (its `dlq_stream` field, or `into`),
without the dlq_* fields and with `redriven_from=<DLQ id>`, and is deleted from the DLQ:
- where the DLQ and the target share a slot (always on a single server), both in one script
  (REDRIVE_SCRIPT: XADD then XDEL, per entry): an entry is either moved or untouched, so a rerun
  after an interruption (Ctrl-C, SIGTERM, a killed server) never publishes one twice;
- across slots (a cluster), by the idempotency marks of `pending --dead-letter`
  (pending.copy_with_marks, in the target's slot): copy with a mark, XDEL from the DLQ, remove
  the mark. A run stopped after the copy leaves the entry in the DLQ and its mark naming the copy:
  the rerun finds the mark, publishes nothing, and deletes the entry from the DLQ.
`keep` copies and leaves the DLQ as it is (a rerun copies again). An entry without a usable
`dlq_stream` (missing, not text, the DLQ itself, a key that is not a stream) is reported and
left in place. The range is pinned at the DLQ's last id when the run starts; memory is bounded
by the batch size.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from redis.exceptions import ResponseError

from streamctl.core.connection import Client, same_slot
from streamctl.core.filters import EntryFilter
from streamctl.core.models import EntryBatch, RawEntry
from streamctl.core.models_repairs import RedriveResult, Unusable
from streamctl.core.pending import clear_marks, copy_with_marks
from streamctl.core.replay import Throttle, chunk_size_for
from streamctl.core.streams import pin_end, read_range, resolve_range
from streamctl.core.trim import snapshot
from streamctl.core.wire import eval_script, key_type, never, raw_command, require_stream, text
from streamctl.errors import BadInput, PartialFailure, ServerRefused, StreamctlError
from streamctl.ids import StreamId
from streamctl.wording import count_noun

BATCH = 500
UNUSABLE_KEPT = 1000  # unusable entries listed in the result (all are counted)

# dead-letter fields, and the mark of an earlier redrive: not published again
DROPPED_FIELDS = (
    b"dlq_stream",
    b"dlq_group",
    b"dlq_id",
    b"dlq_consumer",
    b"dlq_deliveries",
    b"redriven_from",
)

# KEYS: the DLQ, then the targets; ARGV: keep ('' or 'keep'), then per entry: DLQ id, the index
# of its target in KEYS. Per entry {id, new id}, or {id, ''} when it is no longer in the DLQ.
# XADD comes before XDEL: if XADD fails nothing is deleted, and a script's effects before an
# error stay whole entries (each XADD with its XDEL).
REDRIVE_SCRIPT = """
local dlq, keep = KEYS[1], ARGV[1]
local dropped = {DROPPED}
local out = {}
for i = 2, #ARGV, 2 do
  local id, target = ARGV[i], KEYS[tonumber(ARGV[i + 1])]
  local e = redis.call('XRANGE', dlq, id, id)
  if #e == 0 then
    out[#out + 1] = {id, ''}
  else
    local args = {target, '*'}
    local flat = e[1][2]
    for k = 1, #flat, 2 do
      if not dropped[flat[k]] then
        args[#args + 1] = flat[k]
        args[#args + 1] = flat[k + 1]
      end
    end
    args[#args + 1] = 'redriven_from'
    args[#args + 1] = id
    local new_id = redis.call('XADD', unpack(args))
    if keep == '' then redis.call('XDEL', dlq, id) end
    out[#out + 1] = {id, new_id}
  end
end
return out
""".replace("DROPPED", ", ".join(f"{name.decode()} = true" for name in DROPPED_FIELDS))


def redrive_fields(flat: list[bytes], dlq_id: bytes) -> list[bytes]:
    """The fields published again: without the dlq_* fields, with redriven_from=<DLQ id>."""
    out: list[bytes] = []
    for k in range(0, len(flat) - 1, 2):
        if flat[k] not in DROPPED_FIELDS:
            out += [flat[k], flat[k + 1]]
    return [*out, b"redriven_from", dlq_id]


def mark_field(dlq: str, dlq_id: str, target: str) -> str:
    """The idempotency mark of one cross-slot redrive (in the target's marks hash)."""
    return json.dumps(["redrive", dlq, dlq_id, target], ensure_ascii=False)


class _Targets:
    """Where each entry goes, and whether that key can take it (its type asked once)."""

    def __init__(self, client: Client, dlq: str, into: str | None) -> None:
        self.client, self.dlq, self.into = client, dlq, into
        self._kinds: dict[str, str] = {}

    def of(self, flat: list[bytes]) -> tuple[str | None, str]:
        """(target, '') or (None, why it cannot go back)."""
        if self.into is not None:
            return self.into, ""
        raw = None
        for k in range(0, len(flat) - 1, 2):
            if flat[k] == b"dlq_stream":
                raw = flat[k + 1]
        if raw is None:
            return None, "no dlq_stream field"
        if not raw:
            return None, "dlq_stream is empty"
        try:
            target = raw.decode()
        except UnicodeDecodeError:
            return None, "dlq_stream is not UTF-8 text"
        if target == self.dlq:
            return None, "dlq_stream names the dead-letter stream itself"
        kind = self._kinds.get(target)
        if kind is None:
            kind = self._kinds[target] = key_type(self.client, target)
        if kind not in ("none", "stream"):
            return None, f"dlq_stream {target!r} holds a {kind}, not a stream"
        return target, ""


def redrive(
    client: Client,
    dlq: str,
    *,
    into: str | None = None,
    start: str = "-",
    end: str = "+",
    entry_filter: EntryFilter | None = None,
    count: int | None = None,
    rate: float | None = None,
    keep: bool = False,
    dry_run: bool = False,
    should_stop: Callable[[], bool] = never,
    on_progress: Callable[[int, int], None] = lambda redriven, scanned: None,
    batch_size: int = BATCH,
) -> RedriveResult:
    """Move the DLQ's entries (those from `start` to `end` passing `entry_filter`, at most
    `count`, at most `rate` per second) back into their streams (see the module's doc). A stop
    (`should_stop`) finishes the batch in flight (result.stopped); a failure raises
    PartialFailure with how many were redriven (each entry moved whole, or not at all)."""
    if count is not None and count < 1:
        raise BadInput(f"bad count {count}: give a count of 1 or more")
    if rate is not None and rate <= 0:
        raise BadInput(f"bad rate {rate}: give entries per second above 0")
    if into is not None and into == dlq:
        raise BadInput("into names the dead-letter stream itself: give the stream to publish to")
    require_stream(client, dlq)
    if into is not None:
        kind = key_type(client, into)
        if kind not in ("none", "stream"):
            raise ServerRefused(f"WRONGTYPE: key {into!r} holds a {kind}, not a stream")
    lo, hi = resolve_range(client, start, end)
    pinned = pin_end(hi, snapshot(client, dlq).last_id)
    result = RedriveResult(dlq=dlq, into=into, dry_run=dry_run, keep=keep)
    started = time.perf_counter()
    if pinned is None or (lo not in ("-", "+") and StreamId.parse(lo) > StreamId.parse(pinned)):
        return result
    mover = _Mover(client, dlq, _Targets(client, dlq, into), result, keep=keep, dry_run=dry_run)
    throttle = Throttle(None if dry_run else rate, should_stop)
    size = chunk_size_for(batch_size, None if dry_run else rate)
    batches = read_range(
        client, dlq, lo, pinned, batch_size=batch_size, check_exists=False, filter=entry_filter
    )
    try:
        for chunk in _chunks(batches, size):
            if count is not None and result.redriven >= count:
                break
            if not throttle.wait(result.redriven + len(chunk)):
                result.stopped = True
                break
            left = None if count is None else count - result.redriven
            mover.move(chunk, left)
            on_progress(result.redriven, result.scanned)
    except StreamctlError as exc:
        raise _partial(exc.message, exc.exit_code, result) from None
    except Exception as exc:
        from streamctl.core.connection import translate_error

        mapped = translate_error(exc, client=client)
        if mapped is None:
            raise
        raise _partial(mapped.message, mapped.exit_code, result) from None
    finally:
        result.seconds = time.perf_counter() - started
    return result


def _partial(message: str, exit_code: Any, result: RedriveResult) -> PartialFailure:
    last = f" (last DLQ id handled {result.last_id})" if result.last_id else ""
    return PartialFailure(
        f"{message}; {count_noun(result.redriven, 'entry was', 'entries were')} redriven before "
        f"it{last}; each entry moves whole or not at all: rerun to continue",
        done=result.redriven,
        exit_code=exit_code,
    )


def _chunks(batches: Iterator[EntryBatch], size: int) -> Iterator[list[RawEntry]]:
    for batch in batches:
        entries = batch.entries
        for i in range(0, len(entries), size):
            yield entries[i : i + size]


class _Mover:
    def __init__(
        self,
        client: Client,
        dlq: str,
        targets: _Targets,
        result: RedriveResult,
        *,
        keep: bool,
        dry_run: bool,
    ) -> None:
        self.client, self.dlq, self.targets, self.result = client, dlq, targets, result
        self.keep, self.dry_run = keep, dry_run

    def move(self, chunk: list[RawEntry], left: int | None) -> None:
        """One chunk: unusable entries reported, the others moved (at most `left`)."""
        result = self.result
        local: list[tuple[str, str]] = []  # (DLQ id, target): one script with the DLQ
        remote: dict[str, list[tuple[str, list[bytes]]]] = {}  # target -> (DLQ id, fields)
        handled = 0
        for eid, flat in chunk:
            if left is not None and len(local) + sum(map(len, remote.values())) >= left:
                break
            handled += 1
            sid = text(eid)
            target, why = self.targets.of(flat)
            if target is None:
                if len(result.unusable) < UNUSABLE_KEPT:
                    result.unusable.append(Unusable(sid, why))
                result.unusable_count += 1
            elif self.dry_run:
                self._count(target, None)
            elif same_slot(self.client, self.dlq, target):
                local.append((sid, target))
            else:
                remote.setdefault(target, []).append((sid, redrive_fields(flat, eid)))
        if local:
            self._move_local(local)
        for target, items in remote.items():
            self._move_remote(target, items)
        result.scanned += handled
        if handled:
            last = text(chunk[handled - 1][0])
            result.first_id = result.first_id or text(chunk[0][0])
            result.last_id = last

    def _count(self, target: str, new_id: str | None) -> None:
        self.result.redriven += 1
        self.result.per_stream[target] = self.result.per_stream.get(target, 0) + 1
        if new_id is not None:
            self.result.last_new_id = new_id

    def _move_local(self, items: list[tuple[str, str]]) -> None:
        keys = [self.dlq, *dict.fromkeys(t for _, t in items)]
        index = {k: i + 1 for i, k in enumerate(keys)}
        argv: list[Any] = ["keep" if self.keep else ""]
        for sid, target in items:
            argv += [sid, index[target]]
        try:
            reply = eval_script(self.client, REDRIVE_SCRIPT, keys, argv)
        except ResponseError as exc:
            raise ServerRefused(f"the server refused the redrive step: {exc}") from None
        for (_, target), (_, new_id) in zip(items, reply, strict=True):
            if new_id:
                self._count(target, text(new_id))
            else:
                self.result.gone += 1

    def _move_remote(self, target: str, items: list[tuple[str, list[bytes]]]) -> None:
        marks = [mark_field(self.dlq, sid, target) for sid, _ in items]
        try:
            copied = copy_with_marks(
                self.client,
                target,
                [(m, fields) for m, (_, fields) in zip(marks, items, strict=True)],
            )
        except ResponseError as exc:
            raise ServerRefused(f"the server refused the redrive copy: {exc}") from None
        if not self.keep:
            raw_command(self.client, "XDEL", self.dlq, *[sid for sid, _ in items])
        clear_marks(self.client, target, marks)
        for new_id, _ in copied:
            self._count(target, new_id)
