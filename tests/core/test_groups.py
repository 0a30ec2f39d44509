"""core.groups against the three real servers: lag, positions, ENTRIESREAD, create, destroy,
setid plans, consumers and delconsumer."""

from __future__ import annotations

import pytest
import redis

from streamctl.core import groups
from streamctl.errors import BadInput, NotFound, Refused, ServerRefused
from streamctl.ids import parse_position


def add(
    r: redis.Redis, stream: str, n: int, *, first_ms: int = 1000, step_ms: int = 1000
) -> list[str]:
    """n entries with ids first_ms-0, first_ms+step-0, ... (times under our control)."""
    ids = []
    for i in range(n):
        ids.append(r.xadd(stream, {"n": str(i + 1)}, id=f"{first_ms + i * step_ms}-0").decode())
    return ids


def xinfo_group(r: redis.Redis, stream: str, group: str) -> dict[str, object]:
    for g in r.xinfo_groups(stream):
        if g["name"].decode() == group:
            return g  # type: ignore[no-any-return]
    raise AssertionError(f"no group {group}")


def pos(text: str):  # type: ignore[no-untyped-def]
    return parse_position(text, allow_last=True)


# ---- lag ----


def test_lag_nil_after_arbitrary_setid_is_computed(r):
    add(r, "s", 10)
    r.xgroup_create("s", "g", id="0")
    r.xgroup_setid("s", "g", id="4000-0")  # no ENTRIESREAD: the server cannot know the lag
    assert xinfo_group(r, "s", "g")["lag"] is None
    (info,) = groups.list_groups(r, "s")
    assert (info.lag, info.lag_computed, info.entries_read) == (6, True, None)
    assert info.behind_ms == 10_000 - 4_000
    assert groups.get_group(r, "s", "g") == info


def test_count_range_pages_and_bounds(r, monkeypatch):
    add(r, "s", 25)
    monkeypatch.setattr(groups, "COUNT_BATCH", 4)
    assert groups.count_range(r, "s", "0-0") == 25
    assert groups.count_range(r, "s", "5000-0", "20000-0") == 15
    assert groups.count_entries_after(r, "s", "25000-0") == 0


def test_missing_stream_and_group_are_named(r):
    with pytest.raises(NotFound, match="stream 'nope' does not exist"):
        groups.list_groups(r, "nope")
    add(r, "s", 1)
    with pytest.raises(NotFound, match="group 'g' does not exist on stream 's'"):
        groups.get_group(r, "s", "g")
    with pytest.raises(NotFound, match="group 'g' does not exist on stream 's'"):
        groups.list_consumers(r, "s", "g")
    r.set("str", "x")
    with pytest.raises(ServerRefused, match="WRONGTYPE"):
        groups.list_groups(r, "str")


# ---- positions and ENTRIESREAD ----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$", "5000-0"),
        ("0", "0-0"),
        ("-", "0-0"),
        ("3000-0", "2000-0"),  # deliver again from 3000-0 on: the entry before it
        ("3000", "2000-0"),
        ("(3000-0", "3000-0"),  # after 3000-0: the Redis meaning
        ("1000-0", "0-0"),  # nothing before the first entry
        ("1970-01-01T00:00:03Z", "2000-0"),
        ("1970-01-01T00:00:02.500Z", "2000-0"),
        ("2999-01-01", "5000-0"),  # a future time: after the last entry
    ],
)
def test_resolve_group_position(r, text, expected):
    add(r, "s", 5)
    assert groups.resolve_group_position(r, "s", pos(text)) == expected


def test_resolve_group_position_duration_uses_server_clock(r):
    add(r, "s", 5)
    assert groups.resolve_group_position(r, "s", pos("2s"), lambda: 5_500) == "3000-0"
    with pytest.raises(BadInput, match=r"use \$"):
        groups.resolve_group_position(r, "s", pos("+"))


def test_entries_read_known_without_deletions_even_when_trimmed(r):
    add(r, "s", 10)
    r.xtrim("s", maxlen=6, approximate=False)  # entries 1..4 trimmed: counted as read
    assert groups.entries_read_at(r, "s", "7000-0") == (7, None)
    assert groups.entries_read_at(r, "s", "0-0") == (4, None)
    assert groups.entries_read_at(r, "s", "10000-0") == (10, None)


def test_entries_read_unknown_after_a_deletion_past_the_id(r):
    add(r, "s", 10)
    r.xdel("s", "8000-0")
    value, note = groups.entries_read_at(r, "s", "5000-0")
    assert value is None
    assert note is not None and "8000-0" in note
    # a deletion before the id does not matter
    assert groups.entries_read_at(r, "s", "9000-0") == (9, None)
    assert groups.entries_read_at(r, "nope", "0-0") == (None, "the stream does not exist")


# ---- create / destroy ----


def test_create_at_a_time_sets_entries_read_so_lag_is_known(r):
    add(r, "s", 10)
    res = groups.create_group(r, "s", "g", pos("1970-01-01T00:00:04Z"))
    assert res == groups.GroupCreateResult("s", "g", True, False, "3000-0", 3)
    g = xinfo_group(r, "s", "g")
    assert (g["entries-read"], g["lag"]) == (3, 7)


def test_create_defaults_mkstream_exist_ok_busygroup(r):
    res = groups.create_group(r, "new", "g", pos("$"))
    assert res == groups.GroupCreateResult("new", "g", True, True, "0-0", None)
    assert r.type("new") == b"stream"
    with pytest.raises(ServerRefused, match="group 'g' already exists on stream 'new'"):
        groups.create_group(r, "new", "g", pos("0"))
    again = groups.create_group(r, "new", "g", pos("0"), exist_ok=True)
    assert again.created is False
    with pytest.raises(NotFound, match=r"stream 'other' does not exist \(--no-mkstream\)"):
        groups.create_group(r, "other", "g", pos("$"), mkstream=False)
    assert r.exists("other") == 0
    r.set("str", "x")
    with pytest.raises(ServerRefused, match="WRONGTYPE"):
        groups.create_group(r, "str", "g", pos("$"))


