"""Helpers for the tests on the real 3-primary cluster (the `cluster`, `rc` and `cli_cluster`
fixtures are in tests/conftest.py): stream names placed on chosen nodes, and waits on every node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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
