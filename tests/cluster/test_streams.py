"""publish (one event and --file), range, info and ls on the real 3-primary cluster, with streams
spread over the three shards: exact output, exit codes, and what each node holds afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cluster.conftest import node_of, spread_names


def node_holding(cluster: Any, rc: Any, key: str) -> Any:
    port = int(node_of(rc, key).split(":")[1])
    [node] = [n for n in cluster.nodes if n.port == port]
    return node.client()


def test_publish_one_event_per_shard_then_range(cluster, rc, cli_cluster):
    names = spread_names(rc, "orders")
    ids = {}
    for i, name in enumerate(names):
        res = cli_cluster("publish", name, f"n={i}", "status=new", "-o", "json")
        assert res.exit_code == 0, res.stderr
        [row] = res.json()
        assert row["stream"] == name
        ids[name] = row["id"]
    for i, name in enumerate(names):
        assert node_holding(cluster, rc, name).xrange(name) == [
            (ids[name].encode(), {b"n": str(i).encode(), b"status": b"new"})
        ]
        res = cli_cluster("range", name, "-o", "ndjson")
        assert res.exit_code == 0, res.stderr
        [entry] = res.ndjson()
        assert (entry["stream"], entry["id"], entry["fields"]) == (
            name,
            ids[name],
            {"n": str(i), "status": "new"},
        )


def test_publish_file_pipelined_on_the_streams_node(cluster, rc, cli_cluster, tmp_path: Path):
    name = [n for n in spread_names(rc, "bulk") if node_of(rc, n) != node_of(rc, "x")][-1]
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps({"n": i, "kind": "bulk"}) + "\n" for i in range(5000)))
    res = cli_cluster("publish", name, "--file", str(path), "-o", "json")
    assert res.exit_code == 0, res.stderr
    rows = res.json()
    assert len(rows) == 5000
    owner = node_holding(cluster, rc, name)
    assert owner.xlen(name) == 5000
    entries = owner.xrange(name)
    assert [e[0].decode() for e in entries] == [r["id"] for r in rows]
    assert [int(e[1][b"n"]) for e in entries] == list(range(5000))
    for node in cluster.nodes:
        if node.port != owner.connection_pool.connection_kwargs["port"]:
            assert node.client().dbsize() == 0


def test_publish_refusals_name_the_stream(rc, cli_cluster):
    name = spread_names(rc, "typed")[1]
    rc.set(name, "x")
    res = cli_cluster("publish", name, "k=v")
    assert res.exit_code == 1
    assert res.stderr == f"error: WRONGTYPE: key {name!r} is not a stream\n"
    res = cli_cluster("publish", "missing-" + name, "k=v", "--no-mkstream")
    assert res.exit_code == 4
    assert res.stderr == f"error: stream 'missing-{name}' does not exist (--no-mkstream)\n"


def test_range_batches_and_reverse(rc, cli_cluster):
    name = spread_names(rc, "long")[2]
    ids = [rc.xadd(name, {"n": str(i)}).decode() for i in range(2500)]
    res = cli_cluster("range", name, "-o", "ndjson")
    assert res.exit_code == 0, res.stderr
    assert [e["id"] for e in res.ndjson()] == ids
    res = cli_cluster("range", name, "--reverse", "--count", "3", "-o", "ndjson")
    assert [e["id"] for e in res.ndjson()] == ids[::-1][:3]
    res = cli_cluster("range", "nope-" + name)
    assert res.exit_code == 4
    assert res.stderr == f"error: stream 'nope-{name}' does not exist\n"


def test_info_of_a_stream_on_another_node(rc, cli_cluster):
    name = spread_names(rc, "inf")[2]
    first = rc.xadd(name, {"a": "1"}).decode()
    last = rc.xadd(name, {"a": "2"}).decode()
    rc.xgroup_create(name, "billing", "0")
    res = cli_cluster("info", name, "-o", "json")
    assert res.exit_code == 0, res.stderr
    info = res.json()
    assert (info["name"], info["length"], info["first_id"], info["last_id"]) == (
        name,
        2,
        first,
        last,
    )
    assert info["last_entry"]["fields"] == {"a": "2"}
    assert [(g["stream"], g["group"]) for g in info["groups"]] == [(name, "billing")]
    assert info["groups"][0]["lag"] == 2
    # the node the stream is on, not the one of the URL
    assert info["connected"] == {
        "address": node_of(rc, name),
        "role": "primary",
        "master_name": None,
    }


def test_ls_lists_streams_of_every_shard(cluster, rc, cli_cluster):
    names = spread_names(rc, "orders", 6)
    assert len({node_of(rc, n) for n in names}) == 3
    for i, name in enumerate(names):
        for _ in range(i + 1):
            rc.xadd(name, {"k": "v"})
    rc.xgroup_create(names[4], "g", "0")
    rc.set("orders-not-a-stream", "x")
    rc.xadd("payments", {"k": "v"})
    res = cli_cluster("ls", "orders-*", "-o", "json")
    assert res.exit_code == 0, res.stderr
    rows = res.json()
    assert [r["name"] for r in rows] == sorted(names)
    assert {r["name"]: (r["length"], r["groups"]) for r in rows} == {
        n: (i + 1, 1 if i == 4 else 0) for i, n in enumerate(names)
    }
    assert {r["name"]: r["connected"]["address"] for r in rows} == {
        n: node_of(rc, n) for n in names
    }
    assert {r["connected"]["role"] for r in rows} == {"primary"}
    res = cli_cluster("ls", "-o", "json", "--memory")
    assert res.exit_code == 0, res.stderr
    rows = res.json()
    assert [r["name"] for r in rows] == sorted([*names, "payments"])
    assert all(isinstance(r["memory_bytes"], int) and r["memory_bytes"] > 0 for r in rows)
    # each node holds its own share: ls did scan all three
    held = [
        sum(1 for k in n.client().scan_iter(_type="stream", match="orders-*"))
        for n in cluster.nodes
    ]
    assert sorted(held) == [2, 2, 2]


def test_ls_on_an_empty_cluster(cli_cluster):
    res = cli_cluster("ls", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == []
