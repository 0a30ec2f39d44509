"""A slot that changes node while a command runs (a resharding) is reported in one line, exit 3,
and nothing is written: the MOVED reply means the node did not run the command. A rerun, which
reads the new slot map, succeeds. The slot is moved back after each test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamctl.config import Settings
from streamctl.core import connection
from streamctl.core.streams import publish_many
from streamctl.core.wire import raw_command
from streamctl.errors import ConnectionFailed, PartialFailure
from tests.cluster.conftest import wait_blocked
from tests.conftest import invoke


def owner_port(cluster: Any, slot: int) -> int:
    """The port of the slot's owner, once every node agrees on it."""
    deadline = time.monotonic() + 10
    while True:
        owners = set()
        for node in cluster.nodes:
            for first, last, primary, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
                if first <= slot <= last:
                    owners.add(int(primary[1]))
        if len(owners) == 1:
            return owners.pop()
        assert time.monotonic() < deadline, f"nodes disagree on slot {slot}: {owners}"
        time.sleep(0.05)


@pytest.fixture
def mover(cluster: Any, rc: Any) -> Iterator[Callable[[str], str]]:
    """mover(key) moves the key's (empty) slot to the next node and returns that node's
    host:port; the slot goes back to its owner at the end of the test."""
    ids = {n.port: n.client().execute_command("CLUSTER", "MYID").decode() for n in cluster.nodes}
    moved: list[tuple[int, int]] = []

    def assign(slot: int, port: int) -> None:
        for node in cluster.nodes:  # what a test wrote there goes: a slot moves empty
            c = node.client()
            keys = c.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
            if keys:
                c.delete(*keys)
        for node in cluster.nodes:
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[port])
        assert owner_port(cluster, slot) == port

    def move(key: str) -> str:
        slot = rc.keyslot(key)
        home = owner_port(cluster, slot)
        ports = sorted(ids)
        target = ports[(ports.index(home) + 1) % len(ports)]
        moved.append((slot, home))
        assign(slot, target)
        return f"127.0.0.1:{target}"

    yield move
    for slot, home in moved:
        assign(slot, home)


def moved_message(cluster: Any, rc: Any, key: str, to: str) -> str:
    return (
        f"the cluster at {cluster.url} is moving slots (MOVED {rc.keyslot(key)} {to}): a slot "
        "changed node while the command ran; rerun it"
    )


def test_one_command_is_reported_and_a_rerun_works(cluster, rc, mover):
    client = connection.connect(Settings(url=cluster.url))
    assert connection.is_cluster(client)  # the slot map is read now
    key = "reshard-1"
    to = mover(key)
    with pytest.raises(ConnectionFailed) as info:
        raw_command(client, "XADD", key, "*", "k", "v")
    assert info.value.message == moved_message(cluster, rc, key, to)
    with pytest.raises(PartialFailure) as bulk:
        publish_many(client, key, [{"n": i} for i in range(3000)])
    assert bulk.value.message == (
        moved_message(cluster, rc, key, to)
        + "; 0 events were published before it (rerun with --skip 0 to publish the rest)"
    )
    assert bulk.value.exit_code == 3
    assert rc.exists(key) == 0
    # a new run reads the new map
    res = invoke(["-u", cluster.url, "publish", key, "k=v"])
    assert res.exit_code == 0, res.stderr
    [node] = [n for n in cluster.nodes if f"127.0.0.1:{n.port}" == to]
    assert node.client().xlen(key) == 1
    client.close()


def test_tail_blocked_on_a_moving_slot_exits_3_in_one_line(cluster, rc, mover):
    key = "reshard-2"
    result: dict[str, Any] = {}

    def run() -> None:
        result["res"] = invoke(["-u", cluster.url, "tail", key, "--timeout", "20s"])

    t = threading.Thread(target=run)
    t.start()
    wait_blocked(cluster, 1)
    to = mover(key)
    t.join(30)
    res = result["res"]
    assert res.exit_code == 3
    assert res.stdout == ""
    assert res.stderr.startswith(f"error: the cluster at {cluster.url} is moving slots (MOVED ")
    assert f" {to}): " in res.stderr
    assert len(res.stderr.splitlines()) == 1
