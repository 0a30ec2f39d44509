"""Bulk publishing through a failover (Sentinel, or a cluster's replica promotion): at least
once, in order, never a gap.

Replication is asynchronous: the old primary may have acknowledged events the new primary never
received. After a lost connection (or a READONLY reply: the primary was demoted), the run waits
for a primary (the Sentinels are asked at each connect), finds the first of the ids the old
primary returned that the new primary lacks (replication keeps order, so what the new primary
holds is a prefix: a binary search), and publishes again from that event. The packed commands of
the latest events are kept for it (RETAINED_BYTES); an event lost further back than that ends
the run with the --skip rerun hint.
On a cluster, the MOVED reply naming the promoted replica is such a loss (while a Resend is
open: connection.promotions_as_lost), and the primary waited for is the one holding the stream.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamctl.core import resp
from streamctl.core.connection import (
    Client,
    is_cluster,
    key_primary,
    promotions_as_lost,
    sentinel_of,
)
from streamctl.core.wire import PipelinedSender, raw_command
from streamctl.errors import ExitCode, PartialFailure

if TYPE_CHECKING:
    from streamctl.core.durability import Durability

# The packed events kept to publish again: the failover window at full speed is many events
# (a 0.6 s window lost 130,000 small events in a test), so the bound is in bytes.
RETAINED_BYTES = 256 * 1024 * 1024
# A unit kept with a tag (import and replay: one entry each) costs about this much beside its
# packed bytes (the tuple, the tag's objects); counted in the bound.
TAGGED_UNIT_BYTES = 200
PRIMARY_WAIT_S = 60.0
MAX_FAILOVERS = 10
LOST = (RedisConnectionError, RedisTimeoutError)


class Resend:
    """The ids acknowledged so far (in order) and the packed XADDs of the latest events, each
    unit with the caller's tag (what `import` and `replay` need to count it again)."""

    def __init__(self) -> None:
        self.ids: list[bytes] = []
        # (packed XADDs, events, tag) in order
        self.units: deque[tuple[bytes, int, Any]] = deque()
        self.first = 0  # the event index (in this run) of units[0]'s first event
        self.before: Any = None  # the tag of the unit before units[0]
        self.kept = 0  # bytes of the units kept
        self.failovers = 0
        self.held_tag: Any = None  # after `recover`: the tag of the last event the primary holds
        self._replay: list[tuple[bytes, int, Any]] = []
        self._watching: contextlib.ExitStack | None = None

    @staticmethod
    def wanted(client: Client) -> Resend | None:
        """A Resend for a client reached through Sentinel or a cluster; None otherwise (nothing
        kept). On a cluster a replica's promotion is then a lost connection until `close()`."""
        if sentinel_of(client) is not None:
            return Resend()
        if not is_cluster(client):
            return None
        resend = Resend()
        resend._watching = contextlib.ExitStack()
        resend._watching.enter_context(promotions_as_lost(client))
        return resend

    def keeping(self, on_ids: Callable[[list[bytes]], None]) -> Callable[[list[bytes]], None]:
        """`on_ids`, the ids kept here first."""
        kept = self.ids

        def on_ids_kept(new_ids: list[bytes]) -> None:
            kept.extend(new_ids)
            on_ids(new_ids)

        return on_ids_kept

    def close(self) -> None:
        if self._watching is not None:
            self._watching.close()
            self._watching = None

    def pulled(self, packed: bytes, count: int, tag: Any = None) -> None:
        """A unit taken from the input (sent now or with the next batch)."""
        self.units.append((packed, count, tag))
        self.kept += len(packed) if tag is None else len(packed) + TAGGED_UNIT_BYTES
        acked = len(self.ids)
        while self.kept > RETAINED_BYTES and self.first + self.units[0][1] <= acked:
            dropped, events, self.before = self.units.popleft()
            self.first += events
            self.kept -= len(dropped) if self.before is None else len(dropped) + TAGGED_UNIT_BYTES

    def recover(
        self,
        client: Client,
        stream: str,
        skipped: int,
        exc: BaseException,
        too_old: Callable[[int], BaseException] | None = None,
    ) -> int:
        """After `exc` (a lost connection): wait for a primary, find the first event it lacks
        and return its index; `again()` then gives the units to publish from there. An event
        lost further back than the units kept raises `too_old(index)` (by default publish's
        PartialFailure with its --skip hint)."""
        self.failovers += 1
        if self.failovers > MAX_FAILOVERS:
            raise exc
        wait_for_primary(client, exc, stream)
        k = _first_missing(client, stream, self.ids)
        if k < self.first:
            if too_old is not None:
                raise too_old(k)
            raise PartialFailure(
                f"after a failover the primary lacks event {skipped + k + 1}, older than the "
                f"{RETAINED_BYTES >> 20} MiB of events kept to publish again: rerun with --skip "
                f"{skipped + k} to publish the rest",
                done=k,
                exit_code=ExitCode.CONNECTION,
            )
        self.held_tag = self.before
        self._replay = []
        start = self.first
        for packed, count, tag in self.units:
            end = start + count
            if end <= k:
                self.held_tag = tag
            elif start < k:
                self._replay.append((resp.drop(packed, k - start), end - k, tag))
            else:
                self._replay.append((packed, count, tag))
            start = end
        del self.ids[k:]
        self.units.clear()
        self.first = k
        self.before = self.held_tag
        self.kept = 0
        return k

    def again(self) -> Iterator[tuple[bytes, int]]:
        return ((packed, count) for packed, count, _tag in self._replay)

    def again_tagged(self) -> list[tuple[bytes, Any]]:
        """The units to send again (one event each: `import`, `replay`) with their tags."""
        return [(packed, tag) for packed, _count, tag in self._replay]

    def found(self, ids: list[bytes]) -> None:
        """Right after `recover`: the first len(ids) units to send again are on the primary
        after all (sent before the connection was lost, never acknowledged; `import
        --keep-ids` knows them by their ids): acknowledged with these ids, not sent again."""
        if not ids:
            return
        self.ids.extend(ids)
        self.first += len(ids)
        self.before = self.held_tag = self._replay[len(ids) - 1][2]
        self._replay = self._replay[len(ids) :]


