"""replay on the real servers: --into (here and on another server), --group, interruption with
an exact continuation, and every error path."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

from tests.conftest import ISOLATED_ENV_DROP, run_process, xrange_raw
from tests.servers import ServerProcess, free_port, start_server


def fill(r: redis.Redis, stream: str, n: int, start_ms: int = 1) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(
            stream, {"i": str(i), "kind": "even" if i % 2 == 0 else "odd"}, id=f"{start_ms + i}-0"
        )
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def field_lists(r: redis.Redis, stream: str) -> list[list[bytes]]:
    return [fields for _, fields in xrange_raw(r, stream)]  # names and values, in order


def test_into_json_report(cli, r):
    fill(r, "orders", 10)
    res = cli(
        "replay",
        "orders",
        "--from",
        "3",
        "--to",
        "1970-01-01T00:00:00.008Z",
        "--into",
        "again",
        "-o",
        "json",
    )
    assert res.exit_code == 0, res.stderr
    data = res.json()
    new_ids = [i.decode() for i, _ in r.xrange("again")]
    assert data == {
        "stream": "orders",
        "target": "again",
        "target_server": None,
        "from_id": "3-0",
        "to_id": "8-18446744073709551615",
        "dry_run": False,
        "scanned": 6,
        "copied": 6,
        "first_id": "3-0",
        "first_time": "1970-01-01T00:00:00.003Z",
        "last_id": "8-0",
        "last_time": "1970-01-01T00:00:00.008Z",
        "resume_after": "8-0",
        "first_new_id": new_ids[0],
        "last_new_id": new_ids[-1],
        "seconds": data["seconds"],
        "interrupted": False,
    }
    assert [f[b"i"] for _, f in r.xrange("again")] == [str(i).encode() for i in range(2, 8)]
    assert res.stderr.startswith("replayed 6 entries from 'orders' into 'again' in ")


def test_into_table_and_quiet(cli, r):
    fill(r, "orders", 3)
    res = cli("-q", "replay", "orders", "--from", "-", "--into", "again", "-o", "table")
    assert res.exit_code == 0, res.stderr
    assert re.search(r"^  copied +3 of 3 entries read", res.stdout, re.M), res.stdout
    assert res.stderr == ""


def test_match_count_and_dry_run(cli, r):
    fill(r, "orders", 20)
    res = cli(
        "replay",
        "orders",
        "--from",
        "-",
        "--into",
        "evens",
        "--match",
        "kind=even",
        "--count",
        "4",
        "--dry-run",
        "-o",
        "json",
    )
    assert res.exit_code == 0, res.stderr
    assert (res.json()["copied"], res.json()["last_id"], res.json()["dry_run"]) == (4, "7-0", True)
    assert not r.exists("evens")
    res = cli(
        "replay", "orders", "--from", "-", "--into", "evens", "--match", "kind=even", "--count", "4"
    )
    assert res.exit_code == 0, res.stderr
    assert [f[b"i"] for _, f in r.xrange("evens")] == [b"0", b"2", b"4", b"6"]


def test_group_rewind(cli, r):
    fill(r, "orders", 10)
    r.xgroup_create("orders", "billing", id="$")
    res = cli("replay", "orders", "--from", "(4-0", "--group", "billing", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.json() == {
        "stream": "orders",
        "group": "billing",
        "dry_run": False,
        "previous_id": "10-0",
        "previous_time": "1970-01-01T00:00:00.010Z",
        "new_id": "4-0",
        "new_time": "1970-01-01T00:00:00.004Z",
        "entries_read": 4,
        "redeliver": 6,
        "skip": 0,
    }
    [info] = r.xinfo_groups("orders")
    assert (info["last-delivered-id"], info["lag"]) == (b"4-0", 6)


def test_group_rewind_dry_run_table(cli, r):
    fill(r, "orders", 10)
    r.xgroup_create("orders", "billing", id="$")
    res = cli("replay", "orders", "--from", "5", "--group", "billing", "--dry-run", "-o", "table")
    assert res.exit_code == 0, res.stderr
    assert re.search(r"would become +4-0  1970-01-01T00:00:00.004Z", res.stdout), res.stdout
    assert re.search(r"delivered again +6 entries", res.stdout), res.stdout
    assert r.xinfo_groups("orders")[0]["last-delivered-id"] == b"10-0"


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--from", "-"], 2, "give --into TARGET (copy the entries) or --group GROUP (rewind it)"),
        (["--from", "-", "--into", "a", "--group", "g"], 2, "give --into TARGET"),
        (
            ["--from", "-", "--group", "g", "--to", "5", "--rate", "3"],
            2,
            "--to, --rate apply to --into",
        ),
        (["--from", "soon", "--into", "a"], 2, "bad id or time 'soon'"),
        (["--from", "-", "--into", "a", "--match", "x"], 2, "bad --match 'x'"),
        (["--from", "-", "--into", "a", "--count", "0"], 2, "bad --count 0"),
        (["--from", "-", "--into", "a", "--to", "(5"], 2, "bad --to '(5'"),
        (["--from", "-", "--group", "nope"], 4, "group 'nope' does not exist on stream 'orders'"),
        (["--from", "-", "--into", "str"], 1, "WRONGTYPE: key 'str' holds a string, not a stream"),
    ],
)
def test_errors(cli, r, args, code, message):
    fill(r, "orders", 3)
    r.set("str", "x")
    res = cli("replay", "orders", *args)
    assert res.exit_code == code, res.stderr
    assert message in res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert not r.exists("a")


def test_missing_stream(cli, r):
    res = cli("replay", "nope", "--from", "-", "--into", "a")
    assert (res.exit_code, res.stderr) == (4, "error: stream 'nope' does not exist\n")


# ---- another server ----


@pytest.fixture(scope="module")
def second_server() -> Iterator[ServerProcess]:
    srv = start_server("valkey9.1")
    yield srv
    srv.stop()


def test_target_url_copies_between_servers(cli1, r1, second_server):
    target = second_server.client()
    target.flushall()
    r1.execute_command("XADD", "orders", "1-0", b"bin", b"\xff\x00", b"dup", b"1", b"dup", b"2")
    fill(r1, "orders", 2500, start_ms=10)
    res = cli1(
        "replay",
        "orders",
        "--from",
        "-",
        "--into",
        "mirror",
        "--target-url",
        second_server.url,
        "-o",
        "json",
    )
    assert res.exit_code == 0, res.stderr
    assert (res.json()["copied"], res.json()["target_server"]) == (2501, second_server.url)
    assert field_lists(target, "mirror") == field_lists(r1, "orders")
    assert not r1.exists("mirror")


def test_unreachable_target(cli1, r1):
    fill(r1, "orders", 3)
    url = f"redis://127.0.0.1:{free_port()}/0"
    res = cli1("replay", "orders", "--from", "-", "--into", "mirror", "--target-url", url)
    assert res.exit_code == 3
    assert res.stderr.startswith(f"error: target {url}: cannot connect")
    assert len(res.stderr.splitlines()) == 1


def test_target_password_is_masked(cli1, r1):
    fill(r1, "orders", 3)
    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    res = cli1("replay", "orders", "--from", "-", "--into", "mirror", "--target-url", url)
    assert res.exit_code == 3
    assert "s3cret" not in res.stderr


# ---- interruption: a real process, SIGINT, and the printed continuation ----


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.mark.parametrize(
    "sig, code, name", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_interrupted_replay_continues_exactly_once(one_server, r1, sig, code, name):
    fill(r1, "src", 20_000)
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamctl",
            "-u",
            one_server.url,
            "replay",
            "src",
            "--from",
            "-",
            "--into",
            "dst",
            "--rate",
            "4000",
            "-o",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        wait_for(lambda: r1.xlen("dst") >= 2000)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    stderr = err.decode()
    m = re.fullmatch(
        rf"error: {name}: copied ([\d,]+) entries \(last id copied (\d+-\d+)\); "
        r"continue with --from '\((\d+-\d+)'\n",
        stderr,
    )
    assert m, stderr
    copied = int(m.group(1).replace(",", ""))
    assert 2000 <= copied < 20_000
    assert r1.xlen("dst") == copied
    report = __import__("json").loads(out)
    assert (report["interrupted"], report["copied"], report["resume_after"]) == (
        True,
        copied,
        m.group(3),
    )
    rest = run_process(
        ["-u", one_server.url, "-q", "replay", "src", "--from", f"({m.group(3)}", "--into", "dst"]
    )
    assert rest.returncode == 0, rest.stderr
    assert field_lists(r1, "dst") == field_lists(r1, "src")


def test_target_dying_mid_replay_says_how_far_it_got(one_server, r1):
    fill(r1, "src", 50_000)
    target = start_server("redis7.0")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamctl", "-u", one_server.url, "replay", "src", "--from",
             "-", "--into", "dst", "--target-url", target.url, "--rate", "20000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP},
        )  # fmt: skip
        tc = target.client()
        wait_for(lambda: tc.xlen("dst") >= 4000)
        target.kill()
        _, err = proc.communicate(timeout=30)
    finally:
        target.stop()
    assert proc.returncode == 3, err
    stderr = err.decode()
    assert re.fullmatch(
        rf"error: target {re.escape(target.url)}: .*; [\d,]+ entries were copied before it, and up "
        r"to [\d,]+ more may have been; continue with --from '\(\d+-\d+'\n",
        stderr,
    ), stderr


def run_on_a_terminal(args: list[str]) -> tuple[int, bytes]:
    """Run streamctl with stderr on a pseudo-terminal; returns (exit code, what it wrote there)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", *args],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP},
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen += data
    os.close(master)
    return proc.wait(30), seen


def test_progress_bar_on_a_terminal_only(one_server, r1):
    fill(r1, "src", 30_000)
    code, seen = run_on_a_terminal(
        ["-u", one_server.url, "replay", "src", "--from", "-", "--into", "a"]
    )
    assert code == 0
    assert b"replaying" in seen and b"/30000" not in seen  # no total without --count
    assert b"replayed 30,000 entries" in seen
    code, seen = run_on_a_terminal(
        ["-u", one_server.url, "-q", "replay", "src", "--from", "-", "--into", "b", "--count", "9"]
    )
    assert (code, seen) == (0, b"")
    assert r1.xlen("b") == 9
