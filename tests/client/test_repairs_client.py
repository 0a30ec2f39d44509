"""The repair methods of the Python API (`trace`, `prune_consumers`, `redrive`) on every server
kind: the models a program gets, errors naming arguments (not flags), the server's state after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import streamctl
from tests.servers import ServerProcess


@pytest.fixture
def sc(server: ServerProcess, r: redis.Redis) -> Iterator[streamctl.Client]:
    with streamctl.connect(server.url) as client:
        yield client


def test_trace(sc: streamctl.Client, r: redis.Redis) -> None:
    sid = sc.publish("orders", {"n": "1"})
    sc.create_group("orders", "g", start="0")
    report = sc.trace("orders", sid)
    assert report.entry is not None and report.entry.fields == {"n": "1"}
    assert [(g.group, g.state) for g in report.groups] == [("g", "not-delivered")]
    with pytest.raises(streamctl.NotFound, match="entry 1-0 is not in stream 'orders'"):
        sc.trace("orders", "1")
    with pytest.raises(streamctl.BadInput, match="bad dlqs"):
        sc.trace("orders", sid, dlqs="dlq")


def test_prune_consumers(sc: streamctl.Client, r: redis.Redis) -> None:
    sc.publish("orders", {"n": "1"})
    sc.create_group("orders", "g", start="0")
    r.xgroup_createconsumer("orders", "g", "idle")
    plan = sc.prune_consumers("orders", "g", idle="0")
    assert (plan.pruned, plan.executed) == (["idle"], False)
    assert [c["name"] for c in r.xinfo_consumers("orders", "g")] == [b"idle"]
    done = sc.prune_consumers("orders", "g", idle="0", execute=True)
    assert [d.deleted for d in done.consumers] == [True]
    assert r.xinfo_consumers("orders", "g") == []
    with pytest.raises(streamctl.BadInput, match="bad idle 'x'"):
        sc.prune_consumers("orders", "g", idle="x")


def test_redrive(sc: streamctl.Client, r: redis.Redis) -> None:
    dlq_id = sc.publish("dlq", {"n": "1", "dlq_stream": "orders", "dlq_id": "5-0"})
    seen: list[tuple[int, int]] = []
    result = sc.redrive("dlq", on_progress=lambda done, read: seen.append((done, read)))
    assert (result.redriven, result.per_stream, result.last_id) == (1, {"orders": 1}, dlq_id)
    assert seen == [(1, 1)]
    assert [f for _, f in r.xrange("orders")] == [{b"n": b"1", b"redriven_from": dlq_id.encode()}]
    assert r.xlen("dlq") == 0
    with pytest.raises(streamctl.BadInput, match="bad count 0: give a count of 1 or more"):
        sc.redrive("dlq", count=0)
    with pytest.raises(streamctl.BadInput, match="bad where"):
        sc.redrive("dlq", where="fields.x ==")
    with pytest.raises(streamctl.NotFound, match="stream 'nope' does not exist"):
        sc.redrive("nope")