def wait_for_primary(client: Client, exc: BaseException, stream: str | None = None) -> None:
    """Until the primary (of `stream`'s slot on a cluster) answers ROLE as a primary, for up to
    PRIMARY_WAIT_S; then `exc` (or the last failure) is raised."""
    deadline = time.monotonic() + PRIMARY_WAIT_S
    last: BaseException = exc
    while time.monotonic() < deadline:
        # idle connections may still be open to the demoted primary: dropped, each new one
        # asks the Sentinels where the primary is (a cluster: the slot map is read again)
        client.connection_pool.disconnect()
        try:
            node = client if stream is None else key_primary(client, stream)
            role = raw_command(node, "ROLE")
            if isinstance(role, list) and role and role[0] == b"master":
                return
        except (*LOST, RedisClusterException) as failed:  # no node answered the slot map
            last = failed
        time.sleep(0.2)
    raise last


def _present(client: Client, stream: str, entry_id: bytes) -> bool:
    return bool(raw_command(client, "XRANGE", stream, entry_id, entry_id, "COUNT", 1))


def _first_missing(client: Client, stream: str, ids: list[bytes]) -> int:
    """The index of the first id the primary lacks (len(ids) when it has them all)."""
    if not ids or _present(client, stream, ids[-1]):
        return len(ids)
    lo, hi = 0, len(ids) - 1  # ids[hi] is missing
    while lo < hi:
        mid = (lo + hi) // 2
        if _present(client, stream, ids[mid]):
            lo = mid + 1
        else:
            hi = mid
    return lo


class Recovered(Exception):
    """A failover was followed in the middle of a bulk run (`import`, `replay --into`): the new
    primary holds the first `held` entries of the run, the last of them tagged `held_tag`;
    `units` ((packed XADD, tag), from the first entry it lacks) are to be sent again."""

    def __init__(
        self, held: int, held_tag: Any, units: list[tuple[bytes, Any]], cause: BaseException
    ) -> None:
        super().__init__(f"followed a failover after: {cause}")
        self.held = held
        self.held_tag = held_tag
        self.units = units
        self.cause = cause


