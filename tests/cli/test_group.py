"""`group ls|create|destroy|setid|consumers|delconsumer` on the three real servers: exact json,
each refusal's exit code and one-line message, and the server's state afterwards."""

from __future__ import annotations

import pytest
import redis


def add(r: redis.Redis, n: int, stream: str = "s") -> list[str]:
    """n entries with ids 1000-0, 2000-0, ...: their times are under the test's control."""
    return [r.xadd(stream, {"n": str(i + 1)}, id=f"{(i + 1) * 1000}-0").decode() for i in range(n)]


def groups_state(r: redis.Redis, stream: str = "s") -> list[dict[str, object]]:
    return [dict(g) for g in r.xinfo_groups(stream)]


def one_line_error(res, code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert res.stderr == f"error: {message}\n"
    assert res.stdout == ""


# ---- group ls ----


def test_ls_shows_computed_lag_after_an_arbitrary_setid(cli, r):
    add(r, 10)
    r.xgroup_create("s", "g", id="0")
    r.xgroup_setid("s", "g", id="4000-0")
    assert r.xinfo_groups("s")[0]["lag"] is None  # the server does not know it
    res = cli("group", "ls", "s", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == [
        {
            "stream": "s",
            "group": "g",
            "consumers": 0,
            "pending": 0,
            "last_delivered_id": "4000-0",
            "last_delivered_time": "1970-01-01T00:00:04.000Z",
            "entries_read": None,
            "lag": 6,
            "lag_computed": True,
            "behind_ms": 6000,
        }
    ]
    table = cli("group", "ls", "s", "-o", "table")
    assert "6 (computed)" in table.stdout


def test_ls_missing_stream_and_no_groups(cli, r):
    one_line_error(cli("group", "ls", "nope"), 4, "stream 'nope' does not exist")
    add(r, 1)
    assert cli("group", "ls", "s", "-o", "json").json() == []


# ---- group create ----


def test_create_from_a_time_sets_entries_read(cli, r):
    add(r, 5)
    res = cli("group", "create", "s", "g", "--from", "1970-01-01T00:00:03Z", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "created": True,
        "stream_created": False,
        "last_delivered_id": "2000-0",
        "last_delivered_time": "1970-01-01T00:00:02.000Z",
        "entries_read": 2,
    }
    (g,) = r.xinfo_groups("s")
    assert (g["last-delivered-id"], g["entries-read"], g["lag"]) == (b"2000-0", 2, 3)


def test_create_default_is_new_entries_only_and_mkstream(cli, r):
    add(r, 3)
    res = cli("group", "create", "s", "g", "-o", "json")
    assert res.json()["last_delivered_id"] == "3000-0"
    res = cli("group", "create", "fresh", "g", "-o", "json")
    assert (res.json()["stream_created"], res.json()["last_delivered_id"]) == (True, "0-0")
    assert r.type("fresh") == b"stream"


def test_create_refusals_and_exist_ok(cli, r):
    add(r, 2)
    assert cli("group", "create", "s", "g", "--from", "0").exit_code == 0
    one_line_error(
        cli("group", "create", "s", "g"),
        1,
        "group 'g' already exists on stream 's' (--exist-ok makes that a success)",
    )
    ok = cli("group", "create", "s", "g", "--exist-ok", "-o", "json")
    assert ok.exit_code == 0
    assert (ok.json()["created"], ok.json()["last_delivered_id"]) == (False, "0-0")
    one_line_error(
        cli("group", "create", "missing", "g", "--no-mkstream"),
        4,
        "stream 'missing' does not exist (--no-mkstream)",
    )
    assert r.exists("missing") == 0
    bad = cli("group", "create", "s", "h", "--from", "yesterday")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: bad id or time 'yesterday'")
    plus = cli("group", "create", "s", "h", "--from", "+")
    one_line_error(plus, 2, "bad --from '+': use $ for the end of the stream (only new entries)")
    r.set("str", "x")
    wrong = cli("group", "create", "str", "g")
    assert wrong.exit_code == 1 and wrong.stderr.startswith("error: WRONGTYPE")


# ---- group destroy ----


def test_destroy_refuses_with_pending_then_force(cli, r):
    add(r, 3)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=2)
    one_line_error(
        cli("group", "destroy", "s", "g"),
        6,
        "group 'g' on stream 's' has 2 pending entries (unacknowledged); "
        "rerun with --force to destroy it anyway",
    )
    assert len(r.xinfo_groups("s")) == 1
    res = cli("group", "destroy", "s", "g", "--force", "-o", "json")
    assert res.json() == {"stream": "s", "group": "g", "destroyed": True, "pending_dropped": 2}
    assert r.xinfo_groups("s") == []
    one_line_error(cli("group", "destroy", "s", "g"), 4, "group 'g' does not exist on stream 's'")
    one_line_error(cli("group", "destroy", "x", "g"), 4, "stream 'x' does not exist")


# ---- group setid ----


def test_setid_plans_without_changing_anything(cli, r):
    add(r, 10)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=8)
    before = groups_state(r)
    res = cli("group", "setid", "s", "g", "--to", "1970-01-01T00:00:04Z", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "executed": False,
        "current": {
            "last_delivered_id": "8000-0",
            "last_delivered_time": "1970-01-01T00:00:08.000Z",
            "entries_read": 8,
            "lag": 2,
        },
        "new": {
            "last_delivered_id": "3000-0",
            "last_delivered_time": "1970-01-01T00:00:03.000Z",
            "entries_read": 3,
            "lag": 7,
        },
        "entries_read_note": None,
        "next_id": "4000-0",
        "next_time": "1970-01-01T00:00:04.000Z",
        "redeliver": 5,
        "skip": 0,
        "pending": 8,
    }
    assert res.stderr == "plan only, nothing changed: rerun with --execute to apply it\n"
    assert groups_state(r) == before
    table = cli("group", "setid", "s", "g", "--to", "4000-0", "-o", "table")
    assert "plan (not applied: rerun with --execute)" in table.stdout
    assert "5 entries will be delivered again" in table.stdout
    assert groups_state(r) == before


