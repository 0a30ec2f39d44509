"""core.fleet (the batched reader of check, top, ls and metrics) against real servers: what it
reads of many streams equals what the one-stream-at-a-time path (list_groups, XINFO STREAM,
pending_idle) reads, across batch boundaries, with lags the server reports and lags it leaves
nil (counted with pipelined XRANGE, past the first page too)."""

from __future__ import annotations

import pytest

from streamctl.core import fleet
from streamctl.core.fleet import describe_streams, scan_names
from streamctl.core.groups import list_groups
from streamctl.core.health import pending_idle


def seed(r) -> list[str]:  # type: ignore[no-untyped-def]
    """Seven streams with different shapes, and keys of other types around them."""
    names = []
    for i in range(7):
        name = f"s{i}"
        names.append(name)
        n = 5 + 60 * i  # s5 has 305 entries: past group_lags' first XRANGE page
        pipe = r.pipeline(transaction=False)
        for j in range(1, n + 1):
            pipe.xadd(name, {"n": str(j)}, id=f"{j}-0")
        pipe.execute()
        if i % 3 == 0:
            continue  # no group
        r.xgroup_create(name, "g", id="0")
        r.xreadgroup("g", "c1", {name: ">"}, count=2 + i)
        if i % 2:
            r.xgroup_create(name, "h", id="3-0")
            # a deleted entry after the groups' positions: the server reports no lag (nil)
            r.xdel(name, f"{n - 1}-0")
        r.set(f"other{i}", "x")
    r.xadd("empty", {"a": "1"}, id="1-0")
    r.xdel("empty", "1-0")
    r.xgroup_create("empty", "g", id="0")
    names.append("empty")
    return sorted(names)


def test_batched_reading_equals_the_one_stream_path(r, server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    names = seed(r)
    client = server.client()
    monkeypatch.setattr(fleet, "BATCH", 3)  # batches of 3: every boundary crossed
    assert scan_names(client, "*") == (names, False)
    assert scan_names(client, "*", 2) == (names[:2], True)

    states = list(describe_streams(client, names, pel=2))
    assert [s.name for s in states] == names
    computed = 0
    for s in states:
        info = r.xinfo_stream(s.name)
        assert s.length == info["length"]
        assert s.group_count == info["groups"]
        expected = list_groups(client, s.name)
        assert [
            (g.name, g.consumers, g.pending, g.lag, g.lag_computed, g.behind_ms) for g in s.groups
        ] == [
            (g.name, g.consumers, g.pending, g.lag, g.lag_computed, g.behind_ms) for g in expected
        ]
        for g in s.groups:
            computed += g.lag_computed
            full = pending_idle(client, s.name, g.name)
            if g.pending:
                assert g.pel_idle is not None
                assert g.pel_idle.complete == (g.pending < 2)
                if g.pel_idle.complete:
                    assert g.pel_idle.max_idle_ms is not None
                pel = r.xpending_range(s.name, g.name, "-", "+", 1)
                assert g.oldest_pending_id == pel[0]["message_id"].decode()
            else:
                assert (g.pel_idle, g.oldest_pending_id, full.max_idle_ms) == (None, None, None)
    assert computed >= 2  # the nil-lag groups were counted, not taken from the server
    s5 = next(s for s in states if s.name == "s5")
    assert s5.groups[0].lag == 305 - 7 - 1  # 7 read, one deleted after them: counted past 100
    assert s5.groups[0].lag_computed


def test_a_stream_deleted_or_replaced_meanwhile_is_left_out(r, server) -> None:  # type: ignore[no-untyped-def]
    names = seed(r)
    client = server.client()
    r.delete("s1")
    r.set("s2", "now a string")
    got = [s.name for s in describe_streams(client, names)]
    assert got == [n for n in names if n not in ("s1", "s2")]


@pytest.mark.parametrize("with_groups", [True, False])
def test_memory_and_only_group(r, server, with_groups) -> None:  # type: ignore[no-untyped-def]
    names = seed(r)
    client = server.client()
    states = list(describe_streams(client, names, groups=with_groups, memory=True, only_group="h"))
    for s in states:
        assert s.memory == r.memory_usage(s.name)
        assert [g.name for g in s.groups] == (
            ["h"] if with_groups and s.name in ("s1", "s5") else []
        )
