"""core.trim on the three real servers: the plan (range, counts, what each group still needs), the
refusal, exact execution, ACKED, and the server's clock for --older-than."""

from __future__ import annotations

import time

import pytest
import redis

from streamctl.core import trim
from streamctl.core.trim import GroupHold, count_from
from streamctl.errors import BadInput, NotFound, Refused, ServerRefused
from streamctl.ids import StreamId


def ids(r: redis.Redis, stream: str) -> list[str]:
    return [i.decode() for i, _ in r.xrange(stream)]


def fill(r: redis.Redis, stream: str, n: int, start_ms: int = 1) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, {"i": str(i)}, id=f"{start_ms + i}-0")
    pipe.execute()


@pytest.fixture
def orders(r: redis.Redis) -> redis.Redis:
    """Ten entries 1-0..10-0; group g read 1..5 and acked 1, 2, 4 (3 and 5 pending); group h
    starts after 7-0 (never read anything)."""
    fill(r, "orders", 10)
    r.xgroup_create("orders", "g", id="0")
    r.xreadgroup("g", "alice", {"orders": ">"}, count=5)
    r.xack("orders", "g", "1-0", "2-0", "4-0")
    r.xgroup_create("orders", "h", id="7-0")
    return r


def test_maxlen_plan_names_what_each_group_still_needs(orders):
    plan = trim.plan_trim(orders, "orders", maxlen=4)
    assert (plan.count, plan.first_id, plan.last_id, plan.length) == (6, "1-0", "6-0", 10)
    assert plan.holds == (
        GroupHold("g", "5-0", undelivered=1, pending=2),
        GroupHold("h", "7-0", undelivered=0, pending=0),
    )
    assert [h.group for h in plan.blocking] == ["g"]
    assert plan.trim_minid == "6-1"


def test_minid_by_id_and_by_time(orders):
    plan = trim.plan_trim(orders, "orders", minid="3-0")
    assert (plan.count, plan.first_id, plan.last_id) == (2, "1-0", "2-0")
    assert plan.holds == (GroupHold("g", "5-0", 0, 0), GroupHold("h", "7-0", 0, 0))
    assert plan.blocking == ()
    # a time is the first id at that time: 1970-01-01T00:00:00.004Z removes 1..3
    plan = trim.plan_trim(orders, "orders", minid="1970-01-01T00:00:00.004Z")
    assert (plan.count, plan.last_id) == (3, "3-0")
    assert plan.holds[0] == GroupHold("g", "5-0", 0, 1)  # 3-0 is pending


def test_nothing_to_trim(orders):
    for kw in ({"maxlen": 10}, {"maxlen": 50}, {"minid": "1-0"}, {"minid": "0"}):
        plan = trim.plan_trim(orders, "orders", **kw)
        assert (plan.count, plan.first_id, plan.last_id, plan.holds) == (0, None, None, ())
        result = trim.execute_trim(orders, plan)
        assert (result.removed, result.length_after) == (0, 10)
    assert orders.xlen("orders") == 10


def test_refusal_changes_nothing_and_names_groups(orders):
    with pytest.raises(Refused) as exc:
        trim.trim(orders, "orders", maxlen=0)
    assert str(exc.value) == (
        "refusing to trim 'orders': of the 10 entries that would go, group 'g' has 5 not yet "
        "delivered and 2 pending, group 'h' has 3 not yet delivered; rerun with --force to trim "
        "anyway, or with --acked-only (Redis >= 8.2) to trim only what every group has "
        "acknowledged"
    )
    assert exc.value.exit_code == 6
    assert orders.xlen("orders") == 10


def test_force_trims_exactly_the_plan(orders):
    result = trim.trim(orders, "orders", maxlen=4, force=True)
    assert (result.removed, result.length_after, result.forced) == (6, 4, True)
    assert ids(orders, "orders") == ["7-0", "8-0", "9-0", "10-0"]


def test_safe_trim_goes_through_without_force(orders):
    result = trim.trim(orders, "orders", minid="3")
    assert (result.removed, result.length_after) == (2, 8)
    assert ids(orders, "orders")[0] == "3-0"


def test_dry_run_changes_nothing(orders):
    result = trim.trim(orders, "orders", maxlen=0, dry_run=True)
    assert result.dry_run and result.removed is None
    assert result.plan.count == 10
    assert orders.xlen("orders") == 10


def test_entries_added_after_the_plan_are_not_trimmed(orders):
    """maxlen is executed as MINID of the planned boundary: what was checked is what goes."""
    plan = trim.plan_trim(orders, "orders", maxlen=2)
    fill(orders, "orders", 5, start_ms=100)
    result = trim.execute_trim(orders, plan, force=True)
    assert result.removed == 8
    assert ids(orders, "orders") == ["9-0", "10-0", "100-0", "101-0", "102-0", "103-0", "104-0"]


