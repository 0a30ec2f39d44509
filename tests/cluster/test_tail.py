"""tail on the real 3-primary cluster: a stream set spread over the three shards is followed
together (plain XREAD and --group), streams sharing a hash tag are read in one call, nothing is
lost or read twice while publishers write to every shard, and group mode acknowledges what it
wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from tests.cluster.conftest import (
    blocked_clients,
    node_of,
    spread_names,
    wait_blocked,
    when_blocked,
)
from tests.conftest import ISOLATED_ENV_DROP


def pending_ids(rc: Any, stream: str, group: str) -> list[str]:
    return [p["message_id"].decode() for p in rc.xpending_range(stream, group, "-", "+", 10_000)]


def fill(rc: Any, names: list[str], per_stream: int) -> dict[str, list[str]]:
    return {
        n: [rc.xadd(n, {"n": str(i), "s": n}).decode() for i in range(per_stream)] for n in names
    }


def by_stream(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["stream"], []).append(row["id"])
    return out


def test_no_follow_reads_every_shard(rc, cli_cluster):
    names = spread_names(rc, "orders") + ["{orders}.a", "{orders}.b"]
    assert len({node_of(rc, n) for n in names}) == 3
    ids = fill(rc, names, 3)
    res = cli_cluster("tail", *names, "--from", "0", "--no-follow", "-o", "ndjson")
    assert res.exit_code == 0, res.stderr
    rows = res.ndjson()
    assert len(rows) == 15
    assert by_stream(rows) == ids
    assert all(r["fields"]["s"] == r["stream"] for r in rows)


def test_no_follow_from_dollar_prints_nothing(rc, cli_cluster):
    names = spread_names(rc, "orders")
    fill(rc, names, 2)
    res = cli_cluster("tail", *names, "--no-follow", "-o", "ndjson")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""


def test_follows_new_entries_on_every_shard(cluster, rc, cli_cluster):
    names = spread_names(rc, "orders")
    fill(rc, names, 2)  # before the start: not printed (--from $)
    added: list[tuple[str, str]] = []

    def publish() -> None:
        for name in names:
            added.append((name, rc.xadd(name, {"k": "new"}).decode()))
            time.sleep(0.05)

    t = when_blocked(cluster, publish, clients=3)
    res = cli_cluster("tail", *names, "--count", "3", "--timeout", "20s", "-o", "ndjson")
    t.join()
    assert res.exit_code == 0, res.stderr
    assert [(r["stream"], r["id"]) for r in res.ndjson()] == added
    assert blocked_clients(cluster) == 0  # the waiting reads were cut at the end


def test_streams_with_one_hash_tag_are_read_in_one_call(cluster, rc, cli_cluster):
    other = [n for n in spread_names(rc, "p") if node_of(rc, n) != node_of(rc, "{orders}")][0]
    streams = ["{orders}.a", other, "{orders}.b"]
    for name in streams:
        rc.xadd(name, {"k": "old"})
    added: list[tuple[str, str]] = []
    blocked: list[int] = []

    def publish() -> None:
        time.sleep(0.2)
        blocked.append(blocked_clients(cluster))
        for name in streams:
            added.append((name, rc.xadd(name, {"k": "new"}).decode()))
            time.sleep(0.05)

    t = when_blocked(cluster, publish, clients=2)
    res = cli_cluster("tail", *streams, "--count", "3", "--timeout", "20s", "-o", "ndjson")
    t.join()
    assert res.exit_code == 0, res.stderr
    assert blocked == [2]  # one XREAD for both {orders} streams, one for the other
    assert sorted((r["stream"], r["id"]) for r in res.ndjson()) == sorted(added)
    assert [r["fields"] for r in res.ndjson()] == [{"k": "new"}] * 3


def test_nothing_lost_or_twice_while_every_shard_is_written(cluster, rc, cli_cluster):
    names = spread_names(rc, "busy")
    total = 600
    published: dict[str, list[str]] = {n: [] for n in names}

    def publish() -> None:
        for i in range(total):
            name = names[i % 3]
            published[name].append(rc.xadd(name, {"n": str(i)}).decode())
            if i % 50 == 0:
                time.sleep(0.01)

    t = when_blocked(cluster, publish, clients=3)
    res = cli_cluster("tail", *names, "--count", str(total), "--timeout", "20s", "-o", "ndjson")
    t.join()
    assert res.exit_code == 0, res.stderr
    rows = res.ndjson()
    assert len(rows) == total
    assert by_stream(rows) == published


def test_wait_for_event_over_shards_times_out_exit_5(rc, cli_cluster):
    names = spread_names(rc, "quiet")
    fill(rc, names, 1)
    started = time.monotonic()
    res = cli_cluster("tail", *names, "--count", "1", "--timeout", "1s")
    assert res.exit_code == 5
    assert res.stderr == "error: timed out after 1s without a new entry: saw 0 of 1 entry\n"
    assert 0.9 <= time.monotonic() - started < 5


def test_wait_for_event_finds_a_match_on_the_third_shard(rc, cli_cluster):
    names = spread_names(rc, "ci")
    rc.xadd(names[0], {"status": "created"})
    eid = rc.xadd(names[2], {"status": "shipped"}).decode()
    res = cli_cluster(
        "tail", *names, "--from", "0", "--match", "status=shipped", "--count", "1",
        "--timeout", "5s", "-o", "ndjson",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert [(r["stream"], r["id"]) for r in res.ndjson()] == [(names[2], eid)]


# ---- group mode ----


def test_group_reads_and_acks_every_shard(rc, cli_cluster):
    names = spread_names(rc, "orders")
    ids = fill(rc, names, 4)
    for name in names:
        rc.xgroup_create(name, "billing", "0")
    res = cli_cluster(
        "tail", *names, "--group", "billing", "--consumer", "c1", "--no-follow", "-o", "ndjson"
    )
    assert res.exit_code == 0, res.stderr
    assert by_stream(res.ndjson()) == ids
    for name in names:
        assert pending_ids(rc, name, "billing") == []
        [g] = rc.xinfo_groups(name)
        assert g["last-delivered-id"].decode() == ids[name][-1]


def test_group_create_and_follow_every_shard(cluster, rc, cli_cluster):
    names = spread_names(rc, "orders")
    fill(rc, names, 2)  # before the group: not delivered ($)
    added: list[tuple[str, str]] = []

    def publish() -> None:
        for _ in range(2):
            for name in names:
                added.append((name, rc.xadd(name, {"k": "new"}).decode()))
        time.sleep(0.05)

    t = when_blocked(cluster, publish, clients=3)
    res = cli_cluster(
        "tail", *names, "-g", "billing", "-c", "c1", "--create-group", "--count", "6",
        "--timeout", "20s", "-o", "ndjson",
    )  # fmt: skip
    t.join()
    assert res.exit_code == 0, res.stderr
    assert sorted((r["stream"], r["id"]) for r in res.ndjson()) == sorted(added)
    assert by_stream(res.ndjson()) == by_stream(
        [{"stream": s, "id": i} for s, i in added]
    )  # per-stream order kept
    assert res.stderr == "".join(f"created group 'billing' on stream {n!r} at $\n" for n in names)
    for name in names:
        assert pending_ids(rc, name, "billing") == []
        assert rc.xinfo_groups(name)[0]["consumers"] == 1


def test_group_no_ack_leaves_every_shard_pending(rc, cli_cluster):
    names = spread_names(rc, "orders")
    ids = fill(rc, names, 2)
    for name in names:
        rc.xgroup_create(name, "billing", "0")
    res = cli_cluster(
        "tail", *names, "-g", "billing", "-c", "c1", "--no-ack", "--no-follow", "-o", "ndjson"
    )
    assert res.exit_code == 0, res.stderr
    assert by_stream(res.ndjson()) == ids
    assert "6 entries delivered to consumer 'c1' were left pending in group 'billing'" in (
        res.stderr
    )
    for name in names:
        assert pending_ids(rc, name, "billing") == ids[name]


def test_two_group_consumers_share_every_shard_exactly_once(cluster, rc):
    """Two `tail --group` processes while 300 events are published over three shards: each
    event is written by exactly one of them, and everything is acknowledged."""
    names = spread_names(rc, "shared")
    for name in names:
        rc.xgroup_create(name, "g", "$", mkstream=True)
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamctl",
                "-u",
                cluster.url,
                "tail",
                *names,
                "-g",
                "g",
                "-c",
                consumer,
                "--timeout",
                "3s",
                "-o",
                "ndjson",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )  # fmt: skip
        for consumer in ("c1", "c2")
    ]
    try:
        wait_blocked(cluster, 6)
        published = []
        for i in range(300):
            name = names[i % 3]
            published.append((name, rc.xadd(name, {"n": str(i)}).decode()))
        seen: list[tuple[str, str]] = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            rows = [json.loads(line) for line in out.decode().splitlines()]
            seen += [(r["stream"], r["id"]) for r in rows]
    finally:
        for proc in procs:
            proc.kill()
    assert len(seen) == 300
    assert sorted(seen) == sorted(published)
    for name in names:
        assert pending_ids(rc, name, "g") == []


def test_group_follow_survives_a_stalled_node_exactly_once(cluster, rc):
    """A node stops answering (SIGSTOP) while `follow` waits on three shards in group mode: the
    stall is noticed (its read's own timeout), retried, and after SIGCONT every event is written
    once and acknowledged."""
    from streamctl.config import Settings
    from streamctl.core.connection import connect
    from streamctl.core.follow import FollowOptions, follow
    from streamctl.ids import parse_position

    names = spread_names(rc, "stall")
    for name in names:
        rc.xgroup_create(name, "g", "$", mkstream=True)
    [stalled] = [n for n in cluster.nodes if node_of(rc, names[1]) == f"127.0.0.1:{n.port}"]
    opts = FollowOptions(
        streams=tuple(names),
        start=parse_position("$", allow_last=True),
        group="g",
        consumer="c1",
        count=7,
        idle_timeout_ms=30_000,
        retry_for_ms=20_000,
        command_timeout_s=0.5,
        block_chunk_ms=300,
    )
    client = connect(Settings(url=cluster.url, timeout=0.5), socket_timeout=None)
    written: list[tuple[str, str]] = []
    notices: list[str] = []
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = follow(
                client, opts, lambda s, raw: written.append((s, raw[0].decode())),
                on_notice=notices.append,
            )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcome["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    wait_blocked(cluster, 3)
    published = [(n, rc.xadd(n, {"k": "before"}).decode()) for n in names]
    deadline = time.monotonic() + 10
    while len(written) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stalled.pause()
    try:
        published += [(n, rc.xadd(n, {"k": "during"}).decode()) for n in (names[0], names[2])]
        time.sleep(2)  # longer than a read's BLOCK + timeout: the stall is noticed
    finally:
        stalled.resume()
    published += [(names[1], rc.xadd(names[1], {"k": "after"}).decode()) for _ in range(2)]
    t.join(30)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert sorted(written) == sorted(published)
    assert len(set(written)) == 7
    assert result.acked == 7 and result.reconnects >= 1
    assert any(n.startswith("connection lost") for n in notices), notices
    assert any(n.startswith("reconnected") for n in notices), notices
    for name in names:
        assert pending_ids(rc, name, "g") == []
    client.close()
