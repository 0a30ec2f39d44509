"""Real failovers (SENTINEL FAILOVER) while a command runs: it continues on the new primary.
tail --group writes every entry once; publish --file leaves every event at least once, in order,
on the new primary."""

from __future__ import annotations

import json
import subprocess
import sys
import time

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


def _streamctl(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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
