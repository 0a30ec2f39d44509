"""core.follow on the three real servers: positions, --no-follow ends, matching, counting, the idle
clock, group reads with ack-after-write, pending re-reads, and retrying a lost connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamctl import ids
from streamctl.config import Settings
from streamctl.core import follow as fl
from streamctl.core.connection import connect
from streamctl.core.filters import compile_filter
from streamctl.core.models import RawEntry
from streamctl.errors import BadInput, ConnectionFailed, NotFound, OutputClosed, ServerRefused
from tests.servers import KINDS, ServerProcess, server_binary, start_server


def opts(*streams: str, start: str = "0", **kw: Any) -> fl.FollowOptions:
    kw.setdefault("block_chunk_ms", 500)
    return fl.FollowOptions(streams=streams, start=ids.parse_position(start, allow_last=True), **kw)


class Collect:
    """An entry sink that records (stream, id, fields) and can run a hook per entry; `flushes`
    counts the entries written at each flush."""

    def __init__(self, hook: Callable[[int], None] | None = None) -> None:
        self.got: list[tuple[str, str, dict[bytes, bytes]]] = []
        self.hook = hook
        self.flushes: list[int] = []

    def write(self, stream: str, entries: list[RawEntry]) -> None:
        for eid, flat in entries:
            if self.hook is not None:
                self.hook(len(self.got))
            self.got.append((stream, eid.decode(), dict(zip(flat[0::2], flat[1::2], strict=True))))

    def flush(self) -> None:
        self.flushes.append(len(self.got))

    @property
    def ids(self) -> list[str]:
        return [eid for _, eid, _ in self.got]


def streamctl_client(srv: ServerProcess, timeout: float = 5.0) -> redis.Redis:
    """The client `tail` uses: no socket timeout (BLOCK), no retries inside redis-py."""
    return connect(Settings(url=srv.url, timeout=timeout), socket_timeout=None)


@pytest.fixture
def fc(server: ServerProcess, r: redis.Redis) -> Iterator[redis.Redis]:
    client = streamctl_client(server)
    yield client
    client.close()


def run(client: redis.Redis, o: fl.FollowOptions, sink: Collect | None = None, **kw: Any):
    sink = sink if sink is not None else Collect()
    result = fl.follow(client, o, sink, **kw)
    return sink, result


def add(r: redis.Redis, stream: str, n: int, **fields: str) -> list[str]:
    return [r.xadd(stream, {"i": str(i), **fields}).decode() for i in range(n)]


def when_blocked(r: redis.Redis, action: Callable[[], None], clients: int = 1) -> threading.Thread:
    """Run `action` in a thread once `clients` clients are blocked (BLOCK) on the server."""

    def wait_then_act() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if int(r.info("clients")["blocked_clients"]) >= clients:
                action()
                return
            time.sleep(0.01)
        raise AssertionError("the follower never blocked")

    t = threading.Thread(target=wait_then_act, daemon=True)
    t.start()
    return t


def pending_ids(r: redis.Redis, stream: str, group: str) -> list[str]:
    return [p["message_id"].decode() for p in r.xpending_range(stream, group, "-", "+", 1000)]


# ---- read_round ----


def test_read_round_reads_several_streams_each_after_its_own_id(fc, r):
    a = add(r, "a", 3)
    b = add(r, "b", 2)
    batches = fl.read_round(fc, {"a": a[0], "b": "0-0", "missing": "0-0"}, count=10)
    assert [(x.stream, [e[0].decode() for e in x.entries]) for x in batches] == [
        ("a", a[1:]),
        ("b", b),
    ]
    assert fl.read_round(fc, {"a": a[-1]}, count=10) == []  # nothing new, no BLOCK: at once


def test_read_round_block_is_not_cut_by_the_socket_timeout(server: ServerProcess, r):
    client = server.client(socket_timeout=0.3)  # like redis-py's 5 s default, only shorter
    started = time.monotonic()
    assert fl.read_round(client, {"s": "0-0"}, block_ms=800, timeout_s=0.3) == []
    assert time.monotonic() - started >= 0.75


# ---- positions and --no-follow ----


def test_from_zero_no_follow_reads_every_stream_in_order(fc, r):
    a = add(r, "a", 1200, kind="a")  # more than one batch
    b = add(r, "b", 3, kind="b")
    sink, result = run(fc, opts("a", "b", follow=False))
    assert [e for s, e, _ in sink.got if s == "a"] == a
    assert [e for s, e, _ in sink.got if s == "b"] == b
    assert (result.seen, result.stopped) == (1203, "end")


def test_no_follow_stops_at_what_was_there_at_the_start(fc, r):
    old = add(r, "s", 3)
    sink = Collect(hook=lambda n: r.xadd("s", {"late": str(n)}) if n < 2 else None)
    sink, result = run(fc, opts("s", follow=False), sink)
    assert sink.ids == old
    assert r.xlen("s") == 5


def test_no_follow_on_a_missing_stream_is_not_found(fc, r):
    with pytest.raises(NotFound, match="stream 'nope' does not exist"):
        run(fc, opts("nope", follow=False))


def test_no_follow_from_dollar_prints_nothing(fc, r):
    add(r, "s", 3)
    sink, result = run(fc, opts("s", start="$", follow=False))
    assert (sink.got, result.stopped) == ([], "end")


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("0", [0, 1, 2, 3]),
        ("-", [0, 1, 2, 3]),
        ("1795773600000-1", [1, 2, 3]),
        ("(1795773600000-1", [2, 3]),
        ("1795773600000", [0, 1, 2, 3]),
        ("(1795773600000", [2, 3]),
        ("2026-11-27T10:00:01Z", [2, 3]),
        ("2026-11-27T11:00:00+01:00", [0, 1, 2, 3]),
        ("+", [3]),
    ],
)
def test_from_forms(fc, r, start, expected):
    all_ids = ["1795773600000-0", "1795773600000-1", "1795773601000-0", "1795777200000-0"]
    for eid in all_ids:
        r.xadd("s", {"a": "1"}, id=eid)
    sink, _ = run(fc, opts("s", start=start, follow=False))
    assert sink.ids == [all_ids[i] for i in expected]


def test_duration_is_measured_on_the_server_clock(fc, r):
    r.xadd("s", {"old": "1"}, id="1000-0")
    new = add(r, "s", 1)
    sink, _ = run(fc, opts("s", start="1h", follow=False))
    assert sink.ids == new


def test_dollar_means_entries_added_after_the_start(fc, r):
    add(r, "s", 3)
    t = when_blocked(r, lambda: r.xadd("s", {"new": "1"}))
    sink, result = run(fc, opts("s", start="$", count=1, idle_timeout_ms=5000))
    t.join()
    assert [f for _, _, f in sink.got] == [{b"new": b"1"}]
    assert result.stopped == "count"


def test_a_missing_stream_is_waited_for(fc, r):
    t = when_blocked(r, lambda: r.xadd("later", {"a": "1"}))
    sink, _ = run(fc, opts("later", start="$", count=1, idle_timeout_ms=5000))
    t.join()
    assert [s for s, _, _ in sink.got] == ["later"]


def test_dollar_is_resolved_once_so_chunks_lose_nothing(fc, r):
    # BLOCK chunks of 100 ms: entries added between two chunks must not be skipped
    add(r, "s", 1)

    def publish_slowly() -> None:
        for i in range(5):
            r.xadd("s", {"n": str(i)})
            time.sleep(0.07)

    t = when_blocked(r, publish_slowly)
    sink, _ = run(fc, opts("s", start="$", count=5, idle_timeout_ms=5000, block_chunk_ms=100))
    t.join()
    assert [f[b"n"] for _, _, f in sink.got] == [b"0", b"1", b"2", b"3", b"4"]


def test_wrong_type_is_refused(fc, r):
    r.set("str", "x")
    with pytest.raises(ServerRefused, match="'str' holds a string"):
        run(fc, opts("str"))


# ---- --match, --count, the idle clock ----


def test_match_globs_all_must_match(fc, r):
    r.xadd("s", {"status": "shipped", "region": "eu-west"})
    r.xadd("s", {"status": "shipped", "region": "us"})
    r.xadd("s", {"status": "created", "region": "eu-north"})
    r.xadd("s", {"region": "eu-west"})  # no status field: no match
    r.xadd("s", {"status": "SHIPPED", "region": "eu"})  # case-sensitive
    m = compile_filter(["status=ship*", "region=eu-*"])
    sink, result = run(fc, opts("s", follow=False, filter=m))
    assert [f for _, _, f in sink.got] == [{b"status": b"shipped", b"region": b"eu-west"}]
    assert (result.seen, result.skipped) == (1, 4)


def test_match_value_may_contain_equals_and_non_utf8_never_crashes(fc, r):
    r.xadd("s", {"q": "a=b"})
    r.xadd("s", {"q": b"\xff\xfe"})
    sink, _ = run(fc, opts("s", follow=False, filter=compile_filter(["q=a=*"])))
    assert [f for _, _, f in sink.got] == [{b"q": b"a=b"}]


def test_count_stops_without_waiting(fc, r):
    ids_ = add(r, "s", 5)
    started = time.monotonic()
    sink, result = run(fc, opts("s", count=2))  # following, no timeout: count ends it
    assert sink.ids == ids_[:2]
    assert result.stopped == "count"
    assert time.monotonic() - started < 2


def test_idle_timeout_counts_only_matching_entries(fc, r):
    # a stream busy with entries that do not match must not keep a wait alive
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            r.xadd("s", {"status": "created"})
            time.sleep(0.05)

    t = when_blocked(r, busy)
    started = time.monotonic()
    try:
        o = opts(
            "s",
            start="$",
            count=1,
            idle_timeout_ms=800,
            filter=compile_filter(["status=shipped"]),
        )
        sink, result = run(fc, o)
    finally:
        stop.set()
        t.join()
    assert 0.75 < time.monotonic() - started < 5
    assert (result.seen, result.stopped) == (0, "timeout")
    assert result.skipped > 0
    failure = result.check_failure(o)
    assert failure is not None and failure.exit_code == 5
    assert str(failure) == (
        "timed out after 800ms without a new entry: saw 0 of 1 entry matching status=shipped"
    )


def test_idle_timeout_is_not_cut_by_a_short_socket_timeout(one_server: ServerProcess, r1):
    client = one_server.client(socket_timeout=0.3)
    started = time.monotonic()
    sink, result = run(
        client,
        opts("s", start="$", idle_timeout_ms=1000, block_chunk_ms=400, command_timeout_s=0.3),
    )
    assert result.stopped == "timeout"
    assert 0.95 < time.monotonic() - started < 3


def test_timeout_zero_reads_what_is_there_then_stops(fc, r):
    ids_ = add(r, "s", 3)
    sink, result = run(fc, opts("s", idle_timeout_ms=0))
    assert (sink.ids, result.stopped) == (ids_, "timeout")
    assert result.check_failure(opts("s")) is None  # no --count: a timeout is not a failure


@pytest.mark.parametrize(
    "kw",
    [
        {"count": 0},
        {"create_group": True},
        {"ack": False},
        {"group": "g"},  # no consumer
        {"group": "g", "consumer": "c", "start": "+"},
    ],
)
def test_option_mistakes(kw):
    start = kw.pop("start", "0")
    with pytest.raises(BadInput):
        opts("s", start=start, **kw)


# ---- group mode ----


def gopts(*streams: str, **kw: Any) -> fl.FollowOptions:
    kw.setdefault("group", "g")
    kw.setdefault("consumer", "c")
    kw.setdefault("start", "$")
    return opts(*streams, **kw)


def test_group_reads_new_entries_and_acks_each_after_writing(fc, r):
    add(r, "s", 2)
    r.xgroup_create("s", "g", "0")
    acked_before: list[int] = []
    sink = Collect(hook=lambda n: acked_before.append(len(pending_ids(r, "s", "g"))))
    sink, result = run(fc, gopts("s", follow=False), sink)
    assert len(sink.got) == 2
    assert acked_before == [2, 2]  # both delivered, neither acked while being written
    assert pending_ids(r, "s", "g") == []
    assert (result.acked, result.left_pending) == (2, 0)


def test_group_no_ack_leaves_them_pending(fc, r):
    new = add(r, "s", 3)
    r.xgroup_create("s", "g", "0")
    sink, result = run(fc, gopts("s", follow=False, ack=False))
    assert sink.ids == new
    assert pending_ids(r, "s", "g") == new
    assert result.left_pending == 3


@pytest.mark.parametrize("entries", [4, 6])
def test_group_entry_whose_write_failed_is_not_acked(fc, r, entries):
    new = add(r, "s", entries)
    r.xgroup_create("s", "g", "0")

    def fail_on_third(n: int) -> None:
        if n == 2:
            raise OutputClosed()

    with pytest.raises(OutputClosed):
        run(fc, gopts("s", follow=False, batch_size=2), Collect(hook=fail_on_third))
    # the first read (0, 1) was written, flushed and acked; writing the second failed: whether
    # the reader got any of it is unknown, so both of that read stay pending. With 6 entries
    # the third read (4, 5) was sent ahead when the second came, with the first read's XACK in
    # front of it: it stays pending too, nothing is lost
    assert pending_ids(r, "s", "g") == new[2:]


def test_a_read_is_written_as_one_block_flushed_once_then_acked(fc, r):
    new = add(r, "s", 7)
    r.xgroup_create("s", "g", "0")
    pending_at_flush: list[list[str]] = []
    sink = Collect()
    flush = sink.flush
    sink.flush = lambda: (pending_at_flush.append(pending_ids(r, "s", "g")), flush())  # type: ignore[method-assign]
    sink, result = run(fc, gopts("s", follow=False, batch_size=3), sink)
    assert sink.ids == new
    assert sink.flushes == [3, 6, 7]  # one flush per read
    # a read is acknowledged after its flush, never before: with a backlog, its XACK rides in
    # front of the read sent ahead after the next batch came, so at each flush the read being
    # flushed is pending, with the one read ahead (first flush) or the one before (then)
    assert pending_at_flush == [new[:6], new[3:], new[3:]]
    assert pending_ids(r, "s", "g") == [] and result.acked == 7


def test_group_count_delivers_no_more_than_asked(fc, r):
    add(r, "s", 10)
    r.xgroup_create("s", "g", "0")
    sink, result = run(fc, gopts("s", count=3))
    assert len(sink.got) == 3
    info = r.xinfo_groups("s")[0]
    assert (info["pending"], info["last-delivered-id"].decode()) == (0, sink.ids[-1])


def test_group_from_zero_rereads_own_pending_first(fc, r):
    r.xgroup_create("s", "g", "$", mkstream=True)
    old = add(r, "s", 3)
    r.xreadgroup("g", "c", {"s": ">"})  # delivered to c earlier, never acked
    r.xreadgroup("g", "other", {"s": "0"})  # another consumer's pending stay theirs
    new = add(r, "s", 2)
    sink, result = run(fc, gopts("s", start="0", follow=False))
    assert sink.ids == old + new
    assert pending_ids(r, "s", "g") == []


def test_group_pending_deleted_entries_are_skipped_not_acked(fc, r):
    r.xgroup_create("s", "g", "$", mkstream=True)
    old = add(r, "s", 3)
    r.xreadgroup("g", "c", {"s": ">"})
    r.xdel("s", old[1])
    sink, result = run(fc, gopts("s", start="0", follow=False))
    assert sink.ids == [old[0], old[2]]
    assert result.deleted_pending == 1
    assert pending_ids(r, "s", "g") == [old[1]]


def test_group_non_matching_entries_stay_pending(fc, r):
    r.xgroup_create("s", "g", "$", mkstream=True)
    r.xadd("s", {"status": "created"})
    shipped = r.xadd("s", {"status": "shipped"}).decode()
    other = r.xadd("s", {"status": "created"}).decode()
    m = compile_filter(["status=shipped"])
    sink, result = run(fc, gopts("s", start="0", follow=False, filter=m))
    assert sink.ids == [shipped]
    assert len(pending_ids(r, "s", "g")) == 2 and other in pending_ids(r, "s", "g")
    assert result.left_pending == 2


def test_missing_group_names_it(fc, r):
    add(r, "s", 1)
    with pytest.raises(NotFound, match="group 'g' does not exist on stream 's'"):
        run(fc, gopts("s"))
    with pytest.raises(NotFound, match="stream 'nope' does not exist"):
        run(fc, gopts("nope"))


def test_create_group_at_dollar_with_mkstream(fc, r):
    old = add(r, "s", 2)
    notices: list[str] = []
    sink, _ = run(
        fc, gopts("s", "fresh", create_group=True, follow=False), on_notice=notices.append
    )
    assert sink.got == []  # at $: the old entries are not for this group
    assert [g["last-delivered-id"].decode() for g in r.xinfo_groups("s")] == [old[-1]]
    assert r.type("fresh") == b"stream"
    assert notices == [
        "created group 'g' on stream 's' at $",
        "created group 'g' on stream 'fresh' at $",
    ]


def test_group_several_streams(fc, r):
    r.xgroup_create("a", "g", "$", mkstream=True)
    r.xgroup_create("b", "g", "$", mkstream=True)
    a = add(r, "a", 3)
    b = add(r, "b", 2)
    sink, result = run(fc, gopts("a", "b", follow=False))
    assert sorted(sink.ids) == sorted(a + b)
    assert pending_ids(r, "a", "g") == pending_ids(r, "b", "g") == []


def test_group_deleted_while_blocked_is_not_found(fc, server: ServerProcess, r):
    # Redis 7.0 answers -UNBLOCKED, 7.2+ and Valkey answer NOGROUP
    r.xgroup_create("s", "g", "$", mkstream=True)
    t = when_blocked(r, lambda: r.delete("s"))
    with pytest.raises(NotFound, match="group 'g' on 's' no longer exists"):
        run(fc, gopts("s", idle_timeout_ms=5000))
    t.join()


# ---- lost connections ----


def kill_follower(r: redis.Redis) -> None:
    """Close the follower's connection from the server side (what a network drop looks like)."""
    for c in r.client_list():
        if c["cmd"] in ("xread", "xreadgroup"):
            r.client_kill_filter(_id=c["id"])


