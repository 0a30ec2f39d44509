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
from collections.abc import Callable, Iterator

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamctl.core.connection import (
    Client,
    is_cluster,
    key_primary,
    promotions_as_lost,
    sentinel_of,
)
from streamctl.core.wire import raw_command
from streamctl.errors import ExitCode, PartialFailure

# The packed events kept to publish again: the failover window at full speed is many events
# (a 0.6 s window lost 130,000 small events in a test), so the bound is in bytes.
RETAINED_BYTES = 256 * 1024 * 1024
PRIMARY_WAIT_S = 60.0
MAX_FAILOVERS = 10
LOST = (RedisConnectionError, RedisTimeoutError)


class Resend:
    """The ids acknowledged so far (in order) and the packed XADDs of the latest events."""

    def __init__(self) -> None:
        self.ids: list[bytes] = []
        self.units: deque[tuple[bytes, int]] = deque()  # (packed XADDs, events) in order
        self.first = 0  # the event index (in this run) of units[0]'s first event
        self.kept = 0  # bytes of the units kept
        self.failovers = 0
        self._replay: list[tuple[bytes, int]] = []
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

    def pulled(self, packed: bytes, count: int) -> None:
        """A unit taken from the input (sent now or with the next batch)."""
        self.units.append((packed, count))
        self.kept += len(packed)
        acked = len(self.ids)
        while self.kept > RETAINED_BYTES and self.first + self.units[0][1] <= acked:
            dropped, events = self.units.popleft()
            self.first += events
            self.kept -= len(dropped)

    def recover(self, client: Client, stream: str, skipped: int, exc: BaseException) -> int:
        """After `exc` (a lost connection): wait for a primary, find the first event it lacks
        and return its index; `again()` then gives the units to publish from there."""
        self.failovers += 1
        if self.failovers > MAX_FAILOVERS:
            raise exc
        _wait_for_primary(client, exc, stream)
        k = _first_missing(client, stream, self.ids)
        if k < self.first:
            raise PartialFailure(
                f"after a failover the primary lacks event {skipped + k + 1}, older than the "
                f"{RETAINED_BYTES >> 20} MiB of events kept to publish again: rerun with --skip "
                f"{skipped + k} to publish the rest",
                done=k,
                exit_code=ExitCode.CONNECTION,
            )
        self._replay = list(self._from(k))
        del self.ids[k:]
        self.units.clear()
        self.first = k
        self.kept = 0
        return k

    def again(self) -> Iterator[tuple[bytes, int]]:
        return iter(self._replay)

    def _from(self, k: int) -> Iterator[tuple[bytes, int]]:
        start = self.first
        for packed, count in self.units:
            end = start + count
            if end > k:
                if start < k:
                    packed, count = _drop_commands(packed, k - start), end - k
                yield packed, count
            start = end


def _wait_for_primary(client: Client, exc: BaseException, stream: str) -> None:
    deadline = time.monotonic() + PRIMARY_WAIT_S
    last: BaseException = exc
    while time.monotonic() < deadline:
        # idle connections may still be open to the demoted primary: dropped, each new one
        # asks the Sentinels where the primary is (a cluster: the slot map is read again)
        client.connection_pool.disconnect()
        try:
            role = raw_command(key_primary(client, stream), "ROLE")
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


def _drop_commands(packed: bytes, n: int) -> bytes:
    """`packed` (RESP commands, arrays of bulk strings) without its first `n` commands."""
    pos = 0
    for _ in range(n):
        end = packed.index(b"\r\n", pos)
        args = int(packed[pos + 1 : end])
        pos = end + 2
        for _ in range(args):
            end = packed.index(b"\r\n", pos)
            pos = end + 2 + int(packed[pos + 1 : end]) + 2
    return packed[pos:]
