"""core.pending against the three real servers: summary, paged listing with filters, claims
(XAUTOCLAIM loop, XPENDING+XCLAIM, explicit ids), dead-letter and ack."""

from __future__ import annotations

import time

import pytest
import redis

from streamctl.core import pending
from streamctl.core.pending import PendingFilter
from streamctl.errors import BadInput, NotFound, PartialFailure, ServerRefused


def setup_group(
    r: redis.Redis, n: int, *, read: int | None = None, consumer: str = "A"
) -> list[str]:
    """Stream s with n entries (ids 1000-0, 2000-0, ...), group g at 0, `read` of them
    delivered to `consumer` and never acknowledged (a consumer that died holding them)."""
    ids = [r.xadd("s", {"n": str(i + 1)}, id=f"{(i + 1) * 1000}-0").decode() for i in range(n)]
    r.xgroup_create("s", "g", id="0")
    if read != 0:
        r.xreadgroup("g", consumer, {"s": ">"}, count=read)
    return ids


def redeliver(r: redis.Redis, consumer: str, times: int, count: int | None = None) -> None:
    """Deliver the consumer's own pending entries again (XREADGROUP with 0 counts a delivery)."""
    for _ in range(times):
        r.xreadgroup("g", consumer, {"s": "0"}, count=count)


def pel(r: redis.Redis) -> list[tuple[str, str, int]]:
    return [
        (p["message_id"].decode(), p["consumer"].decode(), p["times_delivered"])
        for p in r.xpending_range("s", "g", "-", "+", 1000)
    ]


def idle_past(ms: int) -> None:
    time.sleep(ms / 1000 + 0.02)


# ---- summary and listing ----


def test_summary_of_an_empty_pel(r):
    setup_group(r, 2, read=0)
    s = pending.pending_summary(r, "s", "g")
    assert (s.count, s.oldest_id, s.newest_id, s.consumers) == (0, None, None, ())
    assert s.now_ms > 1_700_000_000_000


def test_summary_counts_per_consumer(r):
    setup_group(r, 5, read=2, consumer="A")
    r.xreadgroup("g", "B", {"s": ">"}, count=3)
    s = pending.pending_summary(r, "s", "g")
    assert (s.count, s.oldest_id, s.newest_id) == (5, "1000-0", "5000-0")
    assert s.consumers == (("A", 2), ("B", 3))


def test_missing_stream_or_group(r):
    with pytest.raises(NotFound, match="stream 's' does not exist"):
        pending.pending_summary(r, "s", "g")
    r.xadd("s", {"a": "1"})
    with pytest.raises(NotFound, match="group 'g' does not exist on stream 's'"):
        pending.pending_summary(r, "s", "g")
    with pytest.raises(NotFound, match="group 'g' does not exist on stream 's'"):
        pending.ack_ids(r, "s", "g", ["1-0"])


def test_iter_pending_pages_with_exclusive_ranges_and_filters(r):
    setup_group(r, 9, read=5, consumer="A")
    r.xreadgroup("g", "B", {"s": ">"})
    redeliver(r, "B", 1, count=2)  # 6000-0 and 7000-0 delivered twice
    pages = list(pending.iter_pending(r, "s", "g", PendingFilter(), page=2))
    assert [len(p) for p in pages] == [2, 2, 2, 2, 1]
    assert [e.id for p in pages for e in p] == [f"{i}000-0" for i in range(1, 10)]

    def ids(flt: PendingFilter, **kw: int) -> list[str]:
        return [e.id for p in pending.iter_pending(r, "s", "g", flt, page=2, **kw) for e in p]

    assert ids(PendingFilter(consumer="B")) == ["6000-0", "7000-0", "8000-0", "9000-0"]
    assert ids(PendingFilter(min_deliveries=2)) == ["6000-0", "7000-0"]
    assert ids(PendingFilter(start="(3000-0", end="5000-0")) == ["4000-0", "5000-0"]
    assert ids(PendingFilter(), limit=3) == ["1000-0", "2000-0", "3000-0"]
    assert ids(PendingFilter(consumer="nobody")) == []
    first = pages[0][0]
    assert (first.consumer, first.deliveries) == ("A", 1) and first.idle_ms >= 0


