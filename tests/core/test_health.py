"""core.health against real servers: check's measures and thresholds, PEL idle paging, top's
snapshots and the rates between them."""

from __future__ import annotations

import time

import pytest

from streamctl.core import health
from streamctl.core.health import (
    CheckResult,
    GroupSample,
    RateTracker,
    Snapshot,
    StreamSample,
    Thresholds,
    check_streams,
    idle_breached,
    pending_idle,
    rate,
    take_snapshot,
)
from streamctl.errors import NotFound, ServerRefused


def seed(r) -> None:  # type: ignore[no-untyped-def]
    """orders: 5 entries at 1s..5s; billing has read 2 (pending), audit nothing; events: 1."""
    for i in range(1, 6):
        r.xadd("orders", {"n": str(i)}, id=f"{i}000-0")
    r.xgroup_create("orders", "billing", id="0")
    r.xreadgroup("billing", "c1", {"orders": ">"}, count=2)
    r.xgroup_create("orders", "audit", id="0")
    r.xadd("events", {"a": "1"}, id="7000-0")


def without_idle(results: tuple[CheckResult, ...]) -> list[tuple[object, ...]]:
    return [
        (x.stream, x.group, x.check, None if x.check == "idle_ms" else x.value, x.max, x.status)
        for x in results
    ]


def test_check_every_stream_without_thresholds_reports_values(r, server) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    report = check_streams(server.client(), [], thresholds=Thresholds())
    assert without_idle(report.results) == [
        ("events", None, "length", 1, None, "ok"),
        ("orders", None, "length", 5, None, "ok"),
        ("orders", "audit", "lag", 5, None, "ok"),
        ("orders", "audit", "pending", 0, None, "ok"),
        ("orders", "audit", "idle_ms", None, None, "ok"),
        ("orders", "audit", "behind_ms", 4000, None, "ok"),
        ("orders", "billing", "lag", 3, None, "ok"),
        ("orders", "billing", "pending", 2, None, "ok"),
        ("orders", "billing", "idle_ms", None, None, "ok"),
        ("orders", "billing", "behind_ms", 3000, None, "ok"),
    ]
    idle = [x.value for x in report.results if x.check == "idle_ms"]
    assert idle[0] is None  # audit has nothing pending
    assert isinstance(idle[1], int) and 0 <= idle[1] < 60_000
    assert report.status == "ok" and report.breached == 0


def test_check_thresholds_breach_when_greater(r, server) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    report = check_streams(
        server.client(),
        ["orders"],
        thresholds=Thresholds(max_length=5, max_lag=4, max_pending=1, max_behind_ms=3000),
    )
    assert [(x.group, x.check, x.value, x.max, x.status) for x in report.results] == [
        (None, "length", 5, 5, "ok"),
        ("audit", "lag", 5, 4, "breached"),
        ("audit", "pending", 0, 1, "ok"),
        ("audit", "behind_ms", 4000, 3000, "breached"),
        ("billing", "lag", 3, 4, "ok"),
        ("billing", "pending", 2, 1, "breached"),
        ("billing", "behind_ms", 3000, 3000, "ok"),
    ]
    assert report.breached == 3 and report.status == "breached"


def test_check_one_group_and_only_its_metrics(r, server) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    report = check_streams(server.client(), [], thresholds=Thresholds(max_lag=3), group="billing")
    assert [(x.stream, x.group, x.check, x.value, x.status) for x in report.results] == [
        ("orders", "billing", "lag", 3, "ok")
    ]


def test_check_idle_threshold(r, server) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    time.sleep(0.02)
    client = server.client()
    ok = check_streams(client, ["orders"], thresholds=Thresholds(max_idle_ms=3_600_000))
    assert [(x.group, x.check, x.status) for x in ok.results] == [
        ("audit", "idle_ms", "ok"),
        ("billing", "idle_ms", "ok"),
    ]
    assert ok.results[1].value is not None and 20 <= ok.results[1].value < 3_600_000
    bad = check_streams(client, ["orders"], thresholds=Thresholds(max_idle_ms=10))
    assert [(x.group, x.status) for x in bad.results] == [("audit", "ok"), ("billing", "breached")]


