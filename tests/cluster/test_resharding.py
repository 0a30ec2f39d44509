"""A slot that changes node while commands run (a resharding, done here by hand as
`redis-cli --cluster reshard` does it: SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT NODE) is
followed: a MOVED reply reads the slot map again and the command goes to the new owner, an ASK
reply sends ASKING and the command to the importing node. One command, a bulk publish and a
blocked tail all succeed across it; what they wrote is checked on the new owner. The slot goes
back to its owner after each test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from streamctl.config import Settings
from streamctl.core import connection
from streamctl.core.streams import publish_many
from streamctl.core.wire import raw_command, raw_pipeline
from streamctl.errors import ConnectionFailed
from tests.cluster.conftest import blocked_clients, numbers, wait_blocked
from tests.conftest import invoke


def test_one_command_follows_ask_then_moved(cluster, rc, migration):
    client = connection.connect(Settings(url=cluster.url))
    assert connection.is_cluster(client)  # the slot map is read now
    key = "reshard-1"
    rc.xadd(key, {"n": 0})
    m = migration(key)
    m.start()
    m.migrate_keys()  # the key is on the target now: the source answers ASK
    raw_command(client, "XADD", key, "*", "n", 1)
    [xlen, added] = raw_pipeline(client, [("XLEN", key), ("XADD", key, "*", "n", 2)])
    assert xlen == 2
    assert added.count(b"-") == 1
    m.finish()  # the source answers MOVED; the client's map still names it
    raw_command(client, "XADD", key, "*", "n", 3)
    assert numbers(m.new_owner(), key) == [0, 1, 2, 3]
    assert m.keys_left() == 0
    client.close()


def test_pipeline_follows_moved_for_the_commands_redirected(cluster, rc, migration, spread):
    client = connection.connect(Settings(url=cluster.url))
    a, b, c = spread("reshard-p")
    for name in (a, b, c):
        rc.xadd(name, {"n": 0})
    assert connection.is_cluster(client)
    migration(b).whole()
    replies = raw_pipeline(client, [("XADD", n, "*", "n", 1) for n in (a, b, c)])
    assert all(isinstance(r, bytes) for r in replies), replies
    for name in (a, b, c):  # each written once
        assert numbers(rc, name) == [0, 1]
    client.close()


def test_multi_block_is_sent_again_whole_after_ask_then_moved(cluster, rc, migration):
    client = connection.connect(Settings(url=cluster.url))
    key = "reshard-6"
    rc.xadd(key, {"n": 0})
    m = migration(key)
    assert connection.is_cluster(client)
    m.start()
    m.migrate_keys()  # ASK: the block goes whole to the target, after ASKING
    block = [("MULTI",), ("XADD", key, "*", "n", 1), ("XLEN", key), ("EXEC",)]
    *_, (added, xlen) = raw_pipeline(client, block)
    assert added.count(b"-") == 1 and xlen == 2
    m.finish()  # MOVED: the block goes whole to the new owner
    *_, (added, xlen) = raw_pipeline(client, block)
    assert xlen == 3
    assert numbers(m.new_owner(), key) == [0, 1, 1]
    client.close()


def test_bulk_publish_across_a_migration_writes_each_event_once_in_order(cluster, rc, migration):
    client = connection.connect(Settings(url=cluster.url))
    key = "reshard-2"
    total = 30_000
    m = migration(key)
    assert connection.is_cluster(client)
    steps = {8_000: m.start, 9_000: m.migrate_keys, 20_000: m.finish}

    def events() -> Iterator[dict[str, str]]:
        for n in range(total):
            if n in steps:  # while batches are in flight
                steps[n]()
            yield {"n": str(n)}

    notices: list[str] = []
    published = publish_many(client, key, events(), batch_size=500, on_notice=notices.append)
    assert published == total
    assert numbers(m.new_owner(), key) == list(range(total))
    assert m.keys_left() == 0
    client.close()


def test_bulk_publish_from_a_file_across_a_moved_slot(cluster, rc, migration, tmp_path):
    key = "reshard-3"
    m = migration(key)
    total = 200_000
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps({"n": str(n)}) + "\n" for n in range(total)))
    result: dict[str, Any] = {}

    def run() -> None:
        result["res"] = invoke(["-u", cluster.url, "publish", key, "--file", str(path)])

    t = threading.Thread(target=run)
    t.start()
    owner = m.node(m.source)
    deadline = time.monotonic() + 30
    while owner.exists(key) == 0 or owner.xlen(key) < 1000:
        assert time.monotonic() < deadline, "publish did not start"
        time.sleep(0.001)
    m.whole()
    t.join(120)
    res = result["res"]
    assert res.exit_code == 0, res.stderr
    assert numbers(m.new_owner(), key) == list(range(total))


def tail_in_thread(args: list[str]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        result["res"] = invoke(args)

    t = threading.Thread(target=run)
    t.start()
    return t, result


def wait_blocked_on(node: Any, clients: int = 1) -> None:
    deadline = time.monotonic() + 20
    while int(node.info("clients")["blocked_clients"]) < clients:
        assert time.monotonic() < deadline, "nothing blocked there"
        time.sleep(0.01)


def test_blocked_tail_follows_its_stream_to_the_new_owner(cluster, rc, migration):
    key = "reshard-4"
    for n in range(3):
        rc.xadd(key, {"n": n})
    m = migration(key)
    t, result = tail_in_thread(
        ["-u", cluster.url, "tail", key, "--from", "0", "-n", "6", "-o", "ndjson"]
        + ["--timeout", "20s"]
    )
    wait_blocked(cluster, 1)
    m.whole()  # the blocked read is answered MOVED
    wait_blocked_on(m.new_owner())
    for n in range(3, 6):
        m.new_owner().xadd(key, {"n": n})
    t.join(30)
    res = result["res"]
    assert res.exit_code == 0, res.stderr
    assert [json.loads(line)["fields"]["n"] for line in res.stdout.splitlines()] == [
        str(n) for n in range(6)
    ]
    assert blocked_clients(cluster) == 0


def test_blocked_tail_of_streams_on_several_nodes_follows_one_that_moves(
    cluster, rc, migration, spread
):
    a, b, c = spread("reshard-t")
    m = migration(b)
    t, result = tail_in_thread(
        ["-u", cluster.url, "tail", a, b, c, "-n", "4", "-o", "ndjson", "--timeout", "20s"]
    )
    wait_blocked(cluster, 3)
    rc.xadd(b, {"n": 0})  # read, then blocked again on the source
    wait_blocked(cluster, 3)
    m.whole()
    wait_blocked_on(m.new_owner())
    for n, name in enumerate((b, a, c), start=1):
        rc.xadd(name, {"n": n})
    t.join(30)
    res = result["res"]
    assert res.exit_code == 0, res.stderr
    got = [
        (json.loads(line)["stream"], json.loads(line)["fields"]["n"])
        for line in res.stdout.splitlines()
    ]
    assert sorted(got, key=lambda x: x[1]) == [(b, "0"), (b, "1"), (a, "2"), (c, "3")]
    assert numbers(m.new_owner(), b) == [0, 1]


def test_no_cluster_against_a_node_still_reports_moved_in_one_line(cluster, rc, migration):
    key = "reshard-5"
    m = migration(key)
    m.whole()
    client = connection.connect(Settings(url=f"redis://127.0.0.1:{m.source}", cluster=False))
    with pytest.raises(ConnectionFailed) as info:
        raw_command(client, "XADD", key, "*", "n", 1)
    assert info.value.message.startswith(
        f"redis://127.0.0.1:{m.source} is a Redis Cluster node (MOVED {m.slot} "
        f"127.0.0.1:{m.target}): drop --no-cluster"
    )
    client.close()


def test_a_sender_writes_to_the_new_owner_after_a_slot_moved(cluster, rc, migration):
    """A bulk writer (publish --file, import, replay --into) follows a MOVED reply once: the
    batches after it go to the slot's new owner, not to the old one to be redirected again."""
    from streamctl.core import wire

    client = connection.connect(Settings(url=cluster.url))
    key = "sender-moves"
    m = migration(key)
    old = m.node(m.source)

    def moved_replies() -> int:
        stat = old.info("errorstats").get("errorstat_MOVED")
        return int(stat["count"]) if stat else 0

    sender = wire.PipelinedSender(client, key)
    try:
        batch = [wire.pack(("XADD", key, "*", "n", str(n))) for n in range(10)]
        assert len(sender.exchange(batch)) == 10  # on the old owner
        m.whole()
        before = moved_replies()
        assert len(sender.exchange(batch)) == 10  # redirected: MOVED, sent again
        assert moved_replies() == before + 10
        for _ in range(3):
            assert len(sender.exchange(batch)) == 10
        assert moved_replies() == before + 10  # no batch went to the old owner again
    finally:
        sender.close()
        client.close()
    assert int(m.new_owner().xlen(key)) == 50
