"""Real failovers (SENTINEL FAILOVER) while `import` and `replay --into` write: they continue on
the new primary with publish --file's guarantee (every entry at least once, in order, never a
gap), checked against what the new primary holds; `import --keep-ids` writes each entry exactly
once (the entries in flight that reached the new primary are known by their ids)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import IO

import pytest
import redis

from tests.ha.test_failover import _first_seen_in_order, _wait_for
from tests.ha.topology import SentinelTopology


def _envelope(i: int) -> bytes:
    return b'{"id": "%d-1", "fields": {"n": "%d"}}\n' % (i + 1, i)


def _feed_until_failed_over(stdin: IO[bytes], failed_over: threading.Event) -> list[int]:
    """Envelopes at a steady pace, until 50 chunks after the failover is over: the run is
    certainly importing while it happens and after it. Returns [how many were fed]."""
    fed = [0]

    def feed() -> None:
        after = 0
        while after < 50:
            stdin.write(b"".join(_envelope(i) for i in range(fed[0], fed[0] + 1000)))
            stdin.flush()
            fed[0] += 1000
            after += failed_over.is_set()
            time.sleep(0.01)
        stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    return fed


def _import_through_failover(ha: SentinelTopology, hr: redis.Redis, *args: str) -> tuple[int, str]:
    """`import big - ARGS` fed on stdin through a failover; returns (entries fed, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", ha.url, "import", "big", "-", *args],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stderr is not None
    failed_over = threading.Event()
    fed = _feed_until_failed_over(proc.stdin, failed_over)
    try:
        _wait_for(lambda: hr.xlen("big") > 20_000, timeout=60)
        ha.failover()
        failed_over.set()
        err = proc.stderr.read()  # until the run ends (stdin is closed by the feeder)
        proc.wait(timeout=120)
    finally:
        failed_over.set()
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert "the connection to the primary was lost" in err.decode()
    return fed[0], err.decode()


def test_import_keep_ids_continues_exactly_once(ha: SentinelTopology, hr: redis.Redis) -> None:
    fed, err = _import_through_failover(ha, hr, "--keep-ids")
    assert "importing again from line" in err or "holds every entry sent" in err
    new = ha.primary().client()
    held = new.xrange("big")
    assert [int(f[b"n"]) for _, f in held] == list(range(fed))  # each once, in order
    assert [i.decode() for i, _ in held] == [f"{i + 1}-1" for i in range(fed)]


def test_import_new_ids_continues_at_least_once_in_order(
    ha: SentinelTopology, hr: redis.Redis
) -> None:
    fed, _err = _import_through_failover(ha, hr)
    new = ha.primary().client()
    held = [int(f[b"n"]) for _, f in new.xrange("big")]
    assert _first_seen_in_order(held)
    assert set(held) == set(range(fed))  # every entry at least once
    assert held[-1] == fed - 1


@pytest.mark.parametrize("target", ["same server", "--target-url"])
def test_replay_into_continues_at_least_once_in_order(
    ha: SentinelTopology, hr: redis.Redis, target: str
) -> None:
    n, rate = 150_000, 10_000  # 15 s of copying: the failover happens while it copies
    pipe = hr.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd("src", {"n": str(i)})
    pipe.execute()
    assert hr.execute_command("WAIT", 1, 5000) == 1  # the new primary will have the source
    where = ["--target-url", ha.url] if target == "--target-url" else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", ha.url, "replay", "src", "--from", "-",
         "--into", "dst", "--rate", str(rate), *where],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        _wait_for(lambda: hr.xlen("dst") > 20_000, timeout=60)
        ha.failover()
        running_after = proc.poll() is None
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert running_after  # it was still copying after the failover
    assert "primary was lost" in err.decode()
    new = ha.primary().client()
    held = [int(f[b"n"]) for _, f in new.xrange("dst")]
    assert _first_seen_in_order(held)
    assert set(held) == set(range(n))  # every entry at least once
    assert held[-1] == n - 1