def test_iter_pending_reads_ahead_without_losing_or_repeating_an_entry(r):
    """The next page is in flight while the caller works on one: entries acknowledged then (in
    the page just read, and past it) are listed once or not at all, never twice; a listing
    left half-way drops its connection (a reply was unread) and the next one works."""
    setup_group(r, 9, read=9)
    seen: list[str] = []
    for page in pending.iter_pending(r, "s", "g", PendingFilter(), page=2):
        seen += [e.id for e in page]
        r.xack("s", "g", *[e.id for e in page])  # what the caller does with a page
        if page[0].id == "3000-0":
            r.xack("s", "g", "8000-0")  # past the page in flight: gone before it is read
    assert seen == [f"{i}000-0" for i in range(1, 10) if i != 8]
    assert r.xpending("s", "g")["pending"] == 0

    r.xgroup_setid("s", "g", "0")
    r.xreadgroup("g", "A", {"s": ">"})
    pages = pending.iter_pending(r, "s", "g", PendingFilter(), page=2)
    assert [e.id for e in next(pages)] == ["1000-0", "2000-0"]
    pages.close()  # abandoned with a page in flight
    assert [e.id for p in pending.iter_pending(r, "s", "g", PendingFilter()) for e in p] == [
        f"{i}000-0" for i in range(1, 10)
    ]


def test_iter_pending_min_idle(r):
    setup_group(r, 3, read=2)
    idle_past(60)
    r.xreadgroup("g", "B", {"s": ">"})
    got = [
        e.id for p in pending.iter_pending(r, "s", "g", PendingFilter(min_idle_ms=50)) for e in p
    ]
    assert got == ["1000-0", "2000-0"]


# ---- claim ----


def test_claim_idle_moves_a_dead_consumers_entries_once(r):
    setup_group(r, 4, read=3, consumer="A")
    idle_past(60)
    res = pending.claim_idle(r, "s", "g", "B", min_idle_ms=50)
    assert res == pending.ClaimResult(
        "s", "g", "B", "xautoclaim", False, ["1000-0", "2000-0", "3000-0"], [], [], []
    )
    assert pel(r) == [("1000-0", "B", 1), ("2000-0", "B", 1), ("3000-0", "B", 1)]
    again = pending.claim_idle(r, "s", "g", "C", min_idle_ms=50)
    assert (again.claimed, again.deleted) == ([], [])


def test_claim_idle_cursor_loop_and_deleted_ids(r):
    setup_group(r, 7, read=7)
    r.xdel("s", "2000-0", "6000-0")
    res = pending.claim_idle(r, "s", "g", "B", batch=2)  # several XAUTOCLAIM calls
    assert res.claimed == ["1000-0", "3000-0", "4000-0", "5000-0", "7000-0"]
    assert res.deleted == ["2000-0", "6000-0"]
    assert [p[0] for p in pel(r)] == res.claimed  # the deleted ones left the PEL


def test_claim_idle_continues_past_calls_that_claim_nothing(r):
    setup_group(r, 25, read=25)
    idle_past(60)
    fresh = [f"{i}000-0" for i in range(1, 23)]
    r.xclaim("s", "g", "A", 0, fresh, justid=True)  # busy again: only the last 3 are idle
    # COUNT 1 scans at most 10 PEL entries per call: the first calls claim nothing
    assert pending._xautoclaim(r, "s", "g", "B", 50, "0-0", 1) == ("11000-0", [], [])
    res = pending.claim_idle(r, "s", "g", "B", min_idle_ms=50, batch=1)
    assert (res.claimed, res.deleted) == (["23000-0", "24000-0", "25000-0"], [])


def test_claim_idle_limit_and_start(r):
    setup_group(r, 6, read=6)
    res = pending.claim_idle(r, "s", "g", "B", start="3000-0", limit=2, batch=1)
    assert res.claimed == ["3000-0", "4000-0"]
    assert [c for _, c, _ in pel(r)] == ["A", "A", "B", "B", "A", "A"]