def test_check_lag_computed_when_the_server_has_none(r, server) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    r.execute_command("XGROUP", "SETID", "orders", "audit", "3000-0")  # no ENTRIESREAD: lag nil
    raw = {g["name"]: g for g in r.xinfo_groups("orders")}
    assert raw[b"audit"]["lag"] is None
    report = check_streams(
        server.client(), ["orders"], thresholds=Thresholds(max_lag=1), group="audit"
    )
    assert [(x.check, x.value, x.status) for x in report.results] == [("lag", 2, "breached")]


def test_check_missing_and_wrong_type(r, server) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    r.set("plain", "x")
    client = server.client()
    with pytest.raises(NotFound, match="stream 'nope' does not exist"):
        check_streams(client, ["orders", "nope"], thresholds=Thresholds())
    with pytest.raises(NotFound, match="group 'nope' does not exist on stream 'orders'"):
        check_streams(client, ["orders"], thresholds=Thresholds(), group="nope")
    with pytest.raises(NotFound, match="group 'billing' does not exist on stream 'events'"):
        check_streams(client, ["orders", "events"], thresholds=Thresholds(), group="billing")
    with pytest.raises(NotFound, match="group 'nope' does not exist on any stream"):
        check_streams(client, [], thresholds=Thresholds(), group="nope")
    with pytest.raises(ServerRefused, match="WRONGTYPE"):
        check_streams(client, ["plain"], thresholds=Thresholds())


def test_check_no_streams_at_all(r, server) -> None:  # type: ignore[no-untyped-def]
    report = check_streams(server.client(), [], thresholds=Thresholds(max_lag=0))
    assert report.results == () and report.status == "ok"


def test_pending_idle_pages_the_whole_pel(r, server) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, 8):
        r.xadd("s", {"n": str(i)}, id=f"{i}-0")
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "old", {"s": ">"}, count=3)
    time.sleep(0.05)
    r.xreadgroup("g", "new", {"s": ">"}, count=4)
    client = server.client()
    whole = pending_idle(client, "s", "g", page=2)
    assert (whole.count, whole.complete) == (7, True)
    assert whole.max_idle_id in ("1-0", "2-0", "3-0")
    assert whole.max_idle_ms is not None and whole.max_idle_ms >= 50
    part = pending_idle(client, "s", "g", page=2, limit=3)
    assert (part.count, part.complete) == (3, False)
    empty_group = r.xgroup_create("s", "idle-free", id="$")
    assert empty_group
    assert pending_idle(client, "s", "idle-free") == health.PendingIdle(0, None, None, True)
    assert idle_breached(client, "s", "g", 40)
    assert not idle_breached(client, "s", "g", 3_600_000)
    with pytest.raises(NotFound, match="group 'nope' does not exist on stream 's'"):
        pending_idle(client, "s", "nope")


def test_check_past_the_scan_limit_is_a_lower_bound_with_an_exact_status(
    r, server, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, 6):
        r.xadd("s", {"n": str(i)}, id=f"{i}-0")
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"})
    time.sleep(0.05)
    r.xclaim("s", "g", "c", 0, ["1-0", "2-0"])  # the oldest ids are now the least idle
    monkeypatch.setattr(health, "PEL_SCAN_LIMIT", 2)
    client = server.client()
    report = check_streams(client, ["s"], thresholds=Thresholds(max_idle_ms=40))
    assert report.approximate == ("s/g",)
    (result,) = report.results
    assert result.value is not None and result.value < 40  # only 1-0 and 2-0 were scanned
    assert result.status == "breached"  # 3-0..5-0 have waited longer: XPENDING IDLE knows


# ---------------------------------------------------------------- top


def test_snapshot_of_streams_and_groups(r, server) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    r.set("not-a-stream", "x")
    snap = take_snapshot(server.client(), "*")
    assert [s.name for s in snap.streams] == ["events", "orders"]
    events, orders = snap.streams
    assert events == StreamSample("events", 1, 1, "7000-0", ())
    assert (orders.length, orders.entries_added, orders.last_generated_id) == (5, 5, "5000-0")
    audit, billing = orders.groups
    # a new group's entries-read is nil until it reads
    assert audit == GroupSample("audit", 0, 0, 5, False, None, "0-0", None, None)
    assert (
        billing.name,
        billing.consumers,
        billing.pending,
        billing.lag,
        billing.entries_read,
    ) == ("billing", 1, 2, 3, 2)
    assert billing.last_delivered_id == "2000-0"
    assert billing.oldest_pending_id == "1000-0"
    assert isinstance(billing.oldest_pending_idle_ms, int) and billing.oldest_pending_idle_ms >= 0
    assert abs(snap.time_ms - int(time.time() * 1000)) < 60_000
    assert [s.name for s in take_snapshot(server.client(), "ord*").streams] == ["orders"]
    assert take_snapshot(server.client(), "none*").streams == ()


