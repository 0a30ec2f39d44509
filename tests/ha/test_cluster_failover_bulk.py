"""Real replica promotions in a cluster (CLUSTER FAILOVER sent to the replica) while `import` and
`replay --into` write, fed or paced so they are certainly writing across it: they continue on
the new primary with publish --file's guarantee (every entry at least once, in order, never a
gap), `import --keep-ids` exactly once; checked against what the new primary holds."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from tests.ha.cluster_topology import ReplicatedCluster
from tests.ha.test_failover import _first_seen_in_order, _wait_for
from tests.ha.test_failover_bulk import _feed_until_failed_over


def _import_through_promotion(hc: ReplicatedCluster, *args: str) -> tuple[int, str]:
    """`import big - ARGS` fed on stdin through a promotion of big's replica; returns (entries
    fed, stderr)."""
    old = hc.primary_of("big").client()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", hc.url, "import", "big", "-", *args],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stderr is not None
    promoted = threading.Event()
    fed = _feed_until_failed_over(proc.stdin, promoted)
    try:
        _wait_for(lambda: old.xlen("big") > 20_000, timeout=60)
        hc.failover("big")
        promoted.set()
        err = proc.stderr.read()  # until the run ends (stdin is closed by the feeder)
        proc.wait(timeout=120)
    finally:
        promoted.set()
        proc.kill()
        old.close()
    assert proc.returncode == 0, err.decode()
    assert "the connection to the primary was lost" in err.decode()  # the promotion was seen
    return fed[0], err.decode()


def test_import_keep_ids_continues_exactly_once(hc: ReplicatedCluster) -> None:
    fed, _err = _import_through_promotion(hc, "--keep-ids")
    new = hc.primary_of("big").client()
    held = new.xrange("big")
    assert [int(f[b"n"]) for _, f in held] == list(range(fed))  # each once, in order
    assert [i.decode() for i, _ in held] == [f"{i + 1}-1" for i in range(fed)]
    new.close()


def test_import_new_ids_continues_at_least_once_in_order(hc: ReplicatedCluster) -> None:
    fed, _err = _import_through_promotion(hc)
    new = hc.primary_of("big").client()
    held = [int(f[b"n"]) for _, f in new.xrange("big")]
    assert _first_seen_in_order(held)
    assert set(held) == set(range(fed))  # every entry at least once
    assert held[-1] == fed - 1
    new.close()


@pytest.mark.parametrize("how", [(), ("FORCE",)], ids=["failover", "force"])
def test_replay_into_continues_at_least_once_in_order(
    hc: ReplicatedCluster, how: tuple[str, ...]
) -> None:
    """The source and the target share a hash tag: one primary, promoted while replay copies."""
    src, dst = "{r}src", "{r}dst"
    # 60 s of copying: the promotion happens while it copies (a manual failover is asked again
    # every 15 s by hc.failover when the first one gives up, which happens after many in a row)
    n, rate = 300_000, 5_000
    old = hc.primary_of(src).client()
    pipe = old.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(src, {"n": str(i)})
    pipe.execute()
    assert old.execute_command("WAIT", 1, 5000) == 1  # the replica has the whole source
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", hc.url, "replay", src, "--from", "-",
         "--into", dst, "--rate", str(rate)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        _wait_for(lambda: old.xlen(dst) > 20_000, timeout=60)
        started = time.monotonic()
        hc.failover(src, *how)  # it waits until every node agrees: the replay may end first
        promoted_after = time.monotonic() - started
        err = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
        old.close()
    assert proc.returncode == 0, err.decode()
    # it was copying when the promotion came
    assert "primary was lost" in err.decode(), (err.decode(), f"promoted after {promoted_after}s")
    new = hc.primary_of(src).client()
    held = [int(f[b"n"]) for _, f in new.xrange(dst)]
    assert _first_seen_in_order(held)
    assert set(held) == set(range(n))  # every entry at least once
    assert held[-1] == n - 1
    new.close()


def test_another_thread_follows_a_promotion_while_a_bulk_write_is_open(hc: ReplicatedCluster):
    """One library Client shared by two threads: while the first one's publish_many is open (it
    takes a promotion for a lost connection, to find what the new primary lacks), the second
    one's publish on the promoted slot follows the MOVED like any command."""
    import streamctl

    sc = streamctl.connect(hc.url)
    gate, started = threading.Event(), threading.Event()
    results: list[object] = []

    def events():  # type: ignore[no-untyped-def]
        yield {"n": "0"}
        started.set()
        gate.wait(120)
        yield {"n": "1"}

    def bulk() -> None:
        try:
            results.append(sc.publish_many("{t}bulk", events()))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    writer = threading.Thread(target=bulk, daemon=True)
    try:
        sc.publish("{t}one", {"n": "before"})  # the slot map now names the old primary
        writer.start()
        assert started.wait(30)
        hc.failover("{t}one")
        sc.publish("{t}one", {"n": "after"})  # MOVED to the promoted replica: followed
    finally:
        gate.set()
        writer.join(120)
        sc.close()
    new = hc.primary_of("{t}one").client()
    assert [f[b"n"] for _, f in new.xrange("{t}one")] == [b"before", b"after"]
    assert not isinstance(results[0], Exception), results
    assert [f[b"n"] for _, f in new.xrange("{t}bulk")] == [b"0", b"1"]
    new.close()
