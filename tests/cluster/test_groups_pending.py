"""Consumer groups, pending entries, claims, dead-letter and ack on the real 3-primary cluster,
on streams owned by nodes other than the one in the URL. Dead-letter is tested with the DLQ in the
source's slot (one atomic script) and in another slot (select / copy with a mark / ack), each run
twice, and with an interruption between the copy and the acknowledgement."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from streamctl.config import Settings
from streamctl.core import pending as pending_mod
from streamctl.core.connection import connect
from streamctl.core.pending import PendingFilter, dead_letter, dlq_marks_key
from tests.cluster.conftest import node_of, spread_names


def remote(rc: Any, cluster: Any, prefix: str) -> str:
    """A stream name owned by a node other than the first (the one in the URL)."""
    first = f"127.0.0.1:{cluster.nodes[0].port}"
    return [n for n in spread_names(rc, prefix) if node_of(rc, n) != first][0]


def apart(rc: Any, cluster: Any) -> tuple[str, str]:
    """(stream, dlq): on two different nodes, neither the first one."""
    first = f"127.0.0.1:{cluster.nodes[0].port}"
    stream = [n for n in spread_names(rc, "orders") if node_of(rc, n) != first][0]
    dlq = [
        n for n in spread_names(rc, "dead") if node_of(rc, n) not in (first, node_of(rc, stream))
    ]
    return stream, dlq[0]


def pending_ids(rc: Any, stream: str, group: str) -> list[str]:
    return [p["message_id"].decode() for p in rc.xpending_range(stream, group, "-", "+", 10_000)]


def deliver(rc: Any, stream: str, group: str, consumer: str, times: int) -> list[str]:
    """Entries of the stream delivered `times` times to `consumer` (read, then re-claimed)."""
    rc.xgroup_create(stream, group, "0")
    got = rc.xreadgroup(group, consumer, {stream: ">"})
    ids = [eid.decode() for eid, _ in got[0][1]]
    for _ in range(times - 1):
        rc.xclaim(stream, group, consumer, 0, ids)
    return ids


# ---- groups ----


def test_group_lifecycle_on_another_node(cluster, rc, cli_cluster):
    name = remote(rc, cluster, "orders")
    ids = [rc.xadd(name, {"n": str(i)}).decode() for i in range(5)]
    res = cli_cluster("group", "create", name, "billing", "--from", "0", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert (res.json()["created"], res.json()["entries_read"]) == (True, 0)
    res = cli_cluster("group", "create", name, "billing")
    assert res.exit_code == 1
    assert res.stderr == (
        f"error: group 'billing' already exists on stream {name!r} (--exist-ok makes that a "
        "success)\n"
    )
    assert cli_cluster("group", "create", name, "billing", "--exist-ok").exit_code == 0

    res = cli_cluster("group", "ls", name, "-o", "json")
    assert res.exit_code == 0, res.stderr
    [g] = res.json()
    assert (g["group"], g["lag"], g["pending"], g["last_delivered_id"]) == ("billing", 5, 0, "0-0")

    res = cli_cluster("group", "setid", name, "billing", "--to", ids[2], "-o", "json")
    assert res.exit_code == 0, res.stderr
    plan = res.json()
    assert (plan["executed"], plan["skip"], plan["new"]["lag"]) == (False, 2, 3)
    assert (plan["new"]["last_delivered_id"], plan["next_id"]) == (ids[1], ids[2])
    assert rc.xinfo_groups(name)[0]["last-delivered-id"] == b"0-0"  # a plan changes nothing
    res = cli_cluster("group", "setid", name, "billing", "--to", ids[2], "--execute")
    assert res.exit_code == 0, res.stderr
    [info] = rc.xinfo_groups(name)
    assert (info["last-delivered-id"].decode(), info["lag"], info["entries-read"]) == (ids[1], 3, 2)

    rc.xreadgroup("billing", "c1", {name: ">"}, count=1)
    res = cli_cluster("group", "consumers", name, "billing", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert [(c["consumer"], c["pending"]) for c in res.json()] == [("c1", 1)]
    res = cli_cluster("group", "delconsumer", name, "billing", "c1")
    assert res.exit_code == 6
    res = cli_cluster("group", "delconsumer", name, "billing", "c1", "--reassign-to", "c2")
    assert res.exit_code == 0, res.stderr
    assert [c["name"] for c in rc.xinfo_consumers(name, "billing")] == [b"c2"]
    assert pending_ids(rc, name, "billing") == [ids[2]]

    res = cli_cluster("group", "destroy", name, "billing")
    assert res.exit_code == 6
    assert "has 1 pending entry" in res.stderr
    res = cli_cluster("group", "destroy", name, "billing", "--force", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == {"stream": name, "group": "billing", "destroyed": True,
                          "pending_dropped": 1}  # fmt: skip
    assert rc.xinfo_groups(name) == []


def test_group_on_a_missing_stream(cluster, rc, cli_cluster):
    name = remote(rc, cluster, "nope")
    res = cli_cluster("group", "ls", name)
    assert res.exit_code == 4
    assert res.stderr == f"error: stream {name!r} does not exist\n"
    res = cli_cluster("group", "create", name, "g", "--no-mkstream")
    assert res.exit_code == 4
    res = cli_cluster("group", "create", name, "g", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["stream_created"] is True
    assert rc.type(name) == b"stream"


# ---- pending, claim, ack ----


def test_pending_and_claim_on_another_node(cluster, rc, cli_cluster):
    name = remote(rc, cluster, "orders")
    for i in range(4):
        rc.xadd(name, {"n": str(i)})
    ids = deliver(rc, name, "billing", "c1", 1)
    res = cli_cluster("pending", name, "billing", "-o", "json")
    assert res.exit_code == 0, res.stderr
    report = res.json()
    assert (report["count"], report["consumers"]) == (4, [{"consumer": "c1", "pending": 4}])
    assert [e["id"] for e in report["entries"]] == ids

    res = cli_cluster("pending", name, "billing", "--claim", "--to", "c2", "--id", ids[0],
                      "-o", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert res.json()["claimed"] == [ids[0]]
    res = cli_cluster("pending", name, "billing", "--claim", "--to", "c3", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["claimed"] == ids
    owners = {p["message_id"].decode(): p["consumer"].decode()
              for p in rc.xpending_range(name, "billing", "-", "+", 10)}  # fmt: skip
    assert owners == dict.fromkeys(ids, "c3")

    res = cli_cluster("ack", name, "billing", ids[0], ids[1], "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == {"stream": name, "group": "billing", "requested": 2, "acked": 2,
                          "not_pending": 0}  # fmt: skip
    res = cli_cluster("ack", name, "billing", "--stdin", "-o", "json",
                      input=f"{ids[1]}\n{ids[2]}\n")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert (res.json()["acked"], res.json()["not_pending"]) == (1, 1)
    assert pending_ids(rc, name, "billing") == [ids[3]]
    res = cli_cluster("ack", name, "nogroup", ids[3])
    assert res.exit_code == 4


# ---- dead letter ----


def dlq_rows(rc: Any, dlq: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rc.xrange(dlq)]


def setup_dead_letters(rc: Any, stream: str) -> tuple[list[str], list[str]]:
    """Six entries: four delivered three times (two to c1, two to c2), two delivered once."""
    ids = [rc.xadd(stream, {"n": str(i)}).decode() for i in range(6)]
    rc.xgroup_create(stream, "billing", "0")
    rc.xreadgroup("billing", "c1", {stream: ">"})
    for _ in range(2):
        rc.xclaim(stream, "billing", "c1", 0, ids[:2])
        rc.xclaim(stream, "billing", "c2", 0, ids[2:4])
    return ids[:4], ids[4:]


@pytest.mark.parametrize("same_slot", [True, False], ids=["same-slot", "cross-slot"])
def test_dead_letter_moves_once_even_when_run_twice(cluster, rc, cli_cluster, same_slot):
    stream, dlq = apart(rc, cluster)
    if same_slot:
        stream, dlq = "{orders}.a", "{orders}.dlq"
        assert rc.keyslot(stream) == rc.keyslot(dlq)
    else:
        assert node_of(rc, stream) != node_of(rc, dlq)
    moved, kept = setup_dead_letters(rc, stream)
    res = cli_cluster("pending", stream, "billing", "--dead-letter", dlq, "--max-deliveries", "3",
                      "-o", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    report = res.json()
    assert [m["id"] for m in report["moved"]] == moved
    assert [m["consumer"] for m in report["moved"]] == ["c1", "c1", "c2", "c2"]
    assert all(m["deliveries"] == 3 for m in report["moved"])
    assert [m["dlq_id"] for m in report["moved"]] == [e[0].decode() for e in rc.xrange(dlq)]
    expected = [
        {"n": str(i), "dlq_stream": stream, "dlq_group": "billing", "dlq_id": eid,
         "dlq_consumer": "c1" if i < 2 else "c2", "dlq_deliveries": "3"}
        for i, eid in enumerate(moved)
    ]  # fmt: skip
    assert dlq_rows(rc, dlq) == expected
    assert pending_ids(rc, stream, "billing") == kept
    assert rc.xlen(stream) == 6  # the source is a log: the originals stay
    # a second run finds nothing left to move
    res = cli_cluster("pending", stream, "billing", "--dead-letter", dlq, "--max-deliveries", "3",
                      "-o", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert res.json()["moved"] == []
    assert dlq_rows(rc, dlq) == expected
    assert rc.exists(dlq_marks_key(dlq)) == 0  # marks are removed once acknowledged


def test_cross_slot_dead_letter_interrupted_before_the_ack(cluster, rc, monkeypatch):
    """The copy step ran, the ack did not (the connection dropped): the entries stay pending with
    their marks; the rerun acknowledges them without a second copy."""
    stream, dlq = apart(rc, cluster)
    assert rc.keyslot(stream) != rc.keyslot(dlq)
    moved, kept = setup_dead_letters(rc, stream)
    client = connect(Settings(url=cluster.url))
    real = pending_mod.raw_command

    def ack_fails(c: Any, *args: Any) -> Any:
        if args[0] == "XACK":
            raise redis.ConnectionError("connection dropped before the ack")
        return real(c, *args)

    monkeypatch.setattr(pending_mod, "raw_command", ack_fails)
    with pytest.raises(redis.ConnectionError):
        dead_letter(client, stream, "billing", dlq, 3)
    assert len(dlq_rows(rc, dlq)) == 4  # copied...
    assert pending_ids(rc, stream, "billing") == moved + kept  # ...but not acknowledged
    marks = rc.hgetall(dlq_marks_key(dlq))
    assert sorted(json.loads(k)[3] for k in marks) == moved
    first_copies = [e[0].decode() for e in rc.xrange(dlq)]

    monkeypatch.setattr(pending_mod, "raw_command", real)
    result = dead_letter(client, stream, "billing", dlq, 3)
    assert [m.id for m in result.moved] == moved
    assert [m.dlq_id for m in result.moved] == first_copies  # the copies of the first run
    assert len(dlq_rows(rc, dlq)) == 4  # no second copy
    assert pending_ids(rc, stream, "billing") == kept
    assert rc.exists(dlq_marks_key(dlq)) == 0
    client.close()


def test_cross_slot_dead_letter_of_deleted_and_filtered_entries(cluster, rc, cli_cluster):
    stream, dlq = apart(rc, cluster)
    moved, kept = setup_dead_letters(rc, stream)
    rc.xdel(stream, moved[0])  # deleted while pending: acknowledged, nothing to copy
    res = cli_cluster("pending", stream, "billing", "--dead-letter", dlq, "--max-deliveries", "3",
                      "--consumer", "c1", "-o", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    report = res.json()
    assert [m["id"] for m in report["moved"]] == [moved[1]]
    assert [m["id"] for m in report["deleted"]] == [moved[0]]
    assert pending_ids(rc, stream, "billing") == moved[2:] + kept
    assert [r["dlq_id"] for r in dlq_rows(rc, dlq)] == [moved[1]]
    # dry run: what would go, nothing changes
    res = cli_cluster("pending", stream, "billing", "--dead-letter", dlq, "--max-deliveries", "3",
                      "--dry-run", "-o", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert [m["id"] for m in res.json()["moved"]] == moved[2:]
    assert pending_ids(rc, stream, "billing") == moved[2:] + kept
    assert rc.xlen(dlq) == 1


def test_cross_slot_dead_letter_into_a_key_that_is_not_a_stream(cluster, rc, cli_cluster):
    stream, dlq = apart(rc, cluster)
    moved, kept = setup_dead_letters(rc, stream)
    rc.set(dlq, "x")
    res = cli_cluster("pending", stream, "billing", "--dead-letter", dlq, "--max-deliveries", "3")
    assert res.exit_code == 1
    assert res.stderr == (
        f"error: WRONGTYPE: dead-letter key {dlq!r} holds a string, not a stream\n"
    )
    assert pending_ids(rc, stream, "billing") == moved + kept


def test_dead_letter_filter_by_idle_selects_nothing_recent(cluster, rc):
    stream, dlq = apart(rc, cluster)
    moved, kept = setup_dead_letters(rc, stream)
    client = connect(Settings(url=cluster.url))
    result = dead_letter(client, stream, "billing", dlq, 3, PendingFilter(min_idle_ms=3_600_000))
    assert (result.moved, result.deleted) == ([], [])
    assert rc.exists(dlq) == 0
    client.close()
