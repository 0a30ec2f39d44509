"""`ack` on the three real servers: ids or --stdin, counts, and a missing group is exit 4."""

from __future__ import annotations

import redis


def setup_group(r: redis.Redis, n: int, read: int) -> None:
    for i in range(n):
        r.xadd("s", {"n": str(i + 1)}, id=f"{(i + 1) * 1000}-0")
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "A", {"s": ">"}, count=read)


def pending_ids(r: redis.Redis) -> list[str]:
    return [p["message_id"].decode() for p in r.xpending_range("s", "g", "-", "+", 100)]


def one_line_error(res, code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert res.stderr == f"error: {message}\n"


def test_ack_ids_reports_acked_and_not_pending(cli, r):
    setup_group(r, 4, read=3)
    res = cli("ack", "s", "g", "1000-0", "3000", "4000-0", "1000-0", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == {
        "stream": "s",
        "group": "g",
        "requested": 3,
        "acked": 2,
        "not_pending": 1,
    }
    assert pending_ids(r) == ["2000-0"]
    table = cli("ack", "s", "g", "2000-0", "9000-0", "-o", "table")
    assert table.stdout == "acknowledged 1 of 2 ids in group 'g' on 's' (1 was not pending)\n"
    assert pending_ids(r) == []


def test_ack_stdin_takes_ids_or_the_ndjson_of_pending(cli, r):
    setup_group(r, 5, read=5)
    listing = cli("pending", "s", "g", "--end", "2000-0", "-o", "ndjson").stdout
    res = cli("ack", "s", "g", "--stdin", "-o", "json", input=listing + "\n5000-0\n")
    assert res.json()["acked"] == 3
    assert pending_ids(r) == ["3000-0", "4000-0"]


def test_ack_stdin_bad_line_acks_what_came_before(cli, r):
    setup_group(r, 3, read=3)
    res = cli("ack", "s", "g", "--stdin", input="1000-0\nnot-an-id\n2000-0\n")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: line 2: bad id 'not-an-id': accepted:")
    assert res.stderr.endswith("; acknowledged 1 of the 1 id before it\n")
    assert pending_ids(r) == ["2000-0", "3000-0"]


def test_ack_missing_group_or_stream_is_exit_4(cli, r):
    one_line_error(cli("ack", "s", "g", "1-0"), 4, "stream 's' does not exist")
    setup_group(r, 1, read=1)
    one_line_error(cli("ack", "s", "nog", "1000-0"), 4, "group 'nog' does not exist on stream 's'")
    one_line_error(
        cli("ack", "s", "nog", "--stdin", input="1000-0\n"),
        4,
        "group 'nog' does not exist on stream 's'",
    )
    assert pending_ids(r) == ["1000-0"]


def test_ack_usage_errors(cli1, r1):
    one_line_error(
        cli1("ack", "s", "g"), 2, "give the ids as arguments or with --stdin (one of them)"
    )
    one_line_error(
        cli1("ack", "s", "g", "1-0", "--stdin", input="2-0\n"),
        2,
        "give the ids as arguments or with --stdin (one of them)",
    )
    bad = cli1("ack", "s", "g", "nope")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: bad id 'nope'")


def test_help_has_an_example(run_cli):
    res = run_cli(["ack", "--help"])
    assert res.exit_code == 0 and "Example" in res.stdout