def test_rates_between_two_snapshots_are_exact(r, server) -> None:  # type: ignore[no-untyped-def]
    r.xgroup_create("orders", "billing", id="$", mkstream=True)
    client = server.client()
    tracker = RateTracker()
    first = tracker.update(take_snapshot(client))
    assert first.interval_ms is None
    assert first.streams[0].in_rate is None and first.streams[0].groups[0].out_rate is None
    time.sleep(0.05)
    for i in range(30):
        r.xadd("orders", {"n": str(i)})
    r.xreadgroup("billing", "c", {"orders": ">"}, count=10)
    snap = take_snapshot(client)
    second = tracker.update(snap)
    elapsed = second.interval_ms
    assert elapsed is not None and elapsed >= 50
    (orders,) = second.streams
    assert orders.in_rate == pytest.approx(30 * 1000 / elapsed)
    assert orders.groups[0].out_rate == pytest.approx(10 * 1000 / elapsed)
    assert orders.history == (orders.in_rate,)
    assert orders.groups[0].lag == 20 and orders.groups[0].pending == 10


def sample(t: int, added: int | None, read: int | None, name: str = "s") -> Snapshot:
    group = GroupSample("g", 1, 0, 0, False, read, "0-0", None, None)
    return Snapshot(t, (StreamSample(name, added or 0, added, "0-0", (group,)),))


def test_rate_tracker_on_recorded_snapshots() -> None:
    tracker = RateTracker(window_ms=3000)
    reports = [
        tracker.update(s)
        for s in (
            sample(10_000, 100, 50),
            sample(11_000, 150, 60),
            sample(12_000, 350, 60),
            sample(13_000, 10, 0),  # recreated: counters went back
            sample(14_000, 30, 5),
        )
    ]
    assert [x.streams[0].in_rate for x in reports] == [None, 50.0, 200.0, None, 20.0]
    assert [x.streams[0].groups[0].out_rate for x in reports] == [None, 10.0, 0.0, None, 5.0]
    assert [x.interval_ms for x in reports] == [None, 1000, 1000, 1000, 1000]
    # the window keeps the points of the last 3 s (those with a rate)
    assert reports[2].streams[0].history == (50.0, 200.0)
    assert reports[4].streams[0].history == (200.0, 20.0)
    assert reports[4].streams[0].groups[0].history == (0.0, 5.0)
    # a stream that disappears loses its history; when it comes back it starts over
    tracker.update(Snapshot(15_000, ()))
    again = tracker.update(sample(16_000, 40, 5))
    assert again.streams[0].in_rate is None and again.streams[0].history == ()


def test_out_rate_from_lag_while_entries_read_is_nil() -> None:
    def snap(t: int, added: int, lag: int, read: int | None) -> Snapshot:
        group = GroupSample("g", 1, 0, lag, False, read, "0-0", None, None)
        return Snapshot(t, (StreamSample("s", added, added, "0-0", (group,)),))

    tracker = RateTracker()
    tracker.update(snap(0, 100, 100, None))  # a new group at 0: nothing read, entries-read nil
    report = tracker.update(snap(1000, 100, 60, 40))
    assert report.streams[0].groups[0].out_rate == 40.0
    report = tracker.update(snap(2000, 120, 0, None))  # moved with SETID: nil again
    assert report.streams[0].groups[0].out_rate == 80.0


def test_rate_edge_cases() -> None:
    assert rate(None, 5, 1000) is None
    assert rate(5, None, 1000) is None
    assert rate(5, 10, 0) is None
    assert rate(10, 5, 1000) is None
    assert rate(0, 1, 500) == 2.0


def test_oldest_pending_age_from_the_snapshot_clock() -> None:
    group = GroupSample("g", 1, 1, 0, False, 1, "1000-0", "1000-0", 7)
    snap = Snapshot(61_000, (StreamSample("s", 1, 1, "1000-0", (group,)),))
    (row,) = RateTracker().update(snap).streams[0].groups
    assert (row.oldest_pending_age_ms, row.oldest_pending_idle_ms) == (60_000, 7)
