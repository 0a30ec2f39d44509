"""`trace`, `group prune` and `redrive` on the three real servers (Redis 7.0, 8.2, Valkey 9.1):
exact json, each refusal's exit code and one-line message, and the server's state after; and
--where selecting the same entries in every command that takes it."""

from __future__ import annotations

import time

import pytest
import redis

from tests.cli.test_filters import IDS, SELECTIONS, fill
from tests.conftest import xrange_raw


def one_line_error(res, code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert res.stderr == f"error: {message}\n"
    assert res.stdout == ""


def dead_letter(r: redis.Redis, dlq: str, stream: str, sid: str, **extra: str) -> str:
    fields = {**extra, "dlq_stream": stream, "dlq_group": "billing", "dlq_id": sid,
              "dlq_consumer": "w1", "dlq_deliveries": "4"}  # fmt: skip
    return r.xadd(dlq, fields).decode()


# ---- --where everywhere ----


@pytest.mark.parametrize(("args", "expected"), SELECTIONS)
def test_where_and_match_select_the_same_entries_in_every_command(cli, r, args, expected):
    fill(r)
    assert [e["id"] for e in cli("range", "orders", *args).ndjson()] == expected
    tail = cli("tail", "orders", "--from", "0", "--no-follow", *args)
    assert [e["id"] for e in tail.ndjson()] == expected
    exported = cli("export", "orders", *args)
    assert exported.exit_code == 0, exported.stderr
    assert [e["id"] for e in exported.ndjson()] == expected
    # replay copies (new ids): the copies' fields say which entries went
    replayed = cli("replay", "orders", "--from", "0", "--into", "copy", *args, "-o", "json")
    assert replayed.exit_code == 0, replayed.stderr
    source = {e: tuple(f) for e, f in xrange_raw(r, "orders")}
    copies = [tuple(f) for _, f in xrange_raw(r, "copy")]
    assert copies == [source[i.encode()] for i in expected]
    # redrive: the same entries dead-lettered (dlq_* fields added at the end, same ids)
    for eid, flat in xrange_raw(r, "orders"):
        r.execute_command("XADD", "dlq", eid, *flat, "dlq_stream", "back", "dlq_id", eid)
    redriven = cli("redrive", "dlq", *args, "-o", "json")
    assert redriven.exit_code == 0, redriven.stderr
    back = xrange_raw(r, "back")
    assert [
        dict(zip(f[::2], f[1::2], strict=True))[b"redriven_from"].decode() for _, f in back
    ] == expected
    assert [tuple(f[:-2]) for _, f in back] == [source[i.encode()] for i in expected]
    left = [e.decode() for e, _ in xrange_raw(r, "dlq")]
    assert left == [i for i in IDS if i not in expected]


def test_bad_where_in_redrive_is_exit_2_before_connecting(run_cli):
    res = run_cli(["-u", "redis://127.0.0.1:1/0", "redrive", "dlq", "--where", "fields.x =="])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: bad --where 'fields.x ==': incomplete expression")


# ---- trace ----


def test_trace_every_group_state_and_dead_letter_copies(cli, r):
    for i in range(1, 6):
        r.xadd("orders", {"n": str(i)}, id=f"{i}000-0")
    for g in ("acked", "pending", "new", "deleted"):
        r.xgroup_create("orders", g, id="0")
    r.xreadgroup("acked", "w1", {"orders": ">"}, count=3)
    r.xack("orders", "acked", "1000-0", "2000-0", "3000-0")
    r.xreadgroup("pending", "w2", {"orders": ">"}, count=3)
    r.xreadgroup("pending", "w2", {"orders": "0"}, count=3)  # delivered twice
    r.xreadgroup("new", "w3", {"orders": ">"}, count=1)
    copy = dead_letter(r, "dlq", "orders", "2000-0", n="2")
    dead_letter(r, "dlq", "orders", "3000-0", n="3")  # another entry's copy
    dead_letter(r, "dlq", "other", "2000-0", n="2")  # another stream's entry
    res = cli("trace", "orders", "2000", "--dlq", "dlq", "--dlq", "nodlq", "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    idle = data["groups"][3].pop("idle_ms")  # groups come sorted by name
    assert isinstance(idle, int) and idle >= 0
    assert data == {
        "stream": "orders",
        "id": "2000-0",
        "time": "1970-01-01T00:00:02.000Z",
        "stream_exists": True,
        "entry": {
            "stream": "orders",
            "id": "2000-0",
            "time": "1970-01-01T00:00:02.000Z",
            "fields": {"n": "2"},
        },  # fmt: skip
        "groups": [
            {
                "group": "acked",
                "state": "acked",
                "last_delivered_id": "3000-0",
                "consumer": None,
                "deliveries": None,
                "idle_ms": None,
            },
            {
                "group": "deleted",
                "state": "not-delivered",
                "last_delivered_id": "0-0",
                "consumer": None,
                "deliveries": None,
                "idle_ms": None,
            },
            {
                "group": "new",
                "state": "not-delivered",
                "last_delivered_id": "1000-0",
                "consumer": None,
                "deliveries": None,
                "idle_ms": None,
            },
            {
                "group": "pending",
                "state": "pending",
                "last_delivered_id": "3000-0",
                "consumer": "w2",
                "deliveries": 2,
            },
        ],  # fmt: skip
        "dead_letters": [
            {
                "dlq": "dlq",
                "id": copy,
                "time": data["dead_letters"][0]["time"],
                "group": "billing",
                "consumer": "w1",
                "deliveries": 4,
            }
        ],  # fmt: skip
    }
    table = cli("trace", "orders", "2000-0", "--dlq", "dlq", "-o", "table")
    assert table.exit_code == 0
    for word in ("not-delivered", "pending", "acked", "dead-letter copies", copy):
        assert word in table.stdout


def test_trace_deleted_while_pending_and_gone(cli, r):
    r.xadd("orders", {"n": "1"}, id="1000-0")
    r.xadd("orders", {"n": "2"}, id="2000-0")
    r.xgroup_create("orders", "g", id="0")
    r.xgroup_create("orders", "h", id="0")
    r.xreadgroup("g", "w", {"orders": ">"})
    r.xdel("orders", "1000-0")
    res = cli("trace", "orders", "1000-0", "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert data["entry"] is None
    assert [(g["group"], g["state"], g["consumer"]) for g in data["groups"]] == [
        ("g", "deleted-while-pending", "w"),
        ("h", "gone", None),
    ]
    # acknowledged: nothing knows it any more
    r.xack("orders", "g", "1000-0")
    one_line_error(cli("trace", "orders", "1000-0"), 4, "entry 1000-0 is not in stream 'orders'")


def test_trace_finds_a_copy_of_an_entry_trimmed_away(cli, r):
    r.xadd("orders", {"n": "1"}, id="1000-0")
    copy = dead_letter(r, "dlq", "orders", "1000-0")
    r.delete("orders")
    res = cli("trace", "orders", "1000-0", "--dlq", "dlq", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["stream_exists"] is False
    assert [d["id"] for d in res.json()["dead_letters"]] == [copy]
    one_line_error(
        cli("trace", "orders", "1000-0", "--dlq", "nodlq"),
        4,
        "entry 1000-0 is not in stream 'orders' (stream 'orders' does not exist) nor in 'nodlq'",
    )


def test_trace_bad_id_and_wrong_type(cli, r):
    one_line_error(
        cli("trace", "orders", "yesterday"),
        2,
        "bad id 'yesterday': give a full id (1795773600000-3) or a millisecond id",
    )
    r.set("str", "x")
    res = cli("trace", "str", "1-0")
    assert res.exit_code == 1 and "WRONGTYPE" in res.stderr


# ---- group prune ----


def consumers(r: redis.Redis) -> dict[str, int]:
    return {c["name"].decode(): c["pending"] for c in r.xinfo_consumers("orders", "g")}


def wait_idle(r: redis.Redis, ms: int) -> None:
    """Until every consumer of g has been idle (and inactive) at least `ms`."""
    deadline = time.monotonic() + 10
    while True:
        rows = r.xinfo_consumers("orders", "g")
        # inactive -1: never read anything (7.2+): its idle time is what prune compares
        if all(min(c["idle"], c.get("inactive", -1) % (1 << 62)) >= ms for c in rows):
            return
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_prune_plans_then_executes(cli, r, server):
    for i in range(1, 4):
        r.xadd("orders", {"n": str(i)}, id=f"{i}000-0")
    r.xgroup_create("orders", "g", id="0")
    r.xreadgroup("g", "busy", {"orders": ">"}, count=2)  # owns 2 pending
    r.xgroup_createconsumer("orders", "g", "empty")
    r.xreadgroup("g", "done", {"orders": ">"}, count=1)
    r.xack("orders", "g", "3000-0")
    wait_idle(r, 200)
    plan = cli("group", "prune", "orders", "g", "--idle", "200ms", "-o", "json")
    assert plan.exit_code == 0, plan.stderr
    data = plan.json()
    measure = "idle" if server.kind == "redis7.0" else "inactive"
    assert (data["measure"], data["executed"], data["idle_ms"]) == (measure, False, 200)
    rows = {c["consumer"]: (c["action"], c["reason"].split(" ")[0]) for c in data["consumers"]}
    assert rows == {"busy": ("keep", "owns"), "empty": ("prune", measure),
                    "done": ("prune", measure)}  # fmt: skip
    assert "--reassign-to C claims" in plan.stderr
    assert consumers(r) == {"busy": 2, "empty": 0, "done": 0}  # a plan changes nothing

    # a high threshold keeps everyone
    none = cli("group", "prune", "orders", "g", "--idle", "1h", "-o", "json").json()
    assert [c["action"] for c in none["consumers"]] == ["keep"] * 3

    done = cli("group", "prune", "orders", "g", "--idle", "200ms", "--execute", "-o", "json")
    assert done.exit_code == 0, done.stderr
    assert [c["consumer"] for c in done.json()["consumers"] if c["deleted"]] == ["done", "empty"]
    assert consumers(r) == {"busy": 2}

    moved = cli("group", "prune", "orders", "g", "--idle", "0", "--reassign-to", "w9",
                "--execute", "-o", "json")  # fmt: skip
    assert moved.exit_code == 0, moved.stderr
    [row] = moved.json()["consumers"]
    reassigned = ["1000-0", "2000-0"]
    assert (row["consumer"], row["deleted"], row["reassigned"]) == ("busy", True, reassigned)
    assert consumers(r) == {"w9": 2}


def test_prune_refusals(cli, r):
    one_line_error(cli("group", "prune", "nope", "g", "--idle", "1h"), 4,
                   "stream 'nope' does not exist")  # fmt: skip
    r.xadd("orders", {"n": "1"})
    one_line_error(cli("group", "prune", "orders", "g", "--idle", "1h"), 4,
                   "group 'g' does not exist on stream 'orders'")  # fmt: skip
    res = cli("group", "prune", "orders", "g", "--idle", "soon")
    assert res.exit_code == 2 and res.stderr.startswith("error: bad --idle 'soon'")


# ---- redrive ----


def test_redrive_back_into_each_stream(cli, r):
    a = dead_letter(r, "dlq", "orders", "1-0", n="1")
    b = dead_letter(r, "dlq", "payments", "2-0", n="2")
    c = r.xadd("dlq", {"n": "3"}).decode()  # no dlq_stream: stays
    d = dead_letter(r, "dlq", "dlq", "3-0", n="4")  # names the DLQ itself: stays
    r.set("kv", "x")
    e = dead_letter(r, "dlq", "kv", "4-0", n="5")  # not a stream: stays
    f = dead_letter(r, "dlq", "orders", "5-0", n="6", redriven_from="old")
    res = cli("redrive", "dlq", "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    data.pop("seconds")
    last_new = r.xrevrange("orders", count=1)[0][0].decode()
    assert data == {
        "dlq": "dlq", "into": None, "dry_run": False, "keep": False,
        "scanned": 6, "redriven": 3, "per_stream": {"orders": 2, "payments": 1},
        "unusable_count": 3,
        "unusable": [
            {"id": c, "reason": "no dlq_stream field"},
            {"id": d, "reason": "dlq_stream names the dead-letter stream itself"},
            {"id": e, "reason": "dlq_stream 'kv' holds a string, not a stream"},
        ],
        "gone": 0, "first_id": a, "last_id": f, "last_new_id": last_new, "stopped": False,
    }  # fmt: skip
    assert "redrove 3 entries from 'dlq' (2 into 'orders', 1 into 'payments'); 3 left" in (
        res.stderr
    )
    assert [f for _, f in r.xrange("orders")] == [
        {b"n": b"1", b"redriven_from": a.encode()},
        {b"n": b"6", b"redriven_from": f.encode()},
    ]
    assert [f for _, f in r.xrange("payments")] == [{b"n": b"2", b"redriven_from": b.encode()}]
    assert [i.decode() for i, _ in r.xrange("dlq")] == [c, d, e]
    # a rerun moves nothing more
    again = cli("redrive", "dlq", "-o", "json").json()
    assert (again["redriven"], again["unusable_count"]) == (0, 3)
    assert r.xlen("orders") == 2


def test_redrive_options(cli, r):
    ids = [dead_letter(r, "dlq", "orders", f"{i}-0", n=str(i), kind="ab"[i % 2])
           for i in range(10)]  # fmt: skip
    dry = cli("redrive", "dlq", "--dry-run", "--match", "kind=a", "-o", "json").json()
    assert (dry["dry_run"], dry["redriven"], dry["per_stream"]) == (True, 5, {"orders": 5})
    assert r.xlen("dlq") == 10 and not r.exists("orders")

    kept = cli("redrive", "dlq", "--keep", "--into", "retry", "--count", "2", "-o", "json")
    assert kept.exit_code == 0, kept.stderr
    assert (kept.json()["redriven"], kept.json()["last_id"]) == (2, ids[1])
    assert r.xlen("dlq") == 10
    assert [f[b"redriven_from"].decode() for _, f in r.xrange("retry")] == ids[:2]

    ranged = cli("redrive", "dlq", "--from", ids[2], "--to", ids[6],
                 "--where", "fields.kind == 'b'", "-o", "json")  # fmt: skip
    assert ranged.exit_code == 0, ranged.stderr
    assert [f[b"redriven_from"].decode() for _, f in r.xrange("orders")] == [ids[3], ids[5]]
    left = [i.decode() for i, _ in r.xrange("dlq")]
    assert left == [x for x in ids if x not in (ids[3], ids[5])]

    started = time.monotonic()
    slow = cli("redrive", "dlq", "--rate", "20", "--count", "4", "-o", "json")
    assert slow.json()["redriven"] == 4
    assert time.monotonic() - started >= 0.1  # 4 entries at 20/s: at least 3 waits of 50ms


def test_redrive_refusals(cli, r):
    one_line_error(cli("redrive", "nope"), 4, "stream 'nope' does not exist")
    dead_letter(r, "dlq", "orders", "1-0")
    one_line_error(
        cli("redrive", "dlq", "--into", "dlq"),
        2,
        "--into names the dead-letter stream itself: give the stream to publish to",
    )
    one_line_error(cli("redrive", "dlq", "--count", "0"), 2,
                   "bad --count 0: give a number above 0")  # fmt: skip
    r.set("kv", "x")
    one_line_error(cli("redrive", "dlq", "--into", "kv"), 1,
                   "WRONGTYPE: key 'kv' holds a string, not a stream")  # fmt: skip
    assert r.xlen("dlq") == 1
