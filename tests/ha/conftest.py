"""Fixtures for high availability, per server kind (Redis 8.2, Valkey 9.1): a Sentinel topology,
and a cluster of three primaries with a replica each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.conftest import REQUIRE_ALL, Run, invoke
from tests.ha.cluster_topology import ReplicatedCluster, start_replicated_cluster
from tests.ha.topology import SentinelTopology, start_sentinel_topology
from tests.servers import server_binary

HA_KINDS = ("redis8.2", "valkey9.1")


@pytest.fixture(scope="session", params=HA_KINDS)
def sentinel_topology(request: pytest.FixtureRequest) -> Iterator[SentinelTopology]:
    """A primary, a replica and three Sentinels (session scope, one per kind). A test that
    fails over leaves the roles swapped: ask `primary()` rather than remembering a port."""
    kind = request.param
    if server_binary(kind) is None:
        if REQUIRE_ALL:
            pytest.fail(f"{kind} server not available (STREAMCTL_TEST_ALL_SERVERS=1)")
        pytest.skip(f"{kind} server not available")
    topo = start_sentinel_topology(kind)
    yield topo
    topo.stop()


@pytest.fixture
def ha(sentinel_topology: SentinelTopology) -> Iterator[SentinelTopology]:
    """The topology, settled, with the primary flushed (and the replica with it)."""
    sentinel_topology.wait_healthy()
    for sentinel in sentinel_topology.sentinels:
        sentinel.resume()
    primary = sentinel_topology.primary().client()
    primary.flushall()
    primary.execute_command("WAIT", 1, 5000)
    primary.close()
    yield sentinel_topology


@pytest.fixture
def hr(ha: SentinelTopology) -> Iterator[redis.Redis]:
    """A plain client of the current primary (asked of the Sentinels at the test's start)."""
    client = ha.primary().client()
    yield client
    client.close()


@pytest.fixture
def cli_ha(ha: SentinelTopology) -> Any:
    """streamctl through the Sentinels: cli_ha("range", "s", "-o", "json")."""

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Run:
        return invoke(["-u", ha.url, *args], input=input, env=env)

    return run


# ---- a cluster of three primaries with a replica each (replica promotion) ----


@pytest.fixture(scope="session", params=HA_KINDS)
def replicated_cluster(request: pytest.FixtureRequest) -> Iterator[ReplicatedCluster]:
    """Three primaries, one replica each (session scope, one per kind). A test that promotes a
    replica leaves the roles swapped: ask `primary_of(key)` rather than remembering a port."""
    kind = request.param
    if server_binary(kind) is None:
        if REQUIRE_ALL:
            pytest.fail(f"{kind} server not available (STREAMCTL_TEST_ALL_SERVERS=1)")
        pytest.skip(f"{kind} server not available")
    topo = start_replicated_cluster(kind)
    yield topo
    topo.stop()


@pytest.fixture
def hc(replicated_cluster: ReplicatedCluster) -> Iterator[ReplicatedCluster]:
    """The replicated cluster, settled, every primary flushed (and its replica with it)."""
    replicated_cluster.reset()
    yield replicated_cluster


@pytest.fixture
def hcc(hc: ReplicatedCluster) -> Iterator[redis.RedisCluster]:
    """A cluster client (redis-py) of the replicated cluster."""
    client = redis.RedisCluster(host="127.0.0.1", port=hc.nodes[0].port, protocol=2)
    yield client
    client.close()
