"""A Redis Cluster of three primaries, each with one replica, for real replica promotions
(CLUSTER FAILOVER sent to a replica). A promotion leaves the roles swapped: ask `primary_of`
rather than remembering a port."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from redis.crc import key_slot

from tests.servers import ClusterProcess, ServerProcess, start_cluster


@dataclass(frozen=True)
class NodeView:
    """One line of CLUSTER NODES."""

    node_id: str
    port: int
    primary: bool
    replica_of: str | None  # the primary's id, for a replica
    slots: tuple[tuple[int, int], ...]
    failed: bool


def _nodes(server: ServerProcess) -> list[NodeView]:
    text = server.client().execute_command("CLUSTER", "NODES").decode()
    views = []
    for line in text.splitlines():
        parts = line.split()
        flags = parts[2].split(",")
        slots = []
        for part in parts[8:]:
            if part.startswith("["):
                continue  # a slot being migrated
            first, _, last = part.partition("-")
            slots.append((int(first), int(last or first)))
        views.append(
            NodeView(
                node_id=parts[0],
                port=int(parts[1].split("@")[0].rsplit(":", 1)[1]),
                primary="master" in flags,
                replica_of=None if parts[3] == "-" else parts[3],
                slots=tuple(sorted(slots)),
                failed="fail" in flags or "fail?" in flags,
            )
        )
    return views


@dataclass
class ReplicatedCluster:
    kind: str
    cluster: ClusterProcess

    @property
    def nodes(self) -> list[ServerProcess]:
        return self.cluster.nodes

    @property
    def url(self) -> str:
        """A node's URL: any node serves to find the others (streamctl detects the cluster)."""
        return self.cluster.url

    def node(self, port: int) -> ServerProcess:
        return next(n for n in self.nodes if n.port == port)

    def primaries(self) -> list[ServerProcess]:
        return [self.node(v.port) for v in _nodes(self.nodes[0]) if v.primary and v.slots]

    def primary_of(self, key: str) -> ServerProcess:
        """The node that holds `key`'s slot now (as the first node sees it)."""
        slot = key_slot(key.encode())
        for view in _nodes(self.nodes[0]):
            if view.primary and any(a <= slot <= b for a, b in view.slots):
                return self.node(view.port)
        raise LookupError(f"no primary holds slot {slot}")

    def replica_of(self, primary: ServerProcess) -> ServerProcess:
        views = _nodes(self.nodes[0])
        pid = next(v.node_id for v in views if v.port == primary.port)
        return self.node(next(v.port for v in views if v.replica_of == pid))

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every node says the cluster is ok and sees the same primaries with the same slots
        and each primary with one replica, and each replica's link to its primary is up."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                maps = set()
                for node in self.nodes:
                    info = node.client().execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info:
                        raise RuntimeError(f"{node.port}: {info.splitlines()[0]}")
                    views = _nodes(node)
                    if any(v.failed for v in views):
                        raise RuntimeError(f"{node.port} sees a failed node")
                    maps.add(
                        tuple(sorted((v.port, v.slots) for v in views if v.primary and v.slots))
                        + tuple(sorted((v.port, v.replica_of or "") for v in views))
                    )
                if len(maps) != 1:
                    raise RuntimeError(f"the nodes disagree: {maps}")
                primaries = self.primaries()
                assert len(primaries) == len(self.nodes) // 2, "a primary without a replica"
                for primary in primaries:
                    replica = self.replica_of(primary)
                    info = replica.client().info("replication")
                    if info.get("role") != "slave" or int(info["master_port"]) != primary.port:
                        raise RuntimeError(f"{replica.port} does not replicate {primary.port}")
                    if info.get("master_link_status") != "up":
                        raise RuntimeError(f"{replica.port}'s link is down")
                return
            except (redis.RedisError, RuntimeError, AssertionError, StopIteration) as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"the cluster did not settle: {last}")

    def reset(self) -> None:
        """Settled, every primary flushed (and its replica with it)."""
        self.wait_healthy()
        for primary in self.primaries():
            client = primary.client()
            client.flushall()
            client.execute_command("WAIT", 1, 5000)
            client.close()

    def failover(self, key: str, *options: str, timeout: float = 60.0) -> tuple[int, int]:
        """CLUSTER FAILOVER [FORCE|TAKEOVER] sent to the replica of the primary holding `key`,
        then wait until the cluster has settled with the replica holding the slot. Returns
        (old primary port, new primary port)."""
        old = self.primary_of(key)
        new = self.replica_of(old)
        new.client().execute_command("CLUSTER", "FAILOVER", *options)
        deadline = time.monotonic() + timeout
        again = time.monotonic() + 15  # a manual failover gives up after 5 s: asked again
        while time.monotonic() < deadline:
            if time.monotonic() > again:
                new.client().execute_command("CLUSTER", "FAILOVER", *options)
                again = time.monotonic() + 15
            try:
                if (
                    all(self.primary_of_on(node, key) == new.port for node in self.nodes)
                    and self.replica_of(new).port == old.port
                ):
                    break
            except (redis.RedisError, StopIteration, LookupError):
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError(f"CLUSTER FAILOVER {' '.join(options)} did not promote {new.port}")
        self.wait_healthy(timeout)
        return old.port, new.port

    @staticmethod
    def primary_of_on(node: ServerProcess, key: str) -> int | None:
        slot = key_slot(key.encode())
        for view in _nodes(node):
            if view.primary and any(a <= slot <= b for a, b in view.slots):
                return view.port
        return None

    def stop(self) -> None:
        self.cluster.stop()


def start_replicated_cluster(kind: str) -> ReplicatedCluster:
    topo = ReplicatedCluster(kind, start_cluster(kind, replicas=1))
    try:
        topo.wait_healthy()
    except BaseException:
        topo.stop()
        raise
    return topo