def test_claim_selected_filters_and_reports_deleted(r):
    setup_group(r, 6, read=3, consumer="A")
    r.xreadgroup("g", "B", {"s": ">"})
    r.xdel("s", "2000-0")
    res = pending.claim_selected(r, "s", "g", "C", PendingFilter(consumer="A"), page=2)
    assert res == pending.ClaimResult(
        "s", "g", "C", "xclaim", False, ["1000-0", "3000-0"], ["2000-0"], [], []
    )
    assert [c for _, c, _ in pel(r)] == ["C", "C", "B", "B", "B"]


def test_claim_selected_skips_what_is_no_longer_idle(r):
    setup_group(r, 2, read=2)
    idle_past(60)
    # XCLAIM re-checks the idle time: an entry touched since it was listed is skipped
    entries = next(pending.iter_pending(r, "s", "g", PendingFilter(min_idle_ms=50)))
    r.xclaim("s", "g", "A", 0, ["2000-0"], justid=True)
    claimed, deleted, skipped = pending._claim_page(r, "s", "g", "B", [e.id for e in entries], 50)
    assert (claimed, deleted, skipped) == (["1000-0"], [], ["2000-0"])


def test_claim_ids_reports_not_pending_and_deleted(r):
    setup_group(r, 5, read=3)
    r.xdel("s", "3000-0")
    ids = pending.normalize_ids(["1000", "3000-0", "4000-0", "1000-0"])
    assert ids == ["1000-0", "3000-0", "4000-0"]
    dry = pending.claim_ids(r, "s", "g", "B", ids, dry_run=True)
    assert (dry.claimed, dry.deleted, dry.not_pending, dry.dry_run) == (
        ["1000-0"],
        ["3000-0"],
        ["4000-0"],
        True,
    )
    assert pel(r) == [("1000-0", "A", 1), ("2000-0", "A", 1), ("3000-0", "A", 1)]
    res = pending.claim_ids(r, "s", "g", "B", ids)
    assert (res.claimed, res.deleted, res.not_pending, res.skipped) == (
        ["1000-0"],
        ["3000-0"],
        ["4000-0"],
        [],
    )
    assert pel(r) == [("1000-0", "B", 1), ("2000-0", "A", 1)]
    with pytest.raises(BadInput, match="bad id 'x'"):
        pending.normalize_ids(["x"])


def test_claim_ids_min_idle_skips(r):
    setup_group(r, 2, read=2)
    res = pending.claim_ids(r, "s", "g", "B", ["1000-0"], min_idle_ms=60_000)
    assert (res.claimed, res.skipped) == ([], ["1000-0"])


def test_plan_claim_changes_nothing(r):
    setup_group(r, 4, read=4)
    r.xdel("s", "4000-0")
    before = pel(r)
    res = pending.plan_claim(r, "s", "g", "B", PendingFilter())
    assert (res.method, res.claimed, res.deleted) == (
        "xautoclaim",
        ["1000-0", "2000-0", "3000-0"],
        ["4000-0"],
    )
    assert pending.plan_claim(r, "s", "g", "B", PendingFilter(consumer="A")).method == "xclaim"
    assert pel(r) == before


# ---- dead letter ----


def dlq_entries(r: redis.Redis) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(e[1][b"dlq_id"].decode(), e[1]) for e in r.xrange("dlq")]


def test_dead_letter_moves_only_poison_entries_once(r):
    setup_group(r, 5, read=5)
    redeliver(r, "A", 2, count=2)  # 1000-0 and 2000-0: 3 deliveries
    r.xdel("s", "2000-0")
    res = pending.dead_letter(r, "s", "g", "dlq", 3, page=1)
    assert [(d.id, d.consumer, d.deliveries) for d in res.moved] == [("1000-0", "A", 3)]
    assert [(d.id, d.deliveries, d.dlq_id) for d in res.deleted] == [("2000-0", 3, None)]
    (copy,) = r.xrange("dlq")
    assert res.moved[0].dlq_id == copy[0].decode()
    assert list(copy[1].items()) == [
        (b"n", b"1"),
        (b"dlq_stream", b"s"),
        (b"dlq_group", b"g"),
        (b"dlq_id", b"1000-0"),
        (b"dlq_consumer", b"A"),
        (b"dlq_deliveries", b"3"),
    ]
    assert [p[0] for p in pel(r)] == ["3000-0", "4000-0", "5000-0"]
    assert r.xlen("s") == 4  # the originals stay in the log
    again = pending.dead_letter(r, "s", "g", "dlq", 3)
    assert (again.moved, again.deleted, again.skipped) == ([], [], [])
    assert r.xlen("dlq") == 1


