"""Cluster mode on the real 3-primary cluster: detection without a flag, --cluster, a profile's
cluster: true, the routing helpers, and the one-line messages when the mode is forced wrong
(--no-cluster against the cluster, --cluster against a single server) or the URL cannot reach a
cluster (a database other than 0)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamctl.config import Settings
from streamctl.core import connection
from tests.cluster.conftest import node_of, spread_names
from tests.conftest import invoke

ID_LINE = re.compile(r"\d+-\d+\n")


def owner_port(rc: Any, key: str) -> int:
    return int(node_of(rc, key).split(":")[1])


def owner_client(cluster: Any, rc: Any, key: str) -> redis.Redis:
    """A plain client of the node owning `key`."""
    [node] = [n for n in cluster.nodes if n.port == owner_port(rc, key)]
    return node.client()


def test_detected_without_a_flag_each_stream_on_its_node(cluster, rc, cli_cluster):
    names = spread_names(rc, "orders")
    for name in names:
        res = cli_cluster("publish", name, "n=1")
        assert res.exit_code == 0, res.stderr
        assert ID_LINE.fullmatch(res.stdout)
        assert res.stderr == ""
        assert owner_client(cluster, rc, name).xrange(name)[0][0].decode() == res.stdout.strip()
    for node in cluster.nodes:
        held = sorted(k.decode() for k in node.client().keys("*"))
        assert held == [n for n in names if owner_port(rc, n) == node.port]
        assert len(held) == 1


def test_connect_detects_the_cluster_at_the_first_routed_command(cluster, rc):
    client = connection.connect(Settings(url=cluster.url))
    assert type(client).__name__ == "_Client"  # nothing sent yet
    assert connection.is_cluster(client)
    names = spread_names(rc, "s")
    for name in names:
        node = connection.node_client(client, name)
        assert f"127.0.0.1:{node.connection_pool.connection_kwargs['port']}" == node_of(rc, name)
    ports = sorted(
        p.connection_pool.connection_kwargs["port"] for p in connection.primaries(client)
    )
    assert ports == sorted(n.port for n in cluster.nodes)
    groups = connection.slot_groups(client, ["{orders}.a", names[0], "{orders}.b", names[1]])
    assert [g[1] for g in groups] == [["{orders}.a", "{orders}.b"], [names[0]], [names[1]]]
    assert connection.same_slot(client, "{orders}.a", "{orders}.b")
    assert not connection.same_slot(client, names[0], names[1])
    # the custom connection and parser classes are those of every node
    node = connection.node_client(client, names[2])
    assert node.connection_pool.connection_class.__name__ == "_Connection"
    conn = node.connection_pool.get_connection()
    try:
        assert type(conn._parser).__name__ == "_Parser"
    finally:
        node.connection_pool.release(conn)
    assert connection.server_time_ms(client) > 0
    assert connection.server_version(client)[0] == "redis"
    client.close()


def test_connect_to_a_single_server_stays_a_single_client(one_server, r1):
    client = connection.connect(Settings(url=one_server.url))
    assert not connection.is_cluster(client)
    assert connection.node_client(client, "a") is client
    assert connection.primaries(client) == [client]
    assert connection.slot_groups(client, ["a", "b"]) == [(client, ["a", "b"])]
    assert connection.same_slot(client, "a", "b")
    client.close()


def test_forced_cluster_flag_works_on_the_cluster(rc, cluster):
    names = spread_names(rc, "forced")
    for name in names:
        res = invoke(["-u", cluster.url, "--cluster", "publish", name, "k=v"])
        assert res.exit_code == 0, res.stderr
    res = invoke(["-u", cluster.url, "--cluster", "ls", "forced-*", "-o", "json"])
    assert res.exit_code == 0, res.stderr
    assert [s["name"] for s in res.json()] == sorted(names)


def test_profile_cluster_true(rc, cluster, tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(f"profiles:\n  prod:\n    url: {cluster.url}\n    cluster: true\n")
    names = spread_names(rc, "prof")
    res = invoke(["--config", str(config), "-P", "prod", "publish", names[2], "k=v"])
    assert res.exit_code == 0, res.stderr
    assert rc.xlen(names[2]) == 1


def test_no_cluster_against_the_cluster_is_one_line(rc, cluster):
    names = spread_names(rc, "orders")
    elsewhere = [n for n in names if owner_port(rc, n) != cluster.nodes[0].port]
    here = [n for n in names if owner_port(rc, n) == cluster.nodes[0].port]
    for name in elsewhere:
        slot, owner = rc.keyslot(name), node_of(rc, name)
        for args in (["publish", name, "k=v"], ["range", name], ["info", name]):
            res = invoke(["-u", cluster.url, "--no-cluster", *args])
            assert res.exit_code == 3, (args, res.stderr)
            assert res.stdout == ""
            assert res.stderr == (
                f"error: {cluster.url} is a Redis Cluster node (MOVED {slot} {owner}): drop "
                "--no-cluster (or the profile's cluster: false) so that each key is sent to the "
                "node that owns it\n"
            )
        assert rc.exists(name) == 0
    # a key the first node owns needs no redirect: forced single-server mode works for it
    res = invoke(["-u", cluster.url, "--no-cluster", "publish", here[0], "k=v"])
    assert res.exit_code == 0, res.stderr
    assert rc.xlen(here[0]) == 1


def test_no_cluster_tail_over_two_slots_is_one_line(rc, cluster):
    here = [n for n in spread_names(rc, "t", 6) if owner_port(rc, n) == cluster.nodes[0].port]
    for name in here:
        rc.xadd(name, {"k": "v"})
    res = invoke(
        ["-u", cluster.url, "--no-cluster", "tail", *here[:2], "--from", "0", "--no-follow"]
    )
    assert res.exit_code == 3, res.stderr
    assert res.stderr.startswith(f"error: {cluster.url} is a Redis Cluster node (CROSSSLOT ")
    assert res.stderr.endswith("drop --no-cluster (or the profile's cluster: false) so that "
                               "each key is sent to the node that owns it\n")  # fmt: skip


def test_cluster_flag_against_a_single_server_is_one_line(one_server, r1):
    for args in (["publish", "s", "k=v"], ["ls"], ["tail", "s", "--no-follow"]):
        res = invoke(["-u", one_server.url, "--cluster", *args])
        assert res.exit_code == 3, (args, res.stderr)
        assert res.stdout == ""
        assert res.stderr == (
            f"error: {one_server.url} is not a Redis Cluster (cluster mode is not enabled on "
            "it): drop --cluster, or the profile's cluster: true\n"
        )
    assert r1.exists("s") == 0


def test_a_database_in_the_url_of_a_cluster_is_exit_2(rc, cluster):
    url = cluster.url.rsplit("/", 1)[0] + "/1"
    expected = f"error: bad URL {url}: a Redis Cluster has only database 0 (drop /1 from the URL)\n"
    for flags in ([], ["--cluster"]):
        res = invoke(["-u", url, *flags, "publish", "s", "k=v"])
        assert res.exit_code == 2, res.stderr
        assert res.stderr == expected
    res = invoke(["-u", url, "--no-cluster", "publish", "s", "k=v"])
    assert res.exit_code == 2, res.stderr
    assert res.stderr == (
        f"error: bad URL {url}: it is a Redis Cluster node, and a cluster has only database 0 "
        "(drop the database from the URL)\n"
    )
    assert rc.exists("s") == 0


@pytest.fixture
def no_info_user(cluster: Any, rc: Any) -> Iterator[str]:
    """A user (on every node) who may use streams but not INFO: detection cannot ask."""
    name = f"u{uuid.uuid4().hex[:8]}"
    for node in cluster.nodes:
        node.client().execute_command(
            "ACL", "SETUSER", name, "on", ">pw-7", "~*", "+@stream", "+@connection", "+type"
        )
    yield name
    for node in cluster.nodes:
        node.client().execute_command("ACL", "DELUSER", name)


def test_a_user_who_may_not_run_info_is_told_to_give_cluster(rc, cluster, no_info_user):
    url = cluster.url.replace("redis://", f"redis://{no_info_user}:pw-7@")
    shown = cluster.url.replace("redis://", f"redis://{no_info_user}:***@")
    name = [n for n in spread_names(rc, "acl") if owner_port(rc, n) != cluster.nodes[0].port][0]
    res = invoke(["-u", url, "publish", name, "k=v"])
    assert res.exit_code == 3, res.stderr
    assert res.stderr == (
        f"error: {shown} is a Redis Cluster node (MOVED {rc.keyslot(name)} {node_of(rc, name)}): "
        "give --cluster (or cluster: true in the profile)\n"
    )
    assert "pw-7" not in res.stderr


def test_same_slot_key_shares_the_slot_of_any_name(rc):
    for key in ["dlq", "{orders}.dlq", "a}b", "{}x", "x{}y{z}", "é{ü}", "orders-7"]:
        mark = connection.same_slot_key(key, "streamctl-dlq-marks")
        assert mark.startswith("streamctl-dlq-marks:{")
        assert rc.keyslot(mark) == rc.keyslot(key), key
    assert connection.same_slot_key("{orders}.dlq", "m") == "m:{orders}"
    assert connection.hash_tag("{orders}.a") == "orders"
    assert connection.hash_tag("{}orders") is None


def test_command_key_routes_raw_commands():
    key = connection.command_key
    assert key(("XADD", "s", "*", "k", "v")) == "s"
    assert key(("XINFO", "GROUPS", "s")) == "s"
    assert key(("XGROUP", "CREATE", "s", "g", "$")) == "s"
    assert key(("XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "STREAMS", "a", "b", ">", ">")) == "a"
    assert key(("XREAD", "BLOCK", 0, "STREAMS", "a", "$")) == "a"
    assert key(("MEMORY", "USAGE", "s")) == "s"
    assert key(("TIME",)) is None
    assert key(("MULTI",)) is None