def test_a_killed_connection_resumes_with_no_gap_and_no_duplicate(fc, r):
    first = add(r, "s", 2)
    later: list[str] = []
    notices: list[str] = []

    def drop_then_publish() -> None:
        kill_follower(r)
        later.extend(add(r, "s", 3))  # while the follower is reconnecting

    t = when_blocked(r, drop_then_publish)
    sink, result = run(fc, opts("s", count=5, idle_timeout_ms=10_000), on_notice=notices.append)
    t.join()
    assert sink.ids == first + later
    assert result.reconnects == 1
    assert notices[0].startswith("connection lost (")
    assert notices[1] == f"reconnected; resuming after s {first[-1]}"


def test_group_recovers_entries_delivered_in_a_lost_reply(fc, r):
    # the server delivered entries to this consumer but the reply never arrived: after the
    # reconnect they are read from the consumer's own pending entries, not lost until a claim
    r.xgroup_create("s", "g", "$", mkstream=True)
    lost: list[str] = []
    resumed = threading.Event()

    def deliver_behind_the_followers_back() -> None:
        kill_follower(r)
        lost.extend(add(r, "s", 2))
        r.xreadgroup("g", "c", {"s": ">"})  # as if to the follower, in a reply that was lost
        resumed.set()

    def sleep(seconds: float) -> None:
        resumed.wait(10)

    t = when_blocked(r, deliver_behind_the_followers_back)
    sink, result = run(fc, gopts("s", count=2, idle_timeout_ms=10_000), sleep=sleep)
    t.join()
    assert sink.ids == lost
    assert pending_ids(r, "s", "g") == []
    assert result.reconnects == 1