def test_destroy_refuses_with_pending_unless_forced(r):
    add(r, "s", 3)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=2)
    with pytest.raises(Refused, match="group 'g' on stream 's' has 2 pending entries"):
        groups.destroy_group(r, "s", "g")
    assert len(r.xinfo_groups("s")) == 1
    assert groups.destroy_group(r, "s", "g", force=True).pending_dropped == 2
    assert r.xinfo_groups("s") == []
    with pytest.raises(NotFound, match="group 'g' does not exist"):
        groups.destroy_group(r, "s", "g")


def test_destroy_without_pending(r):
    add(r, "s", 1)
    r.xgroup_create("s", "g", id="$")
    assert groups.destroy_group(r, "s", "g") == groups.GroupDestroyResult("s", "g", 0)


# ---- setid ----


def test_setid_plan_changes_nothing_and_execute_keeps_lag_known(r):
    add(r, "s", 10)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=8)
    before = xinfo_group(r, "s", "g")
    plan = groups.plan_setid(r, "s", "g", pos("1970-01-01T00:00:04Z"))
    assert plan == groups.SetIdPlan(
        stream="s",
        group="g",
        current_id="8000-0",
        current_entries_read=8,
        current_lag=2,
        new_id="3000-0",
        entries_read=3,
        entries_read_note=None,
        new_lag=7,
        next_id="4000-0",
        redeliver=5,
        skip=0,
        pending=8,
        executed=False,
    )
    assert xinfo_group(r, "s", "g") == before
    done = groups.execute_setid(r, plan)
    assert done.executed
    g = xinfo_group(r, "s", "g")
    assert (g["last-delivered-id"], g["entries-read"], g["lag"], g["pending"]) == (
        b"3000-0",
        3,
        7,
        8,
    )


def test_setid_forward_counts_skipped_and_dollar(r):
    add(r, "s", 6)
    r.xgroup_create("s", "g", id="0")
    plan = groups.plan_setid(r, "s", "g", pos("$"))
    assert (plan.new_id, plan.skip, plan.redeliver, plan.new_lag, plan.next_id) == (
        "6000-0",
        6,
        0,
        0,
        None,
    )
    assert plan.entries_read == 6
    groups.execute_setid(r, plan)
    assert xinfo_group(r, "s", "g")["lag"] == 0


def test_setid_after_deletion_leaves_entries_read_unknown(r):
    add(r, "s", 6)
    r.xgroup_create("s", "g", id="$")
    r.xdel("s", "5000-0")
    plan = groups.plan_setid(r, "s", "g", pos("2000"))
    assert plan.new_id == "1000-0"
    assert plan.entries_read is None and "5000-0" in (plan.entries_read_note or "")
    assert (plan.redeliver, plan.new_lag) == (4, 4)
    groups.execute_setid(r, plan)
    assert xinfo_group(r, "s", "g")["lag"] is None  # the server cannot know it
    (info,) = groups.list_groups(r, "s")
    assert (info.lag, info.lag_computed) == (4, True)


def test_setid_missing_group(r):
    add(r, "s", 1)
    with pytest.raises(NotFound, match="group 'g' does not exist on stream 's'"):
        groups.plan_setid(r, "s", "g", pos("0"))
    with pytest.raises(NotFound, match="stream 'x' does not exist"):
        groups.plan_setid(r, "x", "g", pos("0"))


# ---- consumers ----


def test_consumers_report_pending_idle_and_inactive_where_known(r, server):
    add(r, "s", 3)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=2)
    r.xgroup_createconsumer("s", "g", "B")
    consumers = groups.list_consumers(r, "s", "g")
    assert [(c.name, c.pending) for c in consumers] == [("A", 2), ("B", 0)]
    assert all(c.idle_ms >= 0 for c in consumers)
    if server.kind == "redis7.0":
        assert all(c.inactive_ms is None for c in consumers)
    else:
        assert all(isinstance(c.inactive_ms, int) for c in consumers)


def test_delconsumer_refuses_then_reassigns(r):
    add(r, "s", 4)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=3)
    r.xdel("s", "2000-0")
    with pytest.raises(Refused, match="consumer 'A' owns 3 pending entries in group 'g'"):
        groups.delete_consumer(r, "s", "g", "A")
    res = groups.delete_consumer(r, "s", "g", "A", reassign_to="B")
    assert res == groups.DelConsumerResult("s", "g", "A", "B", ["1000-0", "3000-0"], ["2000-0"], 0)
    assert [c["name"] for c in r.xinfo_consumers("s", "g")] == [b"B"]
    assert [p["consumer"] for p in r.xpending_range("s", "g", "-", "+", 10)] == [b"B", b"B"]


def test_delconsumer_force_and_missing(r):
    add(r, "s", 2)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"})
    assert groups.delete_consumer(r, "s", "g", "A", force=True).pending_dropped == 2
    assert r.xpending("s", "g")["pending"] == 0
    with pytest.raises(NotFound, match="consumer 'A' does not exist in group 'g' of stream 's'"):
        groups.delete_consumer(r, "s", "g", "A")
    with pytest.raises(BadInput, match="--reassign-to names the consumer being deleted"):
        groups.delete_consumer(r, "s", "g", "A", reassign_to="A")
