"""ls and info on the three real servers."""

from __future__ import annotations


def test_ls_lists_streams_only(cli, r, server):
    r.xadd("orders", {"a": 1}, id="1795773600000-0")
    r.xadd("orders", {"a": 2}, id="1795773660000-0")
    r.xadd("payments", {"a": 1}, id="1795773600000-0")
    r.xgroup_create("orders", "billing", id="0")
    r.set("not-a-stream", "x")
    res = cli("ls", "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert [s["name"] for s in data] == ["orders", "payments"]
    orders = data[0]
    age = orders.pop("last_age_ms")
    assert isinstance(age, int) and age >= 0
    # where it was read: the server's address and role
    assert orders.pop("connected") == {
        "address": f"127.0.0.1:{server.port}",
        "role": "primary",
        "master_name": None,
    }
    assert orders == {
        "name": "orders",
        "length": 2,
        "groups": 1,
        "first_id": "1795773600000-0",
        "first_time": "2026-11-27T10:00:00.000Z",
        "last_id": "1795773660000-0",
        "last_time": "2026-11-27T10:01:00.000Z",
    }


def test_ls_pattern_and_memory(cli, r):
    for name in ("orders.eu", "orders.us", "users"):
        r.xadd(name, {"a": 1})
    res = cli("ls", "orders.*", "--memory", "-o", "json")
    assert [s["name"] for s in res.json()] == ["orders.eu", "orders.us"]
    assert all(s["memory_bytes"] > 0 for s in res.json())


def test_ls_empty_stream_and_table(cli, r, server):
    r.xadd("e", {"a": 1})
    r.xtrim("e", maxlen=0, approximate=False)
    res = cli("ls", "-o", "table")
    assert res.exit_code == 0
    assert res.lines[0].strip() == f"on 127.0.0.1:{server.port} (primary)"
    assert any(line.split()[:3] == ["e", "0", "0"] for line in res.lines)
    assert cli("ls", "zzz*", "-o", "json").json() == []


def test_info_in_full(cli, r, server):
    r.xadd("orders", {"a": "1"}, id="1795773600000-0")
    r.xadd("orders", {"a": "2"}, id="1795773600000-1")
    r.xadd("orders", {"a": "3"}, id="1795773700000-0")
    r.xdel("orders", "1795773600000-1")
    r.xgroup_create("orders", "billing", id="1795773600000-0")
    res = cli("info", "orders", "-o", "json")
    assert res.exit_code == 0, res.stderr
    info = res.json()
    assert info["length"] == 2
    assert (info["first_id"], info["last_id"]) == ("1795773600000-0", "1795773700000-0")
    assert info["last_generated_id"] == "1795773700000-0"
    assert info["entries_added"] == 3
    assert info["max_deleted_id"] == "1795773600000-1"
    assert info["first_entry"]["fields"] == {"a": "1"}
    assert info["connected"] == {
        "address": f"127.0.0.1:{server.port}",
        "role": "primary",
        "master_name": None,
    }
    [group] = info["groups"]
    assert group["group"] == "billing"
    assert group["last_delivered_id"] == "1795773600000-0"
    assert group["last_delivered_time"] == "2026-11-27T10:00:00.000Z"
    # the server cannot know the lag after a deletion past the group: streamctl counts it
    assert group["lag"] == 1
    assert group["behind_ms"] == 100_000


def test_info_table(cli, r, server):
    r.xadd("orders", {"a": "1"}, id="1795773600000-0")
    res = cli("info", "orders", "-o", "table")
    assert res.exit_code == 0
    assert ["connected", f"127.0.0.1:{server.port}", "(primary)"] in [
        line.split() for line in res.lines
    ]
    assert "1795773600000-0  2026-11-27T10:00:00.000Z" in res.stdout
    assert "no consumer groups" in res.stdout


def test_info_missing_and_wrong_type(cli, r):
    res = cli("info", "nope")
    assert (res.exit_code, res.stderr) == (4, "error: stream 'nope' does not exist\n")
    r.set("k", "v")
    assert cli("info", "k").exit_code == 1


def test_ls_tells_which_streams_the_user_may_not_read(cli, r, server, run_cli):
    r.xadd("public", {"a": 1})
    r.xadd("secret", {"a": 1})
    r.execute_command(
        "ACL", "SETUSER", "lister", "on", ">lister-pw", "~public", "+@all", "-@dangerous", "+scan"
    )
    url = server.url.replace("redis://", "redis://lister:lister-pw@")
    try:
        res = run_cli(["-u", url, "ls", "-o", "json"])
        assert res.exit_code == 0, res.stderr
        assert [s["name"] for s in res.json()] == ["public"]
        assert res.stderr == (
            "1 stream not shown: this user may not read them (NOPERM): 'secret'\n"
        )
        assert run_cli(["-u", url, "-q", "ls", "-o", "json"]).stderr == ""
    finally:
        r.execute_command("ACL", "DELUSER", "lister")
