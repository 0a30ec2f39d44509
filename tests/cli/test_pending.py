"""`pending` on the three real servers: summary and entries in every format, filters and
paging, --claim (XAUTOCLAIM loop, XCLAIM), --dead-letter, --dry-run, and every refusal."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
import yaml

VOLATILE = ("idle_ms", "age_ms")


def setup_group(r: redis.Redis, n: int, *, read: int | None = None, consumer: str = "A") -> None:
    """Stream s with n entries (ids 1000-0, 2000-0, ...), group g at 0, and `read` of them
    delivered to `consumer`, never acknowledged: a consumer killed while holding them."""
    for i in range(n):
        r.xadd("s", {"n": str(i + 1)}, id=f"{(i + 1) * 1000}-0")
    r.xgroup_create("s", "g", id="0")
    if read != 0:
        r.xreadgroup("g", consumer, {"s": ">"}, count=read)


def redeliver(r: redis.Redis, consumer: str, times: int, count: int | None = None) -> None:
    for _ in range(times):
        r.xreadgroup("g", consumer, {"s": "0"}, count=count)


def pel(r: redis.Redis, stream: str = "s") -> list[tuple[str, str, int]]:
    return [
        (p["message_id"].decode(), p["consumer"].decode(), p["times_delivered"])
        for p in r.xpending_range(stream, "g", "-", "+", 1000)
    ]


def server_state(r: redis.Redis) -> Any:
    """Everything a claim or dead-letter could change, minus the clocks (idle times)."""
    consumers = [(c["name"], c["pending"]) for c in r.xinfo_consumers("s", "g")]
    return (
        [dict(g) for g in r.xinfo_groups("s")],
        consumers,
        r.xpending("s", "g"),
        pel(r),
        r.xrange("s"),
        r.exists("dlq"),
    )


def masked(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for e in entries:
        for k in VOLATILE:
            assert isinstance(e[k], int) and e[k] >= 0
    return [{k: v for k, v in e.items() if k not in VOLATILE} for e in entries]


def idle_past(ms: int) -> None:
    time.sleep(ms / 1000 + 0.02)


def one_line_error(res, code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert res.stderr == f"error: {message}\n"
    assert res.stdout == ""


# ---- listing ----


def test_pending_json_summary_and_entries(cli, r):
    setup_group(r, 4, read=2, consumer="A")
    r.xreadgroup("g", "B", {"s": ">"}, count=1)
    res = cli("pending", "s", "g", "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    entries = masked(data.pop("entries"))
    assert data == {
        "stream": "s",
        "group": "g",
        "count": 3,
        "oldest_id": "1000-0",
        "oldest_time": "1970-01-01T00:00:01.000Z",
        "newest_id": "3000-0",
        "newest_time": "1970-01-01T00:00:03.000Z",
        "consumers": [{"consumer": "A", "pending": 2}, {"consumer": "B", "pending": 1}],
        "more": False,
    }
    assert entries == [
        {"id": "1000-0", "time": "1970-01-01T00:00:01.000Z", "consumer": "A", "deliveries": 1},
        {"id": "2000-0", "time": "1970-01-01T00:00:02.000Z", "consumer": "A", "deliveries": 1},
        {"id": "3000-0", "time": "1970-01-01T00:00:03.000Z", "consumer": "B", "deliveries": 1},
    ]


def test_pending_empty_pel(cli, r):
    setup_group(r, 2, read=0)
    res = cli("pending", "s", "g", "-o", "json")
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "count": 0,
        "oldest_id": None,
        "oldest_time": None,
        "newest_id": None,
        "newest_time": None,
        "consumers": [],
        "entries": [],
        "more": False,
    }
    assert yaml.safe_load(cli("pending", "s", "g", "-o", "yaml").stdout)["entries"] == []
    assert cli("pending", "s", "g", "-o", "ndjson").stdout == ""


def test_pending_ndjson_yaml_and_table(cli, r):
    setup_group(r, 2, read=2)
    lines = cli("pending", "s", "g", "-o", "ndjson").ndjson()
    assert masked(lines) == [
        {
            "stream": "s",
            "group": "g",
            "id": f"{i}000-0",
            "time": f"1970-01-01T00:00:0{i}.000Z",
            "consumer": "A",
            "deliveries": 1,
        }
        for i in (1, 2)
    ]
    doc = yaml.safe_load(cli("pending", "s", "g", "-o", "yaml").stdout)
    assert doc["count"] == 2 and doc["more"] is False
    assert [e["id"] for e in doc["entries"]] == ["1000-0", "2000-0"]
    table = cli("pending", "s", "g", "-o", "table").stdout
    for text in ("pending", "1000-0", "1970-01-01T00:00:01.000Z", "deliv", " ago"):
        assert text in table


def test_pending_filters(cli, r):
    setup_group(r, 6, read=3, consumer="A")
    r.xreadgroup("g", "B", {"s": ">"})
    redeliver(r, "B", 2, count=1)  # 4000-0 delivered 3 times

    def ids(*args: str) -> list[str]:
        res = cli("pending", "s", "g", *args, "-o", "ndjson")
        assert res.exit_code == 0, res.stderr
        return [e["id"] for e in res.ndjson()]

    assert ids("--consumer", "B") == ["4000-0", "5000-0", "6000-0"]
    assert ids("--min-deliveries", "3") == ["4000-0"]
    assert ids("--start", "2000-0", "--end", "4000") == ["2000-0", "3000-0", "4000-0"]
    assert ids("--start", "(2000-0", "--end", "1970-01-01T00:00:03Z") == ["3000-0"]
    assert ids("-c", "A", "--min-idle", "1h") == []


def test_pending_count_pages_and_says_when_more(cli, r):
    setup_group(r, 5, read=5)
    res = cli("pending", "s", "g", "--count", "2", "-o", "json")
    assert [e["id"] for e in res.json()["entries"]] == ["1000-0", "2000-0"]
    assert res.json()["more"] is True
    assert res.stderr == "showing the first 2 matching entries (--count 0 shows all)\n"
    exact = cli("pending", "s", "g", "--count", "5", "-o", "json")
    assert (len(exact.json()["entries"]), exact.json()["more"], exact.stderr) == (5, False, "")
    everything = cli("pending", "s", "g", "--count", "0", "-o", "json").json()
    assert len(everything["entries"]) == 5


def test_pending_default_count_is_100_and_0_pages_through_everything(cli, r):
    pipe = r.pipeline(transaction=False)
    for i in range(1050):  # more than one XPENDING page (1000)
        pipe.xadd("s", {"n": str(i)}, id=f"{i + 1}-0")
    pipe.execute()
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"})
    res = cli("pending", "s", "g", "-o", "json")
    assert (len(res.json()["entries"]), res.json()["more"]) == (100, True)
    every = cli("pending", "s", "g", "-n", "0", "-o", "json").json()
    assert [e["id"] for e in every["entries"]] == [f"{i + 1}-0" for i in range(1050)]
    assert every["more"] is False
    assert len(cli("pending", "s", "g", "-n", "0", "-o", "ndjson").ndjson()) == 1050
    doc = yaml.safe_load(cli("pending", "s", "g", "-n", "1001", "-o", "yaml").stdout)
    assert (len(doc["entries"]), doc["more"]) == (1001, True)


def test_pending_missing_stream_or_group(cli, r):
    one_line_error(cli("pending", "s", "g"), 4, "stream 's' does not exist")
    r.xadd("s", {"a": "1"})
    one_line_error(cli("pending", "s", "g"), 4, "group 'g' does not exist on stream 's'")
    one_line_error(
        cli("pending", "s", "g", "--claim", "--to", "B"),
        4,
        "group 'g' does not exist on stream 's'",
    )
    one_line_error(
        cli("pending", "s", "g", "--dead-letter", "dlq", "--max-deliveries", "2"),
        4,
        "group 'g' does not exist on stream 's'",
    )
    assert r.exists("dlq") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--claim"], "--claim needs --to CONSUMER: the consumer that gets the entries"),
        (["--to", "B"], "--to CONSUMER applies to --claim"),
        (["--id", "1-0"], "--id applies to --claim"),
        (["--dead-letter", "dlq"], "--dead-letter needs --max-deliveries N"),
        (["--max-deliveries", "3"], "--max-deliveries applies to --dead-letter DLQ"),
        (
            ["--dead-letter", "dlq", "--max-deliveries", "0"],
            "bad --max-deliveries 0: give a count of 1 or more",
        ),
        (["--dry-run"], "--dry-run applies to --claim or --dead-letter"),
        (
            ["--claim", "--to", "B", "--dead-letter", "d", "--max-deliveries", "1"],
            "give --claim or --dead-letter, not both",
        ),
        (["--count", "-1"], "bad --count -1: give a count of 0 or more (0 = all)"),
        (
            ["--claim", "--to", "B", "--id", "1-0", "--consumer", "A"],
            "--id names the entries: it cannot be combined with --consumer, --min-deliveries, "
            "--start or --end",
        ),
        (
            ["--min-idle", "soon"],
            "bad --min-idle 'soon': accepted: 500ms, 90s, 15m, 2h30m, 7d, 1w, or 0",
        ),
        (
            ["--claim", "--to", "B", "--id", "x"],
            "bad id 'x': accepted: - + 0 $, an id (1795773600000-3 or 1795773600000), a time "
            "(2026-11-27T10:00:00Z, 2026-11-27T10:00:00+01:00, 2026-11-27), a duration ago "
            "(90s, 15m, 2h30m, 7d, 500ms), or (ID for an exclusive start",
        ),
    ],
)
def test_pending_usage_errors(cli1, r1, args, message):
    setup_group(r1, 1, read=1)
    one_line_error(cli1("pending", "s", "g", *args), 2, message)
    assert pel(r1) == [("1000-0", "A", 1)]


# ---- claim ----


def test_killed_consumer_entries_are_seen_idle_then_claimed_once(cli, r):
    setup_group(r, 5, read=3, consumer="A")  # A dies holding 3 entries
    idle_past(400)
    stuck = cli("pending", "s", "g", "--min-idle", "400ms", "-o", "json").json()
    assert [(e["id"], e["consumer"]) for e in stuck["entries"]] == [
        ("1000-0", "A"),
        ("2000-0", "A"),
        ("3000-0", "A"),
    ]
    assert all(e["idle_ms"] >= 400 for e in stuck["entries"])
    res = cli("pending", "s", "g", "--min-idle", "400ms", "--claim", "--to", "B", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "consumer": "B",
        "method": "xautoclaim",
        "dry_run": False,
        "claimed": ["1000-0", "2000-0", "3000-0"],
        "deleted": [],
        "skipped": [],
        "not_pending": [],
    }
    assert pel(r) == [("1000-0", "B", 1), ("2000-0", "B", 1), ("3000-0", "B", 1)]
    again = cli("pending", "s", "g", "--min-idle", "400ms", "--claim", "--to", "C", "-o", "json")
    assert (again.json()["claimed"], again.json()["deleted"]) == ([], [])
    assert [c for _, c, _ in pel(r)] == ["B", "B", "B"]


def test_claim_reports_an_entry_deleted_while_pending(cli, r):
    setup_group(r, 4, read=4)
    r.xdel("s", "2000-0")
    res = cli("pending", "s", "g", "--claim", "--to", "B", "-o", "json")
    assert (res.json()["claimed"], res.json()["deleted"]) == (
        ["1000-0", "3000-0", "4000-0"],
        ["2000-0"],
    )
    assert [i for i, _, _ in pel(r)] == ["1000-0", "3000-0", "4000-0"]
    table = cli("pending", "s", "g", "--claim", "--to", "C", "-o", "table")
    assert "claimed 3 entries for 'C' (xautoclaim)" in table.stdout


def test_claim_with_a_consumer_filter_uses_xclaim_and_detects_deleted(cli, r):
    setup_group(r, 4, read=2, consumer="A")
    r.xreadgroup("g", "B", {"s": ">"})
    r.xdel("s", "1000-0")
    res = cli("pending", "s", "g", "-c", "A", "--claim", "--to", "C", "-o", "json")
    assert res.json()["method"] == "xclaim"
    assert (res.json()["claimed"], res.json()["deleted"]) == (["2000-0"], ["1000-0"])
    assert pel(r) == [("2000-0", "C", 1), ("3000-0", "B", 1), ("4000-0", "B", 1)]


def test_claim_explicit_ids(cli, r):
    setup_group(r, 4, read=3)
    r.xdel("s", "3000-0")
    res = cli(
        "pending",
        "s",
        "g",
        "--claim",
        "--to",
        "B",
        "--id",
        "1000-0,3000-0",
        "--id",
        "4000",
        "-o",
        "json",
    )
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "consumer": "B",
        "method": "xclaim",
        "dry_run": False,
        "claimed": ["1000-0"],
        "deleted": ["3000-0"],
        "skipped": [],
        "not_pending": ["4000-0"],
    }
    assert pel(r) == [("1000-0", "B", 1), ("2000-0", "A", 1)]


def test_claim_count_limits(cli, r):
    setup_group(r, 5, read=5)
    res = cli("pending", "s", "g", "--claim", "--to", "B", "--count", "2", "-o", "json")
    assert res.json()["claimed"] == ["1000-0", "2000-0"]
    assert [c for _, c, _ in pel(r)] == ["B", "B", "A", "A", "A"]


def test_claim_dry_run_changes_nothing(cli, r):
    setup_group(r, 4, read=4)
    r.xdel("s", "4000-0")
    idle_past(50)
    before = server_state(r)
    for extra in ([], ["--id", "1000-0", "--id", "4000-0"], ["-c", "A"]):
        res = cli(
            "pending",
            "s",
            "g",
            "--min-idle",
            "50ms",
            "--claim",
            "--to",
            "B",
            "--dry-run",
            *extra,
            "-o",
            "json",
        )
        assert res.exit_code == 0, res.stderr
        assert res.json()["dry_run"] is True
        assert "4000-0" in res.json()["deleted"]
        assert server_state(r) == before
    table = cli("pending", "s", "g", "--claim", "--to", "B", "--dry-run", "-o", "table")
    assert "would claim 3 entries for 'B'" in table.stdout
    assert "(dry run: nothing changed)" in table.stdout
    assert server_state(r) == before


# ---- dead letter ----


def test_dead_letter_moves_exactly_those_once_even_run_twice(cli, r):
    setup_group(r, 5, read=5)
    redeliver(r, "A", 2, count=3)  # 1000-0, 2000-0, 3000-0: 3 deliveries
    r.xdel("s", "3000-0")
    args = ("pending", "s", "g", "--dead-letter", "dlq", "--max-deliveries", "3", "-o", "json")
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    copies = r.xrange("dlq")
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "dlq": "dlq",
        "max_deliveries": 3,
        "dry_run": False,
        "moved": [
            {"id": "1000-0", "consumer": "A", "deliveries": 3, "dlq_id": copies[0][0].decode()},
            {"id": "2000-0", "consumer": "A", "deliveries": 3, "dlq_id": copies[1][0].decode()},
        ],
        "deleted": [{"id": "3000-0", "consumer": "A", "deliveries": 3}],
        "skipped": [],
    }
    assert [fields for _, fields in copies] == [
        {
            b"n": n,
            b"dlq_stream": b"s",
            b"dlq_group": b"g",
            b"dlq_id": orig,
            b"dlq_consumer": b"A",
            b"dlq_deliveries": b"3",
        }
        for n, orig in ((b"1", b"1000-0"), (b"2", b"2000-0"))
    ]
    assert pel(r) == [("4000-0", "A", 1), ("5000-0", "A", 1)]  # the others stay pending
    second = cli(*args)
    assert (second.json()["moved"], second.json()["deleted"]) == ([], [])
    assert r.xrange("dlq") == copies


def test_dead_letter_dry_run_changes_nothing(cli, r):
    setup_group(r, 3, read=3)
    redeliver(r, "A", 1, count=1)
    redeliver(r, "A", 1)  # (an entry deleted while pending is not delivered again: delete after)
    r.xdel("s", "3000-0")
    before = server_state(r)
    res = cli(
        "pending",
        "s",
        "g",
        "--dead-letter",
        "dlq",
        "--max-deliveries",
        "2",
        "--dry-run",
        "-o",
        "json",
    )
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "dlq": "dlq",
        "max_deliveries": 2,
        "dry_run": True,
        "moved": [
            {"id": "1000-0", "consumer": "A", "deliveries": 3},
            {"id": "2000-0", "consumer": "A", "deliveries": 2},
        ],
        "deleted": [{"id": "3000-0", "consumer": "A", "deliveries": 2}],
        "skipped": [],
    }
    assert server_state(r) == before
    table = cli(
        "pending",
        "s",
        "g",
        "--dead-letter",
        "dlq",
        "--max-deliveries",
        "3",
        "--dry-run",
        "-o",
        "table",
    )
    assert "would move 1 entry delivered 3+ times to 'dlq' (dry run: nothing changed)" in (
        " ".join(table.stdout.split())
    )
    assert server_state(r) == before


def test_dead_letter_refuses_a_non_stream_dlq(cli, r):
    setup_group(r, 1, read=1)
    redeliver(r, "A", 1)
    r.set("dlq", "x")
    one_line_error(
        cli("pending", "s", "g", "--dead-letter", "dlq", "--max-deliveries", "1"),
        1,
        "WRONGTYPE: dead-letter key 'dlq' holds a string, not a stream",
    )
    one_line_error(
        cli("pending", "s", "g", "--dead-letter", "s", "--max-deliveries", "1"),
        2,
        "the dead-letter stream must not be the stream itself",
    )
    assert pel(r) == [("1000-0", "A", 2)]


def test_help_has_an_example(run_cli):
    res = run_cli(["pending", "--help"])
    assert res.exit_code == 0 and "Example" in res.stdout
