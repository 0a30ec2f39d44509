"""`redrive` interrupted: the server SIGKILLed and restarted (AOF on, appendfsync always), and the
command SIGTERMed, each mid-run, then a rerun. The guarantee (SPEC `redrive`): each entry is
published and deleted from the DLQ in one atomic step, so every DLQ entry ends up published
exactly once (counted by redriven_from), with its fields and without the dlq_* fields.
Checked while the run goes: every state of the server (read in one MULTI) has
len(DLQ) + len(targets) == the DLQ's length at the start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.conftest import ISOLATED_ENV_DROP
from tests.servers import ServerProcess

TOTAL = 40_000
TARGETS = ("jobs-a", "jobs-b")
KILL_AT = 4_000  # entries published when the server is killed / the command is stopped


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}


def fill(client: redis.Redis) -> dict[bytes, list[bytes]]:
    """The DLQ: TOTAL dead letters of two streams; returns DLQ id -> the fields to publish."""
    pipe = client.pipeline(transaction=False)
    for i in range(TOTAL):
        pipe.execute_command(
            "XADD", "dlq", f"{1000 + i}-0", "n", str(i), "job", f"job {i}",
            "dlq_stream", TARGETS[i % 2], "dlq_group", "workers", "dlq_id", f"{i + 1}-0",
            "dlq_consumer", "alice", "dlq_deliveries", "5",
        )  # fmt: skip
    pipe.execute()
    return {f"{1000 + i}-0".encode(): [b"n", str(i).encode(), b"job", f"job {i}".encode()]
            for i in range(TOTAL)}  # fmt: skip


def raw_range(client: redis.Redis, stream: str) -> list[tuple[bytes, list[bytes]]]:
    return [(e, list(f)) for e, f in client.execute_command("XRANGE", stream, "-", "+")]


def atomic_counts(client: redis.Redis) -> tuple[int, int]:
    """(DLQ length, entries published), read in one MULTI: one state of the server."""
    pipe = client.pipeline(transaction=True)
    pipe.xlen("dlq")
    for t in TARGETS:
        pipe.xlen(t)
    dlq, *published = pipe.execute()
    return int(dlq), sum(int(n) for n in published)


def published(client: redis.Redis, source: dict[bytes, list[bytes]]) -> Counter[bytes]:
    """How many times each DLQ id was published; each copy is the entry's fields (no dlq_*
    fields) then redriven_from, in the stream its dlq_stream names."""
    seen: Counter[bytes] = Counter()
    for target in TARGETS:
        for _, flat in raw_range(client, target):
            assert flat[-2] == b"redriven_from"
            sid = flat[-1]
            assert flat[:-2] == source[sid]
            assert TARGETS[int(source[sid][1]) % 2] == target
            seen[sid] += 1
    return seen


def raw_client(srv: ServerProcess) -> redis.Redis:
    client = srv.client()
    client.set_response_callback("XRANGE", lambda reply, **kw: reply)
    return client


def start(srv: ServerProcess, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "streamctl", "-u", srv.url, "redrive", "dlq", "-o", "json",
               *extra]  # fmt: skip
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        return subprocess.Popen(command, stdout=out, stderr=err, env=env())


def watch_until(client: redis.Redis, proc: subprocess.Popen[bytes], at: int) -> None:
    """Check the invariant on every state seen until `at` entries are published."""
    deadline = time.monotonic() + 60
    while True:
        dlq, out = atomic_counts(client)
        assert dlq + out == TOTAL, (dlq, out)  # no half-done step, ever
        if out >= at:
            return
        if proc.poll() is not None:
            pytest.fail(f"redrive ended (exit {proc.returncode}) before the interruption")
        assert time.monotonic() < deadline, "redrive never got going"


def rerun_and_check(srv: ServerProcess, source: dict[bytes, list[bytes]], before: int) -> None:
    client = raw_client(srv)
    rerun = subprocess.run(
        [sys.executable, "-m", "streamctl", "-u", srv.url, "redrive", "dlq", "-o", "json"],
        capture_output=True, timeout=120, env=env(),
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["redriven"] == TOTAL - before
    assert (report["unusable_count"], report["gone"]) == (0, 0)
    assert client.xlen("dlq") == 0
    assert published(client, source) == Counter(dict.fromkeys(source, 1))  # each exactly once


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_server_killed_during_redrive_every_entry_published_once(
    aof_server: ServerProcess, tmp_path: Path
) -> None:
    client = raw_client(aof_server)
    source = fill(client)
    proc = start(aof_server, tmp_path)
    try:
        watch_until(client, proc, KILL_AT)
        aof_server.kill()
        killed = time.monotonic()
        proc.wait(30)
        assert time.monotonic() - killed < 10, "redrive hung after the server died"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = (tmp_path / "err").read_text()
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()
    assert line.startswith("error: ") and aof_server.url in line, line
    assert "rerun to continue" in line

    aof_server.start()  # same port and dir: the AOF is replayed
    client = raw_client(aof_server)
    dlq, out = atomic_counts(client)
    assert dlq + out == TOTAL
    assert KILL_AT <= out < TOTAL, out
    first = published(client, source)
    assert set(first.values()) == {1}
    left = {e for e, _ in raw_range(client, "dlq")}
    assert left == set(source) - set(first)  # published ones deleted, nothing else
    rerun_and_check(aof_server, source, out)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_during_redrive_then_rerun_publishes_each_once(
    aof_server: ServerProcess, tmp_path: Path
) -> None:
    client = raw_client(aof_server)
    source = fill(client)
    proc = start(aof_server, tmp_path, "--rate", "20000")
    try:
        watch_until(client, proc, KILL_AT)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = (tmp_path / "err").read_text()
    assert proc.returncode == 143, stderr
    report = json.loads((tmp_path / "out").read_text())
    dlq, out = atomic_counts(client)
    assert report["stopped"] is True and report["redriven"] == out and dlq + out == TOTAL
    assert out < TOTAL
    assert f"terminated: redrove {out:,} entries; last DLQ id handled {report['last_id']}" in stderr
    # everything up to the last id handled is gone from the DLQ, everything after it is there
    left = sorted(int(e.split(b"-")[0]) for e, _ in raw_range(client, "dlq"))
    assert left == list(range(int(report["last_id"].split("-")[0]) + 1, 1000 + TOTAL))
    rerun_and_check(aof_server, source, out)
