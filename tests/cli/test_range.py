"""range on the three real servers: every id/time form, batching, formats and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis


def fill(r: redis.Redis, stream: str, ids: list[str]) -> None:
    for i, eid in enumerate(ids):
        r.xadd(stream, {"i": str(i)}, id=eid)


IDS = [
    "1795773600000-0",
    "1795773600000-1",
    "1795773601000-0",
    "1795777200000-0",
    "1795860000000-0",
]
#       10:00:00.000        10:00:00.000 #1     10:00:01          11:00:00          next day 10:00


def got(res) -> list[str]:
    assert res.exit_code == 0, res.stderr
    return [e["id"] for e in res.ndjson()]


def test_everything_in_order_as_ndjson_on_a_pipe(cli, r):
    fill(r, "s", IDS)
    res = cli("range", "s")
    assert got(res) == IDS
    assert res.ndjson()[0] == {
        "stream": "s",
        "id": "1795773600000-0",
        "time": "2026-11-27T10:00:00.000Z",
        "fields": {"i": "0"},
    }


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("1795773600000", "1795773600000", IDS[:2]),
        ("1795773600000-1", "+", IDS[1:]),
        ("(1795773600000-0", "1795773601000", IDS[1:3]),
        ("(1795773600000", "+", IDS[2:]),
        ("2026-11-27T10:00:01Z", "2026-11-27T11:00:00Z", IDS[2:4]),
        ("2026-11-27T11:00:00+01:00", "2026-11-27T10:00:00", IDS[:2]),
        ("2026-11-27", "2026-11-27", IDS[:4]),
        ("(2026-11-27", "+", IDS[4:]),
        ("0", "1795773600000-0", IDS[:1]),
        ("-", "(1795773601000-0", IDS[:2]),
    ],
)
def test_start_and_end_forms(cli, r, start, end, expected):
    fill(r, "s", IDS)
    assert got(cli("range", "s", start, end)) == expected


def test_duration_uses_the_server_clock(cli, r):
    r.xadd("s", {"old": "1"}, id="1000-0")
    now_id = r.xadd("s", {"new": "1"}).decode()
    assert got(cli("range", "s", "1h")) == [now_id]
    assert got(cli("range", "s", "-", "1h")) == ["1000-0"]


def test_count_and_reverse(cli, r):
    fill(r, "s", IDS)
    assert got(cli("range", "s", "--count", "2")) == IDS[:2]
    assert got(cli("range", "s", "--reverse", "-n", "2")) == IDS[::-1][:2]
    assert got(cli("range", "s", "2026-11-27", "2026-11-27", "-r")) == IDS[:4][::-1]
    assert got(cli("range", "s", "--count", "0")) == []


def test_batches_cover_a_long_stream_exactly(cli, r):
    pipe = r.pipeline(transaction=False)
    for i in range(2500):
        pipe.xadd("s", {"i": str(i)}, id=f"{1000 + i // 3}-{i % 3}")
    pipe.execute()
    res = cli("range", "s")
    assert [e["fields"]["i"] for e in res.ndjson()] == [str(i) for i in range(2500)]
    rev = cli("range", "s", "--reverse")
    assert [e["fields"]["i"] for e in rev.ndjson()] == [str(i) for i in reversed(range(2500))]
    some = cli("range", "s", "(1001-1", "--count", "1500")
    assert [e["fields"]["i"] for e in some.ndjson()] == [str(i) for i in range(5, 1505)]


def test_json_is_one_array(cli, r):
    fill(r, "s", IDS[:2])
    res = cli("range", "s", "-o", "json")
    assert [e["id"] for e in res.json()] == IDS[:2]
    empty = cli("range", "s", "0", "1", "-o", "json")
    assert empty.json() == []


def test_yaml(cli, r):
    fill(r, "s", IDS[:1])
    res = cli("range", "s", "-o", "yaml")
    assert res.stdout == (
        "- stream: s\n  id: 1795773600000-0\n  time: '2026-11-27T10:00:00.000Z'\n"
        "  fields:\n    i: '0'\n"
    )


def test_table_shows_the_time_beside_the_id(cli, r):
    fill(r, "s", IDS[:1])
    res = cli("range", "s", "-o", "table")
    assert res.exit_code == 0
    row = [line for line in res.lines if "1795773600000-0" in line][0]
    assert "2026-11-27T10:00:00.000Z" in row
    assert "i=0" in row


def test_binary_values_are_base64(cli, r):
    r.xadd("s", {b"bin": b"\xff\xfe\x00", b"txt": "ü".encode()}, id="5-0")
    [entry] = cli("range", "s").ndjson()
    assert entry["fields"] == {"bin": {"base64": "//4A"}, "txt": "ü"}


def test_missing_stream(cli, r):
    res = cli("range", "nope")
    assert res.exit_code == 4
    assert res.stderr == "error: stream 'nope' does not exist\n"


def test_wrong_type(cli, r):
    r.set("k", "v")
    res = cli("range", "k")
    assert res.exit_code == 1
    assert "WRONGTYPE" in res.stderr and "'k'" in res.stderr


@pytest.mark.parametrize("bad", ["yesterday", "12-ab", "$"])
def test_bad_id(cli, r, bad):
    r.xadd("s", {"a": 1})
    res = cli("range", "s", bad)
    assert res.exit_code == 2
    assert len(res.stderr.splitlines()) == 1
    assert "accepted" in res.stderr


def test_bad_count_and_format(cli, r):
    r.xadd("s", {"a": 1})
    assert cli("range", "s", "--count", "-1").exit_code == 2
    res = cli("range", "s", "-o", "xml")
    assert res.exit_code == 2
    assert "accepted auto, table, json, ndjson or yaml" in res.stderr


def test_head_closes_the_pipe_quietly(one_server, r1):
    pipe = r1.pipeline(transaction=False)
    for i in range(20_000):
        pipe.xadd("big", {"i": i, "pad": "x" * 100})
    pipe.execute()
    cmd = f"{sys.executable} -m streamctl -u {one_server.url} range big | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert json.loads(proc.stdout)["fields"]["i"] == "0"