class BulkSender:
    """The writer of `import` and `replay --into`: each batch is one write on a PipelinedSender
    (its replies read before the next batch), followed by its WAIT/WAITAOF with `durability`
    (`confirm` checks the wait's reply, after the caller has counted the batch).

    Through Sentinel (`resend`), each entry is kept with its tag, and a lost connection (or a
    READONLY reply: the primary was demoted) raises Recovered once the new primary is there,
    naming what it holds and what to send again (`send_following` does it): every entry at
    least once, in order, never a gap, as `publish --file`. `too_old(held)` is the error when
    an entry was lost further back than the entries kept.
    """

    def __init__(
        self,
        client: Client,
        key: str,
        durability: Durability | None = None,
        *,
        resend: Resend | None = None,
        too_old: Callable[[int], BaseException] | None = None,
    ) -> None:
        self.sender = PipelinedSender(client, key)
        self.client = client
        self.key = key
        self.durability = durability
        self.resend = resend
        self.too_old = too_old
        self.waited: Any = None

    def exchange(self, packed: list[bytes], tags: Sequence[Any] = ()) -> list[Any]:
        """The replies of `packed` (error replies returned); `tags`, one per command, are what
        Recovered gives back for the entries to send again. Through Sentinel each item of
        `packed` is one command; otherwise an item may hold several (`tags` counts them)."""
        resend = self.resend
        if resend is None:
            return self._exchange(packed, len(tags) if tags else None)
        for command, tag in zip(packed, tags, strict=True):
            resend.pulled(command, 1, tag)
        try:
            replies = self._exchange(packed)
            self._acknowledged(resend, replies)
        except LOST as exc:
            self.sender.close(broken=True)
            self.waited = None
            held = resend.recover(self.client, self.key, 0, exc, self.too_old)
            raise Recovered(held, resend.held_tag, resend.again_tagged(), exc) from None
        return replies

    def _exchange(self, packed: list[bytes], count: int | None = None) -> list[Any]:
        if self.durability is None:
            return self.sender.exchange(packed, count)
        from streamctl.core.durability import exchange_waited

        replies, self.waited = exchange_waited(self.sender, packed, self.durability, count)
        return replies

    @staticmethod
    def _acknowledged(resend: Resend, replies: list[Any]) -> None:
        """Keep the ids of the entries acknowledged; a READONLY reply (the primary was demoted
        in a failover) is the connection lost, the entries after it not acknowledged."""
        ok = 0
        for reply in replies:
            if reply.__class__ is not bytes:
                break
            ok += 1
        resend.ids.extend(replies if ok == len(replies) else replies[:ok])
        if ok < len(replies) and str(replies[ok]).startswith("READONLY"):
            from streamctl.core.connection import mark_lost

            raise mark_lost(RedisConnectionError(f"the primary was demoted: {replies[ok]}"))

    def pipelined(self) -> bool:
        """Batches may be two in flight (`send`, then `receive` the older one): nothing to wait
        for after each, nothing kept to send again after a failover."""
        return self.resend is None and self.durability is None

    def send(self, packed: list[bytes], count: int) -> None:
        self.sender.send(packed, count)

    def receive(self) -> list[Any]:
        """The replies of the oldest batch sent (error replies returned)."""
        replies: list[Any] = []
        self.sender.receive(replies)
        return replies

    def confirm(self, what: str) -> None:
        """CheckFailed (exit 5) when the last batch's wait fell short; `what` was written."""
        if self.durability is not None and self.waited is not None:
            from streamctl.core.durability import require

            waited, self.waited = self.waited, None
            require(self.durability, waited, what)

    def refusal_text(self, reply: Exception, what: str) -> str:
        return self.sender.refusal_text(reply, what)

    def close(self, *, broken: bool = False) -> None:
        self.sender.close(broken=broken)
        if self.resend is not None:
            self.resend.close()  # a cluster's promotions are followed again


def send_following(
    send: Callable[[list[bytes], list[Any]], None],
    packed: list[bytes],
    tags: list[Any],
    recovered: Callable[[Recovered], list[tuple[bytes, Any]]],
    size: int,
) -> None:
    """`send(packed, tags)` a batch (it exchanges it on a BulkSender and counts it). After a
    failover, `recovered` rolls the caller's counts back to what the new primary holds and
    returns the units to send again (it may drop some it finds there), which are sent the same
    way, `size` entries a batch, before this call returns."""
    todo = [(packed, tags)]
    while todo:
        batch, batch_tags = todo.pop(0)
        try:
            send(batch, batch_tags)
        except Recovered as lost:
            units = recovered(lost)
            todo = [
                ([u[0] for u in units[i : i + size]], [u[1] for u in units[i : i + size]])
                for i in range(0, len(units), size)
            ]