def test_dead_letter_dry_run_and_filters(r):
    setup_group(r, 4, read=2, consumer="A")
    r.xreadgroup("g", "B", {"s": ">"})
    redeliver(r, "A", 1)
    redeliver(r, "B", 1)
    before = pel(r)
    dry = pending.dead_letter(r, "s", "g", "dlq", 2, PendingFilter(consumer="B"), dry_run=True)
    assert [(d.id, d.consumer, d.dlq_id) for d in dry.moved] == [
        ("3000-0", "B", None),
        ("4000-0", "B", None),
    ]
    assert pel(r) == before and r.exists("dlq") == 0
    res = pending.dead_letter(r, "s", "g", "dlq", 2, PendingFilter(consumer="B"), limit=1)
    assert [d.id for d in res.moved] == ["3000-0"]
    assert [p[0] for p in pel(r)] == ["1000-0", "2000-0", "4000-0"]


def test_dead_letter_refusals(r):
    setup_group(r, 2, read=2)
    redeliver(r, "A", 1)
    with pytest.raises(BadInput, match="must not be the stream itself"):
        pending.dead_letter(r, "s", "g", "s", 1)
    with pytest.raises(BadInput, match="give a count of 1 or more"):
        pending.dead_letter(r, "s", "g", "dlq", 0)
    r.set("dlq", "not a stream")
    with pytest.raises(ServerRefused, match="dead-letter key 'dlq' holds a string"):
        pending.dead_letter(r, "s", "g", "dlq", 1)
    assert len(pel(r)) == 2
    with pytest.raises(NotFound, match="group 'x' does not exist"):
        pending.dead_letter(r, "s", "x", "dlq2", 1)


def test_dead_letter_script_rechecks_eligibility(r):
    setup_group(r, 2, read=2)
    script = r.register_script(pending._DEAD_LETTER_SCRIPT)
    r.xack("s", "g", "2000-0")
    reply = script(keys=["s", "dlq"], args=["g", 1, 0, "", "1000-0", "2000-0"])
    assert [(x[0], x[1]) for x in reply] == [(b"1000-0", b"moved"), (b"2000-0", b"skipped")]
    reply = script(keys=["s", "dlq"], args=["g", 1, 0, "", "1000-0"])
    assert reply[0][1] == b"skipped"
    assert r.xlen("dlq") == 1


def test_dead_letter_step_that_fails_acks_nothing(r):
    setup_group(r, 1, read=1)
    r.set("dlq", "not a stream")  # the pre-check bypassed: XADD fails inside the step
    script = r.register_script(pending._DEAD_LETTER_SCRIPT)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        script(keys=["s", "dlq"], args=["g", 1, 0, "", "1000-0"])
    assert pel(r) == [("1000-0", "A", 1)]


# ---- ack ----


def test_ack_counts_acked_and_not_pending(r):
    setup_group(r, 3, read=2)
    res = pending.ack_ids(r, "s", "g", ["1000-0", "3000-0", "9000-0"], batch=2)
    assert res == pending.AckResult("s", "g", 3, 1)
    assert res.not_pending == 2
    assert [p[0] for p in pel(r)] == ["2000-0"]


def test_ack_id_lines(r):
    setup_group(r, 3, read=3)
    lines = ["1000-0\n", "\n", "# comment\n", '{"stream": "s", "id": "2000-0"}\n', "3000\n"]
    assert list(pending.read_id_lines(lines)) == ["1000-0", "2000-0", "3000-0"]
    with pytest.raises(
        PartialFailure, match="line 2: bad id 'oops'.*acknowledged 1 of the 1 id before it"
    ):
        pending.ack_ids(r, "s", "g", pending.read_id_lines(["1000-0", "oops", "2000-0"]))
    assert [p[0] for p in pel(r)] == ["2000-0", "3000-0"]
    with pytest.raises(BadInput, match='line 1: a JSON line needs an "id" string'):
        list(pending.read_id_lines(['{"x": 1}']))
    with pytest.raises(BadInput, match="line 1: malformed JSON"):
        list(pending.read_id_lines(["{nope"]))
