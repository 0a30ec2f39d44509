"""`trace`, `group prune` and `redrive` on the real 3-primary cluster: keys on nodes other than
the one in the URL; redrive in one step where the DLQ and the target share a slot, and with the
idempotency marks across slots (an interruption after the copy: the rerun publishes nothing
twice)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import streamctl
from streamctl.core import redrive as redrive_mod
from streamctl.core.pending import dlq_marks_key
from tests.cluster.test_groups_pending import apart, remote


def dead_letter(rc: Any, dlq: str, stream: str, sid: str, n: str) -> str:
    fields = {"n": n, "dlq_stream": stream, "dlq_group": "g", "dlq_id": sid,
              "dlq_consumer": "w1", "dlq_deliveries": "4"}  # fmt: skip
    return str(rc.xadd(dlq, fields).decode())


def published(rc: Any, stream: str) -> list[tuple[str, str]]:
    return [(f[b"n"].decode(), f[b"redriven_from"].decode()) for _, f in rc.xrange(stream)]


def test_trace_and_prune_on_another_node(cluster, rc, cli_cluster):
    stream, dlq = apart(rc, cluster)
    sid = rc.xadd(stream, {"n": "1"}).decode()
    rc.xgroup_create(stream, "g", "0")
    rc.xreadgroup("g", "w1", {stream: ">"})
    copy = dead_letter(rc, dlq, stream, sid, "1")
    res = cli_cluster("trace", stream, sid, "--dlq", dlq, "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert [(g["group"], g["state"], g["consumer"]) for g in data["groups"]] == [
        ("g", "pending", "w1")
    ]
    assert [d["id"] for d in data["dead_letters"]] == [copy]
    assert cli_cluster("trace", stream, "1-0").exit_code == 4

    rc.xgroup_createconsumer(stream, "g", "idle")
    plan = cli_cluster("group", "prune", stream, "g", "--idle", "0", "--execute", "-o", "json")
    assert plan.exit_code == 0, plan.stderr
    assert plan.json()["measure"] == "inactive"
    assert [(c["consumer"], c["deleted"]) for c in plan.json()["consumers"]] == [
        ("idle", True),
        ("w1", False),
    ]
    assert [c["name"] for c in rc.xinfo_consumers(stream, "g")] == [b"w1"]


@pytest.mark.parametrize("same_slot", [True, False])
def test_redrive_moves_once_even_when_run_twice(cluster, rc, cli_cluster, same_slot):
    if same_slot:
        stream, dlq = "{orders}", "{orders}-dlq"
    else:
        stream, dlq = apart(rc, cluster)
    other = remote(rc, cluster, "payments")
    ids = [dead_letter(rc, dlq, (stream, other)[i % 2], f"{i + 1}-0", str(i)) for i in range(6)]
    res = cli_cluster("redrive", dlq, "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["per_stream"] == dict(sorted({stream: 3, other: 3}.items()))
    assert published(rc, stream) == [("0", ids[0]), ("2", ids[2]), ("4", ids[4])]
    assert published(rc, other) == [("1", ids[1]), ("3", ids[3]), ("5", ids[5])]
    assert rc.xlen(dlq) == 0
    assert rc.exists(dlq_marks_key(stream)) == rc.exists(dlq_marks_key(other)) == 0
    again = cli_cluster("redrive", dlq, "-o", "json")
    assert again.json()["redriven"] == 0 and rc.xlen(stream) == 3


def test_cross_slot_redrive_interrupted_after_the_copy(cluster, rc, monkeypatch):
    """The copy step ran, the XDEL did not (the connection dropped): the entries stay in the DLQ
    with their marks; the rerun deletes them without publishing them again."""
    stream, dlq = apart(rc, cluster)
    ids = [dead_letter(rc, dlq, stream, f"{i + 1}-0", str(i)) for i in range(4)]
    real = redrive_mod.raw_command

    def xdel_fails(c: Any, *args: Any) -> Any:
        if args[0] == "XDEL":
            raise redis.ConnectionError("connection dropped before the XDEL")
        return real(c, *args)

    monkeypatch.setattr(redrive_mod, "raw_command", xdel_fails)
    with streamctl.connect(cluster.url) as sc:
        with pytest.raises(streamctl.StreamctlError) as failed:
            sc.redrive(dlq)
        assert failed.value.exit_code == 3
        assert "rerun to continue" in str(failed.value)
        first = [e.decode() for e, _ in rc.xrange(stream)]
        assert len(first) == 4 and rc.xlen(dlq) == 4  # copied, not yet deleted
        assert rc.hlen(dlq_marks_key(stream)) == 4

        monkeypatch.setattr(redrive_mod, "raw_command", real)
        result = sc.redrive(dlq)
    assert (result.redriven, result.last_new_id) == (4, first[-1])  # the first run's copies
    assert [e.decode() for e, _ in rc.xrange(stream)] == first  # nothing published twice
    assert published(rc, stream) == [(str(i), ids[i]) for i in range(4)]
    assert rc.xlen(dlq) == 0 and rc.exists(dlq_marks_key(stream)) == 0
