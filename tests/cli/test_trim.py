"""trim on the three real servers: dry run, refusal (exit 6), --force, options and errors."""

from __future__ import annotations

import pytest
import redis


def ids(r: redis.Redis, stream: str) -> list[str]:
    return [i.decode() for i, _ in r.xrange(stream)]


@pytest.fixture
def orders(r: redis.Redis) -> redis.Redis:
    """Entries 1-0..10-0; group g read 1..5 and acked 1, 2, 4; group h is at 7-0."""
    for i in range(10):
        r.xadd("orders", {"i": str(i)}, id=f"{i + 1}-0")
    r.xgroup_create("orders", "g", id="0")
    r.xreadgroup("g", "alice", {"orders": ">"}, count=5)
    r.xack("orders", "g", "1-0", "2-0", "4-0")
    r.xgroup_create("orders", "h", id="7-0")
    return r


def test_dry_run_json(cli, orders):
    res = cli("trim", "orders", "--maxlen", "4", "--dry-run", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == {
        "dry_run": True,
        "stream": "orders",
        "strategy": "maxlen",
        "threshold": "4",
        "exact": True,
        "acked_only": False,
        "length": 10,
        "entries": 6,
        "acked_entries": None,
        "first_id": "1-0",
        "first_time": "1970-01-01T00:00:00.001Z",
        "last_id": "6-0",
        "last_time": "1970-01-01T00:00:00.006Z",
        "groups": [
            {
                "group": "g",
                "last_delivered_id": "5-0",
                "undelivered": 1,
                "pending": 2,
                "blocks": True,
            },
            {
                "group": "h",
                "last_delivered_id": "7-0",
                "undelivered": 0,
                "pending": 0,
                "blocks": False,
            },
        ],
        "refused_without_force": True,
        "forced": False,
        "removed": None,
        "length_after": None,
    }
    assert orders.xlen("orders") == 10


def test_dry_run_table(cli, orders):
    res = cli("trim", "orders", "--minid", "3", "--dry-run", "-o", "table")
    assert res.exit_code == 0, res.stderr
    assert "would remove    2 entries" in res.stdout
    assert "1-0  1970-01-01T00:00:00.001Z" in res.stdout
    assert "2-0  1970-01-01T00:00:00.002Z" in res.stdout
    assert orders.xlen("orders") == 10


def test_refusal_names_groups_and_counts(cli, orders):
    res = cli("trim", "orders", "--maxlen", "0")
    assert res.exit_code == 6
    assert res.stdout == ""
    assert res.stderr == (
        "error: refusing to trim 'orders': of the 10 entries that would go, group 'g' has 5 not "
        "yet delivered and 2 pending, group 'h' has 3 not yet delivered; rerun with --force to "
        "trim anyway, or with --acked-only (Redis >= 8.2) to trim only what every group has "
        "acknowledged\n"
    )
    assert orders.xlen("orders") == 10


def test_force_trims_exactly(cli, orders):
    res = cli("trim", "orders", "--maxlen", "3", "--force", "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert (data["removed"], data["length_after"], data["forced"]) == (7, 3, True)
    assert ids(orders, "orders") == ["8-0", "9-0", "10-0"]
    # pending entries that were trimmed stay in the PEL (the server's rule), nothing else changed
    assert orders.xpending("orders", "g")["pending"] == 2


def test_safe_trim_needs_no_force(cli, orders):
    res = cli("trim", "orders", "--minid", "1970-01-01T00:00:00.003Z", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert (res.json()["removed"], res.json()["length_after"]) == (2, 8)
    assert ids(orders, "orders")[0] == "3-0"


def test_older_than_on_the_servers_clock(cli, r):
    now = int(r.time()[0]) * 1000
    for age_s in (7200, 3600, 60):
        r.xadd("s", {"age": str(age_s)}, id=f"{now - age_s * 1000}-0")
    res = cli("trim", "s", "--older-than", "30m", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["removed"] == 2
    assert res.json()["older_than_ms"] == 1_800_000
    assert [f[b"age"] for _, f in r.xrange("s")] == [b"60"]


def test_acked_only(cli, orders, server):
    res = cli("trim", "orders", "--maxlen", "0", "--acked-only", "-o", "json")
    if server.kind == "redis8.2":
        assert res.exit_code == 0, res.stderr
        assert (res.json()["acked_entries"], res.json()["removed"]) == (3, 3)
        assert ids(orders, "orders") == ["3-0", "5-0", "6-0", "7-0", "8-0", "9-0", "10-0"]
    else:
        assert res.exit_code == 1
        assert len(res.stderr.splitlines()) == 1
        assert res.stderr.startswith(
            "error: --acked-only needs the ACKED trim policy of Redis >= 8.2; this server is "
        )
        assert orders.xlen("orders") == 10


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give exactly one of --maxlen N, --minid ID|TIME or --older-than DURATION"),
        (["--maxlen", "1", "--minid", "3"], "give exactly one of"),
        (["--older-than", "soon"], "bad --older-than 'soon'"),
        (["--minid", "banana"], "bad id or time 'banana'"),
        (["--maxlen", "-1"], "bad --maxlen -1"),
    ],
)
def test_usage_errors(cli, orders, args, message):
    res = cli("trim", "orders", *args)
    assert res.exit_code == 2
    assert message in res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert orders.xlen("orders") == 10


def test_missing_stream_and_wrong_type(cli, r):
    res = cli("trim", "nope", "--maxlen", "1")
    assert (res.exit_code, res.stderr) == (4, "error: stream 'nope' does not exist\n")
    r.set("k", "v")
    res = cli("trim", "k", "--maxlen", "1")
    assert res.exit_code == 1
    assert "WRONGTYPE" in res.stderr
