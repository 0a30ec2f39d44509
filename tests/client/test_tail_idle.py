"""tail's idle timeout counts only time spent waiting for the server: a sink (stdout) that is
slow to take a read's entries is not idle time, so a stall of the reader never stops a tail
"idle" with entries still to read. Real server, real clock; margins are seconds wide."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

import streamctl
from tests.servers import ServerProcess

STALL_S = 3.0  # how long the first flush blocks: three times the timeout
TIMEOUT = "1s"


@pytest.fixture
def sc(one_server: ServerProcess, r1: redis.Redis) -> Iterator[streamctl.Client]:
    with streamctl.connect(one_server.url) as client:
        yield client


class StallingSink:
    """A reader that stalls on the first flush, while two more entries are published; records
    what it was given and when each flush returned."""

    def __init__(self, r: redis.Redis, stream: str) -> None:
        self.r, self.stream = r, stream
        self.ids: list[str] = []
        self.flushed_at: list[float] = []

    def write(self, stream: str, entries: list[tuple[bytes, list[bytes]]]) -> None:
        self.ids += [eid.decode() for eid, _ in entries]

    def flush(self) -> None:
        if not self.flushed_at:
            for n in (4, 5):
                self.r.xadd(self.stream, {"n": str(n)}, id=f"{n}-0")
            time.sleep(STALL_S)
        self.flushed_at.append(time.monotonic())


@pytest.mark.parametrize("group", [None, "billing"])
def test_a_stalled_sink_is_not_idle_time(
    sc: streamctl.Client, r1: redis.Redis, group: str | None
) -> None:
    for n in (1, 2, 3):
        r1.xadd("s", {"n": str(n)}, id=f"{n}-0")
    if group is not None:
        r1.xgroup_create("s", group, "0")
    sink = StallingSink(r1, "s")
    run = sc.tail_into(
        sink, "s", start="0", timeout=TIMEOUT, group=group, consumer="c1" if group else None
    )
    ended = time.monotonic()
    # the entries published while the sink stalled were read, not left behind as "idle"
    assert sink.ids == ["1-0", "2-0", "3-0", "4-0", "5-0"]
    assert run.result.stopped == "timeout" and run.result.seen == 5
    assert len(sink.flushed_at) == 2
    # idle is counted from the last write's flush: a full timeout of waiting after it
    assert ended - sink.flushed_at[-1] >= 1.0
    assert run.result.idle_ms >= 999  # whole milliseconds, truncated: 999.6 ms reads 999
    if group is not None:
        assert run.result.acked == 5 and run.result.left_pending == 0
        assert r1.xpending("s", group)["pending"] == 0


def test_an_idle_stream_still_stops_after_the_timeout(
    sc: streamctl.Client, r1: redis.Redis
) -> None:
    r1.xadd("s", {"n": "1"}, id="1-0")
    sink = StallingSink(r1, "quiet")  # never flushed: nothing comes
    started = time.monotonic()
    run = sc.tail_into(sink, "s", timeout=TIMEOUT)  # from $: nothing new comes
    waited = time.monotonic() - started
    assert (run.result.stopped, run.result.seen, sink.ids) == ("timeout", 0, [])
    assert run.result.idle_ms >= 999  # whole milliseconds, truncated: 999.6 ms reads 999
    assert 1.0 <= waited < 30  # stopped by the timeout, not cut short, and it did stop