def test_setid_execute_keeps_lag_known(cli, r):
    add(r, 10)
    r.xgroup_create("s", "g", id="0")
    res = cli("group", "setid", "s", "g", "--to", "(6000-0", "--execute", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["executed"] is True
    assert (res.json()["skip"], res.json()["new"]["entries_read"]) == (6, 6)
    assert res.stderr == ""
    (g,) = r.xinfo_groups("s")
    assert (g["last-delivered-id"], g["entries-read"], g["lag"]) == (b"6000-0", 6, 4)
    ls = cli("group", "ls", "s", "-o", "json").json()[0]
    assert (ls["lag"], ls["lag_computed"]) == (4, False)


def test_setid_when_entries_read_cannot_be_known(cli, r):
    add(r, 6)
    r.xgroup_create("s", "g", id="$")
    r.xdel("s", "5000-0")
    res = cli("group", "setid", "s", "g", "--to", "2000-0", "--execute", "-o", "json")
    data = res.json()
    assert data["new"] == {
        "last_delivered_id": "1000-0",
        "last_delivered_time": "1970-01-01T00:00:01.000Z",
        "entries_read": None,
        "lag": 4,
    }
    assert data["entries_read_note"] == (
        "entries after 1000-0 were deleted (max deleted id 5000-0): "
        "the read counter cannot be known, lag is computed"
    )
    table = cli("group", "setid", "s", "g", "--to", "2000-0", "-o", "table")
    assert "entries read unknown: entries after 1000-0 were deleted" in " ".join(
        table.stdout.split()
    )
    ls = cli("group", "ls", "s", "-o", "json").json()[0]
    assert (ls["lag"], ls["lag_computed"], ls["entries_read"]) == (4, True, None)


def test_setid_refusals(cli, r):
    add(r, 2)
    one_line_error(
        cli("group", "setid", "s", "g", "--to", "0"), 4, "group 'g' does not exist on stream 's'"
    )
    one_line_error(cli("group", "setid", "x", "g", "--to", "0"), 4, "stream 'x' does not exist")
    missing = cli("group", "setid", "s", "g")
    assert missing.exit_code == 2 and "--to" in missing.stderr


# ---- group consumers ----


def test_consumers_json(cli, r, server):
    add(r, 3)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=2)
    r.xgroup_createconsumer("s", "g", "B")
    res = cli("group", "consumers", "s", "g", "-o", "json")
    data = res.json()
    volatile = ("idle_ms", "inactive_ms")
    assert [{k: v for k, v in c.items() if k not in volatile} for c in data] == [
        {"stream": "s", "group": "g", "consumer": "A", "pending": 2},
        {"stream": "s", "group": "g", "consumer": "B", "pending": 0},
    ]
    assert all(isinstance(c["idle_ms"], int) for c in data)
    if server.kind == "redis7.0":  # XINFO CONSUMERS has no `inactive` before 7.2
        assert [c["inactive_ms"] for c in data] == [None, None]
    else:
        assert all(isinstance(c["inactive_ms"], int) for c in data)
    table = cli("group", "consumers", "s", "g", "-o", "table")
    assert "inactive" in table.stdout and "A" in table.stdout
    one_line_error(
        cli("group", "consumers", "s", "nog"), 4, "group 'nog' does not exist on stream 's'"
    )


# ---- group delconsumer ----


def test_delconsumer_refuses_then_reassigns(cli, r):
    add(r, 4)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=3)
    r.xdel("s", "2000-0")
    one_line_error(
        cli("group", "delconsumer", "s", "g", "A"),
        6,
        "consumer 'A' owns 3 pending entries in group 'g'; rerun with --reassign-to OTHER "
        "to hand them over, or --force to drop them",
    )
    assert len(r.xinfo_consumers("s", "g")) == 1
    res = cli("group", "delconsumer", "s", "g", "A", "--reassign-to", "B", "-o", "json")
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "consumer": "A",
        "deleted": True,
        "reassigned_to": "B",
        "reassigned": ["1000-0", "3000-0"],
        "deleted_while_pending": ["2000-0"],
        "pending_dropped": 0,
    }
    assert [c["name"] for c in r.xinfo_consumers("s", "g")] == [b"B"]
    assert r.xpending("s", "g")["consumers"] == [{"name": b"B", "pending": 2}]


def test_delconsumer_force_and_missing(cli, r):
    add(r, 2)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"})
    res = cli("group", "delconsumer", "s", "g", "A", "--force", "-o", "table")
    assert res.exit_code == 0
    assert "2 pending entries dropped (--force)" in res.stdout
    assert r.xpending("s", "g")["pending"] == 0
    one_line_error(
        cli("group", "delconsumer", "s", "g", "A"),
        4,
        "consumer 'A' does not exist in group 'g' of stream 's'",
    )


# ---- help ----


@pytest.mark.parametrize(
    "sub", ["ls", "create", "destroy", "setid", "consumers", "delconsumer", None]
)
def test_help_has_an_example(run_cli, sub):
    args = ["group"] + ([sub] if sub else []) + ["--help"]
    res = run_cli(args)
    assert res.exit_code == 0
    assert "Example" in res.stdout
