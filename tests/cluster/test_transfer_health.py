"""trim, replay, export/import, check, top, demo, bench and completion on the real 3-primary
cluster, with the source and the target of every copy on different nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamctl.config import Settings
from streamctl.core.completion import complete_groups, complete_streams
from tests.cluster.conftest import node_of, spread_names
from tests.conftest import invoke


def on_nodes(rc: Any, cluster: Any, prefix: str) -> list[str]:
    """Three names with `prefix`, one per node, the first one NOT on the URL's node."""
    first = f"127.0.0.1:{cluster.nodes[0].port}"
    names = spread_names(rc, prefix)
    return sorted(names, key=lambda n: node_of(rc, n) == first)


def entries(rc: Any, stream: str) -> list[tuple[str, dict[str, str]]]:
    return [
        (eid.decode(), {k.decode(): v.decode() for k, v in f.items()})
        for eid, f in rc.xrange(stream)
    ]


# ---- trim ----


def test_trim_on_another_node(cluster, rc, cli_cluster):
    name = on_nodes(rc, cluster, "trim")[0]
    ids = [rc.xadd(name, {"n": str(i)}).decode() for i in range(10)]
    res = cli_cluster("trim", name, "--maxlen", "4", "--dry-run", "-o", "json")
    assert res.exit_code == 0, res.stderr
    plan = res.json()
    assert (plan["entries"], plan["first_id"], plan["last_id"]) == (6, ids[0], ids[5])
    assert rc.xlen(name) == 10
    rc.xgroup_create(name, "billing", ids[2])  # has not read ids[3:]
    res = cli_cluster("trim", name, "--maxlen", "4")
    assert res.exit_code == 6
    assert "billing" in res.stderr
    assert rc.xlen(name) == 10
    res = cli_cluster("trim", name, "--maxlen", "4", "--force", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert (res.json()["removed"], res.json()["length_after"]) == (6, 4)
    assert [e[0] for e in entries(rc, name)] == ids[6:]


# ---- replay ----


def test_replay_into_a_stream_on_another_node(cluster, rc, cli_cluster):
    source, target, _ = on_nodes(rc, cluster, "replay")
    assert node_of(rc, source) != node_of(rc, target)
    ids = [rc.xadd(source, {"n": str(i), "status": "paid" if i % 2 else "new"}).decode()
           for i in range(2500)]  # fmt: skip
    res = cli_cluster("replay", source, "--from", ids[100], "--into", target, "--match",
                      "status=paid", "-o", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    report = res.json()
    assert (report["scanned"], report["copied"]) == (2400, 1200)
    copied = entries(rc, target)
    assert [f for _, f in copied] == [
        {"n": str(i), "status": "paid"} for i in range(100, 2500) if i % 2
    ]
    assert (report["first_new_id"], report["last_new_id"]) == (copied[0][0], copied[-1][0])
    assert rc.xlen(source) == 2500


def test_replay_into_another_url_of_the_same_cluster(cluster, rc, cli_cluster):
    source, target, _ = on_nodes(rc, cluster, "there")
    for i in range(5):
        rc.xadd(source, {"n": str(i)})
    other = cluster.nodes[2].url
    res = cli_cluster("replay", source, "--from", "0", "--into", target, "--target-url", other,
                      "-o", "json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert res.json()["copied"] == 5
    assert [f["n"] for _, f in entries(rc, target)] == ["0", "1", "2", "3", "4"]


def test_replay_group_rewinds_on_another_node(cluster, rc, cli_cluster):
    name = on_nodes(rc, cluster, "rewind")[0]
    ids = [rc.xadd(name, {"n": str(i)}).decode() for i in range(6)]
    rc.xgroup_create(name, "billing", "$")
    res = cli_cluster("replay", name, "--from", ids[2], "--group", "billing", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["redeliver"] == 4
    [g] = rc.xinfo_groups(name)
    assert (g["last-delivered-id"].decode(), g["lag"]) == (ids[1], 4)


# ---- export / import ----


def test_export_and_import_across_nodes(cluster, rc, cli_cluster, tmp_path: Path):
    source, target, third = on_nodes(rc, cluster, "exp")
    ids = [rc.xadd(source, {"n": str(i)}).decode() for i in range(1500)]
    rc.xgroup_create(source, "billing", "0")
    rc.xreadgroup("billing", "c1", {source: ">"}, count=3)
    path = tmp_path / "export.ndjson"
    res = cli_cluster("export", source, "--with-groups", "-o", "ndjson")
    assert res.exit_code == 0, res.stderr
    path.write_text(res.stdout)
    rows = res.ndjson()
    assert rows[0]["group"]["pending"][0]["id"] == ids[0]
    assert [r["id"] for r in rows[1:]] == ids

    # --keep-ids into a stream on another node; a rerun skips what is there
    res = cli_cluster("import", target, str(path), "--keep-ids", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert (res.json()["imported"], res.json()["skipped"]) == (1500, 0)
    assert [e[0] for e in entries(rc, target)] == ids
    [g] = rc.xinfo_groups(target)
    assert (g["name"], g["pending"], g["last-delivered-id"].decode()) == (b"billing", 3, ids[2])
    res = cli_cluster("import", target, str(path), "--keep-ids", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert (res.json()["imported"], res.json()["skipped"]) == (0, 1500)
    assert rc.xlen(target) == 1500

    # without --keep-ids: new ids, the group's position and pending mapped onto them
    res = cli_cluster("import", third, str(path), "-o", "json")
    assert res.exit_code == 0, res.stderr
    new_ids = [e[0] for e in entries(rc, third)]
    assert len(new_ids) == 1500
    pend = [p["message_id"].decode() for p in rc.xpending_range(third, "billing", "-", "+", 10)]
    assert pend == new_ids[:3]


# ---- check / top ----


def test_check_without_names_scans_every_shard(cluster, rc, cli_cluster):
    names = spread_names(rc, "health")
    for i, name in enumerate(names):
        for _ in range(i + 2):
            rc.xadd(name, {"k": "v"})
        rc.xgroup_create(name, "billing", "0")
    res = cli_cluster("check", "--max-lag", "2", "-o", "json")
    assert res.exit_code == 5, res.stderr
    report = res.json()
    lags = {(c["stream"], c["group"]): (c["value"], c["status"]) for c in report["checks"]}
    assert lags == {
        (n, "billing"): (i + 2, "ok" if i == 0 else "breached") for i, n in enumerate(names)
    }
    assert res.stderr.startswith("error: 2 checks breached")
    res = cli_cluster("check", "--group", "billing", "--max-length", "10", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert sorted({c["stream"] for c in res.json()["checks"]}) == sorted(names)
    res = cli_cluster("check", names[2], "--max-length", "3", "-o", "json")
    assert res.exit_code == 5
    assert [(c["stream"], c["check"], c["value"]) for c in res.json()["checks"]] == [
        (names[2], "length", 4)
    ]
    res = cli_cluster("check", "nope-" + names[0])
    assert res.exit_code == 4


def test_top_once_covers_every_shard(cluster, rc, cli_cluster):
    names = spread_names(rc, "top")
    for i, name in enumerate(names):
        for _ in range(i + 1):
            rc.xadd(name, {"k": "v"})
    rc.xgroup_create(names[1], "billing", "0")
    res = cli_cluster("top", "top-*", "--once", "--interval", "0.1", "-o", "json")
    assert res.exit_code == 0, res.stderr
    streams = {s["stream"]: s for s in res.json()["streams"]}
    assert sorted(streams) == sorted(names)
    assert [streams[n]["length"] for n in names] == [1, 2, 3]
    assert [g["lag"] for g in streams[names[1]]["groups"]] == [2]


# ---- demo, bench, completion ----


def test_demo_runs_on_the_cluster_and_cleans_up(rc, cli_cluster):
    res = cli_cluster("demo", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert rc.keys("*") == []


def test_bench_on_the_cluster(rc, cli_cluster):
    res = cli_cluster("bench", "--events", "500", "--consumers", "2", "-o", "json")
    assert res.exit_code == 0, res.stderr
    report = res.json()
    assert (report["publish"]["events"], report["consume"]["events"]) == (500, 500)
    assert rc.keys("*") == []  # the scratch stream is deleted


def test_completion_lists_streams_and_groups_of_every_shard(cluster, rc):
    names = spread_names(rc, "comp")
    for name in names:
        rc.xadd(name, {"k": "v"})
    rc.xgroup_create(names[2], "billing", "0")
    settings = Settings(url=cluster.url)
    assert complete_streams(settings, "comp") == sorted(names)
    assert complete_groups(settings, names[2]) == ["billing"]
    res = invoke(["-u", cluster.url, "ls", "-o", "json"])
    assert sorted(r["name"] for r in res.json()) == sorted(names)
