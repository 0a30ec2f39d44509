"""Real failovers (SENTINEL FAILOVER) while a command runs: it continues on the new primary.
tail --group writes every entry once; publish --file leaves every event at least once, in order,
on the new primary."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis

from tests.ha.topology import SentinelTopology


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _streamctl(args: list[str], stdout: Any = subprocess.PIPE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamctl", *args], stdout=stdout, stderr=subprocess.PIPE
    )


def test_tail_group_continues_on_the_new_primary(ha: SentinelTopology, hr: redis.Redis) -> None:
    first = [hr.xadd("jobs", {"n": str(i)}).decode() for i in range(50)]
    hr.xgroup_create("jobs", "g", id="0")
    proc = _streamctl(
        ["-u", ha.url, "tail", "jobs", "--group", "g", "--consumer", "c",
         "--count", "100", "--retry-for", "60s", "-o", "ndjson"]
    )  # fmt: skip
    try:
        # all 50 read and acknowledged, and the replica has the group's state
        _wait_for(lambda: hr.xinfo_groups("jobs")[0]["last-delivered-id"].decode() == first[-1]
                  and hr.xpending("jobs", "g")["pending"] == 0)  # fmt: skip
        assert hr.execute_command("WAIT", 1, 5000) == 1
        ha.failover()
        new = ha.primary().client()
        second = [new.xadd("jobs", {"n": str(i)}).decode() for i in range(50, 100)]
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    got = [json.loads(line)["id"] for line in out.decode().splitlines()]
    assert got == first + second  # each once, in order
    assert new.xpending("jobs", "g")["pending"] == 0  # acknowledged on the new primary
    assert "connection lost" in err.decode() or "reconnected" in err.decode()


def test_tail_continues_on_the_new_primary(ha: SentinelTopology, hr: redis.Redis) -> None:
    first = [hr.xadd("feed", {"n": str(i)}).decode() for i in range(20)]
    proc = _streamctl(
        ["-u", ha.url, "tail", "feed", "--from", "0", "--count", "40", "--retry-for", "60s",
         "-o", "ndjson"]
    )  # fmt: skip
    try:
        time.sleep(1.0)
        assert hr.execute_command("WAIT", 1, 5000) == 1
        ha.failover()
        new = ha.primary().client()
        second = [new.xadd("feed", {"n": str(i)}).decode() for i in range(20, 40)]
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert [json.loads(line)["id"] for line in out.decode().splitlines()] == first + second


def _first_seen_in_order(values: list[int]) -> bool:
    """Each value is either one already seen (published again) or the next one: in order,
    never a gap."""
    top = -1
    for v in values:
        if v > top + 1:
            return False
        top = max(top, v)
    return True


def test_publish_file_continues_at_least_once_in_order(
    ha: SentinelTopology, hr: redis.Redis, tmp_path: Path
) -> None:
    n = 300_000
    lines = [f'{{"n": "{i}"}}\n'.encode() for i in range(n)]
    ids_file = (tmp_path / "ids.ndjson").open("wb")  # not a pipe: it would fill and stall the run
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", ha.url, "publish", "big", "--file", "-",
         "-o", "ndjson"],
        stdin=subprocess.PIPE, stdout=ids_file, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    # The events are fed at a steady pace until the failover is over, so the run is certainly
    # publishing while it happens and after it (a file would be done before the failover is).
    failed_over = threading.Event()
    fed = 0

    def feed() -> None:
        nonlocal fed
        assert proc.stdin is not None
        after = 0
        while fed < n and after < 5:
            proc.stdin.write(b"".join(lines[fed : fed + 2000]))
            proc.stdin.flush()
            fed = min(n, fed + 2000)
            after += failed_over.is_set()
            time.sleep(0.01)
        proc.stdin.write(b"".join(lines[fed:]))
        proc.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        _wait_for(lambda: hr.xlen("big") > 20_000, timeout=60)
        ha.failover()
        failed_over.set()
        feeder.join(timeout=120)
        assert proc.stderr is not None
        err = proc.stderr.read()  # until the run ends (stdin is closed by the feeder)
        proc.wait(timeout=120)
    finally:
        failed_over.set()
        proc.kill()
        ids_file.close()
    out = (tmp_path / "ids.ndjson").read_bytes()
    assert proc.returncode == 0, err.decode()
    assert "publishing again from event" in err.decode()
    new = ha.primary().client()
    held = [int(f[b"n"]) for _, f in new.xrange("big")]
    assert _first_seen_in_order(held)
    assert set(held) == set(range(n))  # every event at least once
    assert held[-1] == n - 1
    # every id printed last for an event is one the new primary holds
    printed = [json.loads(line)["id"] for line in out.decode().splitlines()]
    assert set(printed[-1000:]) <= {i.decode() for i, _ in new.xrange("big", count=None)}


def test_first_seen_in_order_helper() -> None:
    assert _first_seen_in_order([0, 1, 2, 1, 2, 3])
    assert not _first_seen_in_order([0, 1, 3, 2])
