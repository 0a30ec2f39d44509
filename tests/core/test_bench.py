"""core.bench on a real server: counts, latencies, and the scratch stream deleted on every path."""

from __future__ import annotations

import pytest

from streamctl.core.bench import (
    BENCH_PREFIX,
    latency_summary,
    percentile,
    run_bench,
    split,
    validate,
)
from streamctl.errors import BadInput, Interrupted, ServerRefused


def bench_keys(r) -> list[bytes]:  # type: ignore[no-untyped-def]
    return list(r.scan_iter(match=BENCH_PREFIX + "*"))


def test_publish_and_consume_everything(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    result = run_bench(one_server.client, events=3001, size=64, producers=3, consumers=2, batch=50)
    assert (result.published, result.consumed) == (3001, 3001)
    assert result.stream.startswith(BENCH_PREFIX)
    assert list(result.latency_ms) == ["p50", "p90", "p99", "max"]
    lat = result.latency_ms
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] < 60_000
    assert result.publish_seconds > 0 and result.consume_seconds > 0
    assert result.publish_rate == pytest.approx(3001 / result.publish_seconds)
    assert bench_keys(r1) == []


def test_publish_only(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    result = run_bench(
        one_server.client, events=500, size=10, consumers=0, stream="streamctl-bench:t"
    )
    assert (result.published, result.consumed, result.latency_ms) == (500, 0, {})
    assert result.consume_seconds == 0.0 and result.consume_rate == 0.0
    assert r1.exists("streamctl-bench:t") == 0


def test_the_stream_is_deleted_when_interrupted(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Interrupted, match="interrupted after"):
        run_bench(
            one_server.client, events=10_000_000, size=10, consumers=1, should_stop=lambda: True
        )
    assert bench_keys(r1) == []


def test_the_stream_is_deleted_when_the_server_refuses(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    # a user who may do everything but XADD: the group and stream are created, then refused
    r1.execute_command("ACL", "SETUSER", "noxadd", "on", ">pw", "~*", "+@all", "-xadd")
    try:
        with pytest.raises(ServerRefused, match="the server refused XADD: .*no permissions"):
            run_bench(
                lambda: one_server.client(username="noxadd", password="pw"),
                events=10,
                size=8,
                consumers=1,
            )
    finally:
        r1.execute_command("ACL", "DELUSER", "noxadd")
    assert bench_keys(r1) == []


def test_a_consumer_failure_stops_the_run(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    # the consumers' group is destroyed under them: their next read fails with NOGROUP
    import threading

    def destroy() -> None:
        for _ in range(200):
            for key in r1.scan_iter(match=BENCH_PREFIX + "*"):
                r1.xgroup_destroy(key, "bench")
                return
            threading.Event().wait(0.01)

    killer = threading.Thread(target=destroy)
    killer.start()
    with pytest.raises(ServerRefused, match="NOGROUP"):
        run_bench(one_server.client, events=2_000_000, size=8, consumers=1)
    killer.join()
    assert bench_keys(r1) == []


def test_helpers() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert split(2, 2) == [1, 1]
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (0.5, 0.9, 0.99, 1.0)] == [50, 90, 99, 100]
    assert percentile([7], 0.99) == 7
    assert latency_summary([3_000_000, 1_000_000, 2_000_000]) == {
        "p50": 2.0,
        "p90": 3.0,
        "p99": 3.0,
        "max": 3.0,
    }
    assert latency_summary([]) == {}
    for args in (
        (0, 1, 1, 1, 1),
        (1, 0, 1, 1, 1),
        (1, 1, 0, 1, 1),
        (1, 1, 1, -1, 1),
        (1, 1, 1, 1, 0),
    ):
        with pytest.raises(BadInput):
            validate(*args)
    with pytest.raises(BadInput, match="more producers than --events"):
        validate(2, 1, 3, 1, 1)