def test_gives_up_after_retry_for(tmp_path: Path):
    srv = start_server("redis8.2", dir=tmp_path)
    try:
        notices: list[str] = []
        t = when_blocked(srv.client(), srv.kill)
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match=r"gave up after .* \(--retry-for 500ms\)"):
            run(
                streamctl_client(srv),
                opts("s", start="$", retry_for_ms=500),
                on_notice=notices.append,
            )
        t.join()
        assert 0.5 <= time.monotonic() - started < 3
        assert len(notices) == 1 and "retrying for up to 500ms" in notices[0]
    finally:
        srv.stop()


def aof_server(kind: str, tmp_path: Path) -> Iterator[ServerProcess]:
    if server_binary(kind) is None:
        pytest.skip(f"{kind} server not available")
    srv = start_server(kind, aof=True, dir=tmp_path)
    yield srv
    srv.stop()


@pytest.fixture(params=KINDS)
def aof(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    yield from aof_server(request.param, tmp_path)


@pytest.mark.parametrize("group", [False, True])
def test_server_restart_loses_and_duplicates_nothing(aof: ServerProcess, group: bool):
    r = aof.client()
    if group:
        r.xgroup_create("s", "g", "$", mkstream=True)
    published: list[str] = []
    notices: list[str] = []

    def publish_restart_publish() -> None:
        published.extend(add(r, "s", 3))
        time.sleep(0.1)
        aof.kill()
        aof.start()  # same port, same dir: the AOF brings the stream (and group) back
        published.extend(add(r, "s", 3))

    t = when_blocked(r, publish_restart_publish)
    if group:
        o = gopts("s", count=6, idle_timeout_ms=20_000)
    else:
        o = opts("s", start="$", count=6, idle_timeout_ms=20_000)
    sink, result = run(streamctl_client(aof), o, on_notice=notices.append)
    t.join()
    assert sink.ids == published
    assert result.reconnects >= 1
    if group:
        assert pending_ids(r, "s", "g") == []


def test_a_server_that_stops_answering_is_noticed_not_waited_on(tmp_path: Path):
    # SIGSTOP: the connection stays open and nothing comes back; each read has its own timeout
    srv = start_server("redis8.2", dir=tmp_path)
    try:
        r = srv.client()
        published: list[str] = []
        notices: list[str] = []

        def pause_publish_resume() -> None:
            srv.pause()
            time.sleep(1.2)  # longer than a BLOCK chunk plus the command timeout
            srv.resume()
            published.extend(add(r, "s", 2))

        t = when_blocked(r, pause_publish_resume)
        o = opts(
            "s", start="$", count=2, idle_timeout_ms=20_000,
            block_chunk_ms=300, command_timeout_s=0.3, retry_for_ms=20_000,
        )  # fmt: skip
        sink, result = run(streamctl_client(srv, timeout=0.3), o, on_notice=notices.append)
        t.join()
        assert sink.ids == published
        assert result.reconnects >= 1
        assert "Timeout reading from" in notices[0]

        t = when_blocked(r, srv.pause)
        started = time.monotonic()
        with pytest.raises(ConnectionFailed, match="gave up after"):
            run(
                streamctl_client(srv, timeout=0.3),
                opts("s", start="$", block_chunk_ms=300, command_timeout_s=0.3, retry_for_ms=1000),
            )
        assert time.monotonic() - started < 5
        t.join()
    finally:
        srv.stop()
