"""--match and --where mean the same in tail and range (one implementation: core/filters.py):
a repeated field counts with its last value, odd bytes stand for themselves, a bad filter is
exit 2 naming the flag before anything is read."""

from __future__ import annotations

import pytest
import redis

IDS = [f"1795773600000-{i}" for i in range(6)]


def fill(r: redis.Redis) -> None:
    pairs = [
        [("status", "new"), ("amount", "50"), ("status", "shipped")],  # repeated: last wins
        [("status", "shipped"), ("amount", "150"), ("status", "new")],
        [("status", "shipped"), ("amount", "250")],
        [("status", "new"), ("amount", "500")],
        [("amount", "90")],
        [("status", b"\xffship"), ("amount", "1")],
    ]
    for eid, fields in zip(IDS, pairs, strict=True):
        # XADD keeps repeated names, which redis-py's dict form cannot express
        args: list[object] = ["XADD", "orders", eid]
        for k, v in fields:
            args += [k, v]
        r.execute_command(*args)


def ids_of(res) -> list[str]:
    assert res.exit_code == 0, res.stderr
    return [e["id"] for e in res.ndjson()]


SELECTIONS = [
    (["--match", "status=shipped"], [IDS[0], IDS[2]]),
    (["--where", "fields.status == 'shipped'"], [IDS[0], IDS[2]]),
    (["--match", "status=new"], [IDS[1], IDS[3]]),
    (["--match", "status=*ship*"], [IDS[0], IDS[2], IDS[5]]),
    (["--where", "to_number(fields.amount) > `100`"], [IDS[1], IDS[2], IDS[3]]),
    (["--match", "status=s*", "--where", "to_number(fields.amount) > `100`"], [IDS[2]]),
    (["--where", "!(fields.status)"], [IDS[4]]),
]


@pytest.mark.parametrize(("args", "expected"), SELECTIONS)
def test_tail_and_range_select_the_same_entries(cli, r, args, expected):
    fill(r)
    assert ids_of(cli("range", "orders", *args)) == expected
    assert ids_of(cli("tail", "orders", "--from", "0", "--no-follow", *args)) == expected
    r.xgroup_create("orders", "g", "0")
    in_group = cli("tail", "orders", "-g", "g", "-c", "c", "--from", "0", "--no-follow", *args)
    assert ids_of(in_group) == expected
    # in a group, the entries that do not pass stay pending
    pending = [p["message_id"].decode() for p in r.xpending_range("orders", "g", "-", "+", 100)]
    assert pending == [i for i in IDS if i not in expected]


def test_range_count_counts_passing_entries(cli, r):
    fill(r)
    assert ids_of(cli("range", "orders", "--match", "status=new", "-n", "1")) == [IDS[1]]
    res = cli("range", "orders", "--reverse", "--where", "fields.amount", "-n", "2")
    assert ids_of(res) == [IDS[5], IDS[4]]


def test_range_filter_across_batches(cli, r):
    for i in range(2500):  # more than one XRANGE batch
        r.xadd("big", {"i": str(i), "even": "yes" if i % 2 == 0 else "no"})
    res = cli("range", "big", "--where", "fields.even == 'yes'")
    assert res.exit_code == 0, res.stderr
    assert [e["fields"]["i"] for e in res.ndjson()] == [str(i) for i in range(0, 2500, 2)]


def test_nothing_matching_says_so_on_a_table(cli, r):
    fill(r)
    res = cli("range", "orders", "--match", "status=lost", "-o", "table")
    assert res.exit_code == 0
    assert "no entries matching status=lost in 'orders'" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "fields.status =="], "bad --where 'fields.status ==': incomplete expression "
         "at position 16"),
        (["--where", "nope(fields)"], "bad --where 'nope(fields)': unknown function nope()"),
        (["--match", "status"], "bad --match 'status': give FIELD=GLOB"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", [["range", "orders"], ["tail", "orders", "--no-follow"]])
def test_bad_filter_is_exit_2_naming_the_flag(run_cli, command, args, message):
    # no server at that URL: the filter is refused before connecting
    res = run_cli(["-u", "redis://127.0.0.1:1/0", *command, *args])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: " + message) and res.stderr.count("\n") == 1
