"""export and import on the real servers: byte-for-byte round trips, groups' state, malformed
input, a SIGKILLed import rerun with --keep-ids, and bounded memory on a million entries."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import ISOLATED_ENV_DROP, run_process, xrange_raw


def raw_entries(r: redis.Redis, stream: str) -> list[Any]:
    return xrange_raw(r, stream)  # every field name and value, in order


def fill(r: redis.Redis, stream: str, n: int, start_ms: int = 1) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, {"i": str(i), "payload": "x" * 20}, id=f"{start_ms + i}-0")
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def process_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}


def wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def test_round_trip_is_byte_for_byte(cli, r):
    # raw bytes written with redis-py: names and values that are not UTF-8, a repeated name,
    # an empty value, multi-byte UTF-8, and JSON-looking text
    r.execute_command(
        "XADD", "src", "1795773600000-0",
        b"\xff\xfe", b"\x00\x01\x80",
        b"dup", b"1", b"dup", b"2",
        b"empty", b"",
        b"text", "h\u00e9llo \u2603 \U0001f680".encode(),
        b"json", b'{"base64": "AAAA"}',
    )  # fmt: skip
    r.execute_command("XADD", "src", "1795773600000-7", b"\xc3", b"\xa9\xc3")
    fill(r, "src", 50, start_ms=1795773600001)
    exported = cli("export", "src")
    assert exported.exit_code == 0, exported.stderr
    assert len(exported.lines) == 52
    assert exported.ndjson()[0]["fields"] == [
        [{"base64": "//4="}, {"base64": "AAGA"}],
        ["dup", "1"],
        ["dup", "2"],
        ["empty", ""],
        ["text", "h\u00e9llo \u2603 \U0001f680"],
        ["json", '{"base64": "AAAA"}'],
    ]
    res = cli("import", "copy", "--keep-ids", "-o", "json", input=exported.stdout)
    assert res.exit_code == 0, res.stderr
    assert res.json() == {
        "stream": "copy",
        "keep_ids": True,
        "dry_run": False,
        "imported": 52,
        "skipped": 0,
        "first_id": "1795773600000-0",
        "last_id": "1795773600050-0",
        "last_source_id": "1795773600050-0",
        "groups": [],
        "seconds": res.json()["seconds"],
        "interrupted": False,
    }
    assert raw_entries(r, "copy") == raw_entries(r, "src")
    # and a second export of the copy is the same text, but for the stream name
    again = cli("export", "copy")
    assert again.stdout == exported.stdout.replace('"stream":"src"', '"stream":"copy"')


def test_file_and_new_ids(cli, r, tmp_path):
    fill(r, "src", 10)
    path = tmp_path / "out.ndjson"
    res = cli("export", "src", "--from", "3", "--to", "(8", "--file", str(path))
    assert res.exit_code == 1 or res.exit_code == 2  # '(' is a start, not an end
    res = cli("export", "src", "--from", "(2", "--to", "8", "--file", str(path))
    assert res.exit_code == 0, res.stderr
    assert res.stdout == ""
    assert res.stderr.startswith(f"exported 6 entries (3-0 .. 8-0) from 'src' to {path} in ")
    res = cli("import", "fresh", str(path), "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json()["imported"] == 6
    assert [f[b"i"] for _, f in r.xrange("fresh")] == [str(i).encode() for i in range(2, 8)]
    assert r.xrange("fresh")[0][0] == res.json()["first_id"].encode()
    assert int(res.json()["first_id"].split("-")[0]) > 1000  # new ids


def test_export_formats(cli, r):
    fill(r, "src", 2)
    res = cli("export", "src", "-o", "json")
    assert res.exit_code == 2
    assert res.stderr == (
        "error: export writes NDJSON envelopes (the format import reads), not json; use "
        "`streamctl range` for tables, json or yaml\n"
    )
    assert cli("export", "src", "-o", "ndjson").lines == cli("export", "src").lines


def test_export_errors(cli, r, tmp_path):
    assert cli("export", "nope").exit_code == 4
    r.set("k", "v")
    assert cli("export", "k").exit_code == 1
    fill(r, "src", 1)
    res = cli("export", "src", "--file", str(tmp_path / "no" / "such" / "dir.ndjson"))
    assert res.exit_code == 2
    assert "cannot write" in res.stderr


def test_with_groups(cli, r):
    fill(r, "orders", 6)
    r.xgroup_create("orders", "billing", id="0")
    r.xreadgroup("billing", "alice", {"orders": ">"}, count=3)
    r.xack("orders", "billing", "1-0")
    r.xgroup_create("orders", "audit", id="$")
    res = cli("export", "orders", "--with-groups")
    assert res.exit_code == 0, res.stderr
    audit, billing = res.ndjson()[:2]  # the server lists groups by name
    idle = [p["idle_ms"] for p in billing["group"]["pending"]]
    assert billing == {
        "stream": "orders",
        "group": {
            "name": "billing",
            "last_delivered_id": "3-0",
            "entries_read": 3,
            "consumers": ["alice"],
            "pending": [
                {"id": "2-0", "consumer": "alice", "deliveries": 1, "idle_ms": idle[0]},
                {"id": "3-0", "consumer": "alice", "deliveries": 1, "idle_ms": idle[1]},
            ],
        },
    }
    assert audit["group"]["name"] == "audit"
    assert audit["group"]["last_delivered_id"] == "6-0"
    assert len(res.lines) == 8
    imported = cli("import", "copy", "--keep-ids", "-o", "json", input=res.stdout)
    assert imported.exit_code == 0, imported.stderr
    assert imported.json()["groups"] == [
        {
            "group": "audit",
            "action": "created",
            "last_delivered_id": "6-0",
            "entries_read": 6,
            "consumers": 0,
            "pending_restored": 0,
            "pending_dropped": 0,
        },
        {
            "group": "billing",
            "action": "created",
            "last_delivered_id": "3-0",
            "entries_read": 3,
            "consumers": 1,
            "pending_restored": 2,
            "pending_dropped": 0,
        },
    ]
    groups = {g["name"]: g for g in r.xinfo_groups("copy")}
    assert (groups[b"billing"]["last-delivered-id"], groups[b"billing"]["pending"]) == (b"3-0", 2)
    assert (groups[b"billing"]["lag"], groups[b"audit"]["lag"]) == (3, 0)
    assert [p["message_id"] for p in r.xpending_range("copy", "billing", "-", "+", 10)] == [
        b"2-0",
        b"3-0",
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{oops", "error: line 3: invalid JSON"),
        ('{"fields": {"a": "1"}}', "error: line 3: no 'id'"),
        ('{"id": "99-0"}', "error: line 3: no 'fields'"),
        (
            '{"id": "1-5", "fields": {"a": "1"}}',
            "error: line 3: id 1-5 is not after the previous id 2-0",
        ),
    ],
)
def test_malformed_line_names_it_and_writes_nothing_after(cli, r, bad, message):
    fill(r, "src", 5)
    lines = cli("export", "src").lines
    text = "\n".join([*lines[:2], bad, *lines[2:]]) + "\n"
    res = cli("import", "copy", "--keep-ids", input=text)
    assert res.exit_code == 2
    assert res.stderr.startswith(message)
    assert res.stderr.endswith("; 2 entries before it were imported\n")
    assert len(res.stderr.splitlines()) == 1
    assert [i for i, _ in r.xrange("copy")] == [b"1-0", b"2-0"]


@pytest.mark.parametrize(
    "repeated_at, imported",
    [(2, "1 entry before it was imported"), (4, "3 entries before it were imported")],
)
def test_repeated_id_counts_what_was_imported_in_words(cli, r, repeated_at, imported):
    fill(r, "src", 5)
    lines = cli("export", "src").lines
    before = lines[: repeated_at - 1]
    text = "\n".join([*before, before[-1], *lines[repeated_at - 1 :]]) + "\n"
    res = cli("import", "copy", "--keep-ids", input=text)
    assert res.exit_code == 2
    last = f"{repeated_at - 1}-0"
    assert res.stderr == (
        f"error: line {repeated_at}: id {last} is not after the previous id {last} "
        f"(with --keep-ids, ids must increase); {imported}\n"
    )
    assert [i.decode() for i, _ in r.xrange("copy")] == [f"{n}-0" for n in range(1, repeated_at)]


def test_import_missing_file_and_wrong_type(cli, r, tmp_path):
    res = cli("import", "s", str(tmp_path / "missing.ndjson"))
    assert res.exit_code == 2
    assert "cannot read" in res.stderr
    r.set("k", "v")
    res = cli("import", "k", input='{"id": "1-0", "fields": {"a": "1"}}\n')
    assert res.exit_code == 1
    assert "WRONGTYPE" in res.stderr


def test_import_dry_run(cli, r):
    fill(r, "src", 4)
    text = cli("export", "src").stdout
    res = cli("import", "copy", "--keep-ids", "--dry-run", "-o", "json", input=text)
    assert res.exit_code == 0, res.stderr
    assert (res.json()["imported"], res.json()["dry_run"]) == (4, True)
    assert not r.exists("copy")


# ---- interruptions: real processes ----


def test_sigkilled_import_rerun_with_keep_ids_gives_exactly_the_source(one_server, r1, tmp_path):
    n = 150_000
    fill(r1, "src", n)
    path = tmp_path / "src.ndjson"
    exported = run_process(["-u", one_server.url, "export", "src", "--file", str(path)])
    assert exported.returncode == 0, exported.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", one_server.url, "import", "copy", str(path),
         "--keep-ids"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=process_env(),
    )  # fmt: skip
    try:
        wait_for(lambda: r1.xlen("copy") >= 20_000)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = r1.xlen("copy")
    assert 20_000 <= done < n, "the import was not killed halfway"
    rerun = run_process(
        ["-u", one_server.url, "import", "copy", str(path), "--keep-ids", "-o", "json"]
    )
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert (report["skipped"], report["imported"]) == (done, n - done)
    assert raw_entries(r1, "copy") == raw_entries(r1, "src")


def test_interrupted_export_continues_exactly(one_server, r1, tmp_path):
    n = 200_000
    fill(r1, "src", n)
    path = tmp_path / "part.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", one_server.url, "export", "src", "--file",
         str(path)],
        stderr=subprocess.PIPE,
        env=process_env(),
    )  # fmt: skip
    try:
        wait_for(lambda: path.exists() and path.stat().st_size > 500_000)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    m = re.search(r"continue with --from '\((\d+-\d+)'\n$", err.decode())
    assert m, err
    lines = path.read_text().splitlines()
    assert 0 < len(lines) < n
    assert json.loads(lines[-1])["id"] == m.group(1)
    rest = run_process(["-u", one_server.url, "export", "src", "--from", f"({m.group(1)}"])
    assert rest.returncode == 0
    full = run_process(["-u", one_server.url, "export", "src"])
    assert path.read_bytes() + rest.stdout == full.stdout


# ---- a million entries in bounded memory ----


PEAK_PROBE = """
import runpy, sys
sys.argv = ["streamctl", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("streamctl", run_name="__main__")
except SystemExit as exc:
    code = exc.code or 0
status = open("/proc/self/status").read()
sys.stderr.write("PEAK_KB=" + status.split("VmHWM:")[1].split()[0] + "\\n")
sys.exit(code)
"""


def peak_rss_kb(args: list[str]) -> int:
    """Peak RSS of streamctl in a child process: VmHWM of its own address space (wait4's
    ru_maxrss would count the pages shared with pytest between fork and exec)."""
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=process_env(),
        timeout=120,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    m = re.search(r"PEAK_KB=(\d+)", err)
    assert m, err
    return int(m.group(1))


def fill_fast(r: redis.Redis, stream: str, n: int) -> None:
    import hiredis

    conn = r.connection_pool.get_connection()
    try:
        for start in range(0, n, 10_000):
            end = min(n, start + 10_000)
            conn.send_packed_command(
                [b"".join(
                    hiredis.pack_command(("XADD", stream, "*", "i", str(i), "payload", "x" * 40))
                    for i in range(start, end)
                )]
            )  # fmt: skip
            for _ in range(start, end):
                conn.read_response()
    finally:
        r.connection_pool.release(conn)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_million_entries_replay_and_export_in_bounded_memory(one_server, r1, tmp_path):
    url = one_server.url
    fill_fast(r1, "small", 100_000)
    fill_fast(r1, "big", 1_000_000)
    small_export = peak_rss_kb(["-u", url, "export", "small", "--file", str(tmp_path / "s")])
    big_export = peak_rss_kb(["-u", url, "export", "big", "--file", str(tmp_path / "b")])
    small_replay = peak_rss_kb(["-u", url, "replay", "small", "--from", "-", "--into", "s2"])
    big_replay = peak_rss_kb(["-u", url, "replay", "big", "--from", "-", "--into", "b2"])
    assert r1.xlen("b2") == 1_000_000
    assert sum(1 for _ in (tmp_path / "b").open()) == 1_000_000
    # ten times the entries, (nearly) the same memory
    assert big_export < small_export + 10_000, (small_export, big_export)
    assert big_replay < small_replay + 10_000, (small_replay, big_replay)
    assert max(big_export, big_replay) < 100_000


def test_import_from_a_terminal_is_refused(one_server, r1):
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "streamctl", "-u", one_server.url, "import", "s"],
            stdin=slave,
            capture_output=True,
            env=process_env(),
            timeout=30,
        )
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 2
    assert proc.stderr == (
        b"error: give FILE, or pipe the envelopes in: streamctl export S | streamctl import T\n"
    )
    assert not r1.exists("s")
