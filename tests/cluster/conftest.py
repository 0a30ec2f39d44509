"""Helpers for the tests on the real 3-primary cluster (the `cluster`, `rc` and `cli_cluster`
fixtures are in tests/conftest.py): stream names placed on chosen nodes, and waits on every node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest


def node_of(rc: Any, key: str) -> str:
    """host:port of the primary owning the key's slot."""
    return str(rc.get_node_from_key(key).name)


def primary_names(rc: Any) -> list[str]:
    return sorted((str(n.name) for n in rc.get_primaries()), key=lambda n: int(n.split(":")[1]))


def spread_names(rc: Any, prefix: str, count: int = 3) -> list[str]:
    """`count` stream names starting with `prefix`, each in another slot, covering every primary
    (one per primary first, in the primaries' order), e.g. orders-0, orders-5, orders-2."""
    by_node: dict[str, list[str]] = {n: [] for n in primary_names(rc)}
    slots: set[int] = set()
    per_node = -(-count // len(by_node))
    i = 0
    while any(len(v) < per_node for v in by_node.values()):
        name = f"{prefix}-{i}"
        i += 1
        if rc.keyslot(name) in slots:
            continue
        slots.add(rc.keyslot(name))
        by_node[node_of(rc, name)].append(name)
    names = [v[k] for k in range(per_node) for v in by_node.values()][:count]
    assert len({rc.keyslot(n) for n in names}) == len(names)
    if count >= len(by_node):
        assert {node_of(rc, n) for n in names} == set(by_node)
    return names


def blocked_clients(cluster: Any) -> int:
    return sum(int(n.client().info("clients")["blocked_clients"]) for n in cluster.nodes)


def wait_blocked(cluster: Any, clients: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while blocked_clients(cluster) < clients:
        assert time.monotonic() < deadline, "nothing blocked"
        time.sleep(0.01)


def when_blocked(cluster: Any, action: Callable[[], object], clients: int) -> threading.Thread:
    """Run `action` in a thread once `clients` clients are blocked (BLOCK) over the nodes."""

    def wait_then_act() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if blocked_clients(cluster) >= clients:
                action()
                return
            time.sleep(0.01)

    t = threading.Thread(target=wait_then_act, daemon=True)
    t.start()
    return t


@pytest.fixture
def spread(rc: Any) -> Callable[..., list[str]]:
    """spread("orders") -> three stream names, one on each primary."""

    def make(prefix: str, count: int = 3) -> list[str]:
        return spread_names(rc, prefix, count)

    return make


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


@dataclass
class Migration:
    """One slot moving from `source` to `target` (ports), in the steps of a reshard."""

    cluster: Any
    ids: dict[int, str]
    slot: int
    source: int
    target: int

    def node(self, port: int) -> Any:
        [found] = [n for n in self.cluster.nodes if n.port == port]
        return found.client()

    def start(self) -> None:
        """IMPORTING on the target, MIGRATING on the source: a missing key answers ASK."""
        self.node(self.target).execute_command(
            "CLUSTER", "SETSLOT", self.slot, "IMPORTING", self.ids[self.source]
        )
        self.node(self.source).execute_command(
            "CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.ids[self.target]
        )

    def migrate(self, *keys: str) -> None:
        """MIGRATE these keys only (the others of the slot stay on the source: a command on
        keys of both sides is answered TRYAGAIN)."""
        self.node(self.source).execute_command(
            "MIGRATE", "127.0.0.1", self.target, "", 0, 5000, "KEYS", *keys
        )

    def migrate_keys(self) -> int:
        """MIGRATE every key of the slot to the target; how many there were."""
        source = self.node(self.source)
        keys = source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, 1000)
        if keys:
            source.execute_command("MIGRATE", "127.0.0.1", self.target, "", 0, 5000, "KEYS", *keys)
        return len(keys)

    def finish(self) -> None:
        """SETSLOT NODE on the target, the source, then the others: the source answers MOVED."""
        order = [self.target, self.source] + [
            p for p in self.ids if p not in (self.source, self.target)
        ]
        for port in order:
            self.node(port).execute_command(
                "CLUSTER", "SETSLOT", self.slot, "NODE", self.ids[self.target]
            )
        assert owner_port(self.cluster, self.slot) == self.target

    def whole(self) -> None:
        self.start()
        self.migrate_keys()
        self.finish()

    def keys_left(self) -> int:
        """How many keys of the slot the source still holds."""
        return int(self.node(self.source).execute_command("CLUSTER", "COUNTKEYSINSLOT", self.slot))

    def new_owner(self) -> Any:
        return self.node(self.target)


@pytest.fixture
def migration(cluster: Any, rc: Any) -> Iterator[Callable[[str], Migration]]:
    """migration(key) -> the steps that move the key's slot to the next node; the slot goes
    back (emptied) to its owner at the end of the test."""
    ids = {n.port: n.client().execute_command("CLUSTER", "MYID").decode() for n in cluster.nodes}
    made: list[Migration] = []

    def make(key: str) -> Migration:
        slot = rc.keyslot(key)
        home = owner_port(cluster, slot)
        ports = sorted(ids)
        made.append(Migration(cluster, ids, slot, home, ports[(ports.index(home) + 1) % 3]))
        return made[-1]

    yield make
    for m in made:
        # what a test wrote there goes: the slot moves back empty. The source's keys first (a
        # test may stop halfway: the source must hold none before the slot is given away)
        for port in (m.source, m.target):
            c = m.node(port)
            keys = c.execute_command("CLUSTER", "GETKEYSINSLOT", m.slot, 1000)
            if keys:
                c.delete(*keys)
            if port == m.source:
                m.finish()
        # moved back as it came (IMPORTING first): the source takes a new config epoch, so no
        # node goes back to the target's claim, which the target's own epoch bump made newer
        Migration(cluster, ids, m.slot, m.target, m.source).whole()


def numbers(client: Any, key: str) -> list[int]:
    return [int(fields[b"n"]) for _, fields in client.xrange(key)]


def try_again_replies(cluster: Any) -> int:
    """How many TRYAGAIN replies the nodes have given (INFO errorstats)."""
    total = 0
    for node in cluster.nodes:
        stat = node.client().info("errorstats").get("errorstat_TRYAGAIN")
        total += int(stat["count"]) if stat else 0
    return total