def test_pending_entry_already_deleted_does_not_block(r):
    fill(r, "s", 5)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"}, count=5)
    r.xack("s", "g", "1-0", "3-0", "4-0", "5-0")
    r.xdel("s", "2-0")  # still in the PEL, gone from the stream
    plan = trim.plan_trim(r, "s", minid="4")
    assert plan.count == 2  # 1-0 and 3-0
    assert plan.holds == (GroupHold("g", "5-0", 0, 0),)
    assert trim.execute_trim(r, plan).removed == 2


def test_approx_removes_at_most_the_plan(r):
    fill(r, "s", 1000)
    plan = trim.plan_trim(r, "s", maxlen=10, approx=True)
    assert plan.count == 990
    result = trim.execute_trim(r, plan)
    assert 0 <= result.removed <= 990
    assert r.xlen("s") == 1000 - result.removed
    assert ids(r, "s")[-10:] == [f"{i}-0" for i in range(991, 1001)]


def test_acked_only_where_supported(orders, server):
    if server.kind != "redis8.2":
        with pytest.raises(ServerRefused) as exc:
            trim.trim(orders, "orders", maxlen=0, acked_only=True)
        assert "--acked-only needs the ACKED trim policy of Redis >= 8.2" in str(exc.value)
        assert exc.value.exit_code == 1
        assert orders.xlen("orders") == 10
        return
    plan = trim.plan_trim(orders, "orders", maxlen=0, acked_only=True)
    # acked by every group: delivered to g (<= 5-0) and h (<= 7-0), not pending: 1, 2, 4
    assert (plan.count, plan.acked_count) == (10, 3)
    result = trim.execute_trim(orders, plan)  # not refused: the server keeps what groups need
    assert result.removed == 3
    assert ids(orders, "orders") == ["3-0", "5-0", "6-0", "7-0", "8-0", "9-0", "10-0"]


def test_older_than_uses_the_servers_clock(r, monkeypatch):
    now = int(r.time()[0]) * 1000
    pipe = r.pipeline(transaction=False)
    for age_s in (7200, 3600, 1800, 60, 1):
        pipe.xadd("s", {"age": str(age_s)}, id=f"{now - age_s * 1000}-0")
    pipe.execute()
    # a client clock ten years ahead must not matter
    skew = 10 * 365 * 86400
    real_time, real_time_ns = time.time, time.time_ns
    monkeypatch.setattr(time, "time", lambda: real_time() + skew)
    monkeypatch.setattr(time, "time_ns", lambda: real_time_ns() + skew * 10**9)
    plan = trim.plan_trim(r, "s", older_than_ms=45 * 60 * 1000)
    assert plan.count == 2
    assert abs(plan.now_ms - now) < 60_000
    assert trim.execute_trim(r, plan).removed == 2
    assert [f[b"age"] for _, f in r.xrange("s")] == [b"1800", b"60", b"1"]


def test_exactly_one_rule(r):
    fill(r, "s", 3)
    for kw in ({}, {"maxlen": 1, "minid": "2"}, {"maxlen": 1, "older_than_ms": 5}):
        with pytest.raises(BadInput):
            trim.plan_trim(r, "s", **kw)
    with pytest.raises(BadInput):
        trim.plan_trim(r, "s", maxlen=-1)
    with pytest.raises(BadInput):
        trim.plan_trim(r, "s", minid="+")


def test_missing_stream_and_wrong_type(r):
    with pytest.raises(NotFound):
        trim.plan_trim(r, "nope", maxlen=1)
    r.set("str", "x")
    with pytest.raises(ServerRefused):
        trim.plan_trim(r, "str", maxlen=1)


@pytest.mark.parametrize("split", [1, 2, 50, 99, 100, 101, 150, 199, 200, 500])
def test_count_from_walks_either_side(r, split):
    fill(r, "s", 200, start_ms=1)
    r.xdel("s", "10-0", "150-0")  # holes do not change the count
    total = 198
    got = count_from(r, "s", StreamId(1, 0), StreamId(200, 0), total, StreamId(split, 0))
    assert got == len(r.xrange("s", f"{split}-0", "+"))


def test_maxlen_boundary_walks_from_either_end(r, monkeypatch):
    monkeypatch.setattr(trim, "COUNT_BATCH", 7)  # several batches on both paths
    fill(r, "s", 100)
    for keep in (0, 1, 10, 49, 50, 51, 90, 99):
        plan = trim.plan_trim(r, "s", maxlen=keep)
        assert (plan.count, plan.last_id) == (100 - keep, f"{100 - keep}-0"), keep
