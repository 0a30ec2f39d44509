"""publish on the three real servers: output, exit codes and what the stream holds after."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from tests.conftest import run_process


def entries(r: redis.Redis, stream: str) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(i.decode(), f) for i, f in r.xrange(stream)]


def test_pairs_print_the_new_id(cli, r):
    res = cli("publish", "orders", "order_id=42", "status=created")
    assert res.exit_code == 0, res.stderr
    [(eid, fields)] = entries(r, "orders")
    assert res.stdout == eid + "\n"
    assert fields == {b"order_id": b"42", b"status": b"created"}
    assert res.stderr == ""


def test_field_order_is_kept(cli, r):
    cli("publish", "s", "z=1", "a=2", "m=3")
    [(_, fields)] = r.xrange("s")
    assert list(fields.items()) == [(b"z", b"1"), (b"a", b"2"), (b"m", b"3")]


def test_json_event_and_json_output(cli, r):
    res = cli("publish", "orders", "--json", '{"order_id": 42, "tags": ["a"]}', "-o", "json")
    assert res.exit_code == 0, res.stderr
    [(eid, fields)] = entries(r, "orders")
    assert res.json() == [{"stream": "orders", "id": eid}]
    assert fields == {b"order_id": b"42", b"tags": b'["a"]'}


def test_explicit_id(cli, r):
    res = cli("publish", "s", "--id", "1795773600000-5", "a=1")
    assert (res.exit_code, res.stdout) == (0, "1795773600000-5\n")
    res = cli("publish", "s", "--id", "1795773600000-5", "a=2")
    assert res.exit_code == 1
    assert "stream ids only grow" in res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert r.xlen("s") == 1


def test_bad_id_is_a_usage_error(cli, r):
    res = cli("publish", "s", "--id", "banana", "a=1")
    assert res.exit_code == 2
    assert "bad --id 'banana'" in res.stderr
    assert not r.exists("s")


def test_field_without_equals(cli, r):
    res = cli("publish", "s", "a=1", "oops")
    assert res.exit_code == 2
    assert res.stderr == "error: bad field 'oops': accepted: FIELD=VALUE (split at the first '=')\n"
    assert not r.exists("s")


def test_no_fields_or_two_sources(cli, r):
    for args in (["publish", "s"], ["publish", "s", "a=1", "--json", '{"b": 2}']):
        res = cli(*args)
        assert res.exit_code == 2
        assert "one of them" in res.stderr
    assert not r.exists("s")


def test_maxlen_is_exact_unless_approx(cli, r):
    for i in range(200):
        r.xadd("s", {"i": i})
    res = cli("publish", "s", "--maxlen", "5", "i=200")
    assert res.exit_code == 0
    assert r.xlen("s") == 5
    for i in range(200):
        r.xadd("t", {"i": i})
    cli("publish", "t", "--maxlen", "5", "--approx", "i=200")
    assert r.xlen("t") > 5  # ~ removes whole radix nodes only


def test_minid_with_a_time(cli, r):
    r.xadd("s", {"a": 1}, id="1000-0")
    r.xadd("s", {"a": 2}, id="2000-0")
    res = cli("publish", "s", "--minid", "1970-01-01T00:00:01.500Z", "a=3")
    assert res.exit_code == 0, res.stderr
    assert [e[0] for e in entries(r, "s")][0] == "2000-0"
    assert r.xlen("s") == 2


def test_maxlen_and_minid_together(cli, r):
    res = cli("publish", "s", "--maxlen", "5", "--minid", "0", "a=1")
    assert res.exit_code == 2
    assert "not both" in res.stderr


def test_no_mkstream_on_a_missing_stream(cli, r):
    res = cli("publish", "nope", "--no-mkstream", "a=1")
    assert res.exit_code == 4
    assert "stream 'nope' does not exist" in res.stderr
    assert not r.exists("nope")
    r.xadd("yes", {"a": 0})
    assert cli("publish", "yes", "--no-mkstream", "a=1").exit_code == 0


def test_wrong_type_key(cli, r):
    r.set("plain", "x")
    res = cli("publish", "plain", "a=1")
    assert res.exit_code == 1
    assert "WRONGTYPE" in res.stderr
    assert r.get("plain") == b"x"


def test_bulk_file_100k(cli, r, tmp_path: Path):
    path = tmp_path / "events.ndjson"
    with path.open("w") as fh:
        for i in range(100_000):
            fh.write(json.dumps({"order_id": i, "status": "created", "amount": i * 1.5}) + "\n")
    res = cli("publish", "orders", "--file", str(path))
    assert res.exit_code == 0, res.stderr
    ids = res.stdout.split()
    assert len(ids) == 100_000
    assert r.xlen("orders") == 100_000
    first, last = r.xrange("orders", count=1), r.xrevrange("orders", count=1)
    assert (first[0][0].decode(), last[0][0].decode()) == (ids[0], ids[-1])
    assert first[0][1] == {b"order_id": b"0", b"status": b"created", b"amount": b"0.0"}
    assert last[0][1][b"order_id"] == b"99999"
    assert "published 100,000 events to 'orders'" in res.stderr


def test_bulk_from_stdin_with_yaml_output(cli, r):
    res = cli("publish", "s", "--file", "-", "-o", "yaml", input='{"a": "1"}\n{"a": "2"}\n')
    assert res.exit_code == 0, res.stderr
    ids = [e[0] for e in entries(r, "s")]
    assert res.stdout == "".join(f"- stream: s\n  id: {i}\n" for i in ids)


def test_bulk_yaml_file(cli, r, tmp_path: Path):
    path = tmp_path / "events.yml"
    path.write_text("- {order_id: 1}\n- {order_id: 2, note: hi}\n")
    res = cli("-q", "publish", "s", "--file", str(path))
    assert res.exit_code == 0
    assert res.stderr == ""
    assert [f for _, f in entries(r, "s")] == [
        {b"order_id": b"1"},
        {b"order_id": b"2", b"note": b"hi"},
    ]


def test_malformed_line_publishes_everything_before_it(cli, r, tmp_path: Path):
    path = tmp_path / "events.ndjson"
    lines = [json.dumps({"i": i}) for i in range(2500)]
    lines[2100] = '{"i": 2100,'
    path.write_text("\n".join(lines) + "\n")
    res = cli("publish", "s", "--file", str(path))
    assert res.exit_code == 2
    assert res.stderr.startswith("error: line 2101: invalid JSON")
    assert "2100 events before it were published" in res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert r.xlen("s") == 2100
    assert len(res.stdout.split()) == 2100


def test_non_object_line(cli, r, tmp_path: Path):
    path = tmp_path / "events.ndjson"
    path.write_text('{"a": 1}\n[1, 2]\n{"a": 3}\n')
    res = cli("publish", "s", "--file", str(path))
    assert res.exit_code == 2
    assert "line 2: expected a JSON object, got list" in res.stderr
    assert "1 event before it was published" in res.stderr
    assert r.xlen("s") == 1


def test_skip_resumes_a_run(cli, r, tmp_path: Path):
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(10)))
    res = cli("publish", "s", "--file", str(path), "--skip", "7")
    assert res.exit_code == 0
    assert [f[b"i"] for _, f in entries(r, "s")] == [b"7", b"8", b"9"]
    assert "after skipping 7" in res.stderr


def test_skip_and_id_need_the_right_source(cli, r, tmp_path: Path):
    assert cli("publish", "s", "a=1", "--skip", "2").exit_code == 2
    path = tmp_path / "e.ndjson"
    path.write_text('{"a": 1}\n')
    res = cli("publish", "s", "--file", str(path), "--id", "5-5")
    assert res.exit_code == 2
    assert "--id applies to a single event" in res.stderr
    assert not r.exists("s")


def test_missing_file_is_a_usage_error(cli, r):
    res = cli("publish", "s", "--file", "/nonexistent/events.ndjson")
    assert res.exit_code == 2
    assert "cannot read /nonexistent/events.ndjson" in res.stderr


def test_nothing_listening_masks_the_password(run_cli):
    res = run_cli(["-u", "redis://bob:hunter2@127.0.0.1:1/0", "publish", "s", "a=1"])
    assert res.exit_code == 3
    assert res.stderr.startswith("error: cannot connect to redis://bob:***@127.0.0.1:1/0")
    assert "hunter2" not in res.stdout + res.stderr
    assert len(res.stderr.splitlines()) == 1


def test_real_process_prints_only_the_id(one_server, r1):
    proc = run_process(["-u", one_server.url, "publish", "orders", "a=1"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == r1.xrange("orders")[0][0].decode()


def test_file_values_that_are_not_strings_are_json_text(cli, r, tmp_path: Path):
    path = tmp_path / "e.ndjson"
    path.write_text(
        '{"b": true, "n": null, "o": {"k": [1, "é"]}, "f": 2.5, "i": -3, "big": 1e100}\r\n'
    )
    res = cli("publish", "s", "--file", str(path))
    assert res.exit_code == 0, res.stderr
    [(_, fields)] = r.xrange("s")
    assert fields == {
        b"b": b"true",
        b"n": b"null",
        b"o": '{"k":[1,"é"]}'.encode(),
        b"f": b"2.5",
        b"i": b"-3",
        b"big": b"1e+100",
    }
