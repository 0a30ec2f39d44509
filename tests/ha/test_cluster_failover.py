"""Real replica promotions in a cluster (CLUSTER FAILOVER sent to a replica) while a command runs,
fed steadily so it is certainly running across the promotion: tail and tail --group write every
entry once, publish --file leaves every event at least once, in order, on the new primary, and
metrics --listen keeps answering with the new primary's lag."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.ha.cluster_topology import ReplicatedCluster
from tests.ha.test_failover import _first_seen_in_order, _wait_for
from tests.servers import free_port


def _streamctl(args: list[str], stdout: Any = subprocess.PIPE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamctl", *args], stdout=stdout, stderr=subprocess.PIPE
    )


def _spread(hc: ReplicatedCluster, prefix: str) -> list[str]:
    """One stream name per primary, the first on the primary listed first."""
    by_port: dict[int, str] = {}
    i = 0
    while len(by_port) < len(hc.primaries()):
        name = f"{prefix}-{i}"
        by_port.setdefault(hc.primary_of(name).port, name)
        i += 1
    return [by_port[p.port] for p in hc.primaries()]


class _Writer:
    """XADDs at a steady pace, round robin over the streams, through a redis-py cluster client
    (which follows the promotion itself), until `after` more once `promoted` is set; the ids
    written per stream."""

    def __init__(self, hc: ReplicatedCluster, streams: list[str], after: int = 300) -> None:
        self.client = redis.RedisCluster(host="127.0.0.1", port=hc.nodes[0].port, protocol=2)
        self.streams = streams
        self.after = after
        self.promoted = threading.Event()
        self.written = 0
        self.ids: dict[str, list[str]] = {s: [] for s in streams}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            left = self.after
            while left > 0:
                stream = self.streams[self.written % len(self.streams)]
                entry_id = self.client.xadd(stream, {"n": str(self.written)})
                self.ids[stream].append(entry_id.decode())
                self.written += 1
                left -= self.promoted.is_set()
                time.sleep(0.004)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def start(self) -> _Writer:
        self.thread.start()
        return self

    def join(self) -> None:
        self.promoted.set()
        self.thread.join(120)
        self.client.close()
        assert self.error is None, repr(self.error)


def _held(hc: ReplicatedCluster, stream: str) -> list[str]:
    client = hc.primary_of(stream).client()
    try:
        return [i.decode() for i, _ in client.xrange(stream)]
    finally:
        client.close()


def test_the_fixture_is_three_primaries_with_a_replica_each(hc: ReplicatedCluster) -> None:
    primaries = hc.primaries()
    assert len(primaries) == 3
    replicas = {hc.replica_of(p).port for p in primaries}
    assert len(replicas) == 3 and not replicas & {p.port for p in primaries}
    name = _spread(hc, "x")[0]
    old, new = hc.failover(name)
    assert hc.primary_of(name).port == new and hc.replica_of(hc.node(new)).port == old


@pytest.mark.parametrize("spread", [False, True], ids=["one", "spread"])
@pytest.mark.parametrize("group", [False, True], ids=["tail", "group"])
def test_tail_continues_across_a_promotion(
    hc: ReplicatedCluster, tmp_path: Path, group: bool, spread: bool
) -> None:
    """One stream, or streams on every primary (read by one blocking read per node); the primary
    of the first is replaced by its replica while entries are written to all of them: each
    entry is written once, none lost."""
    streams = _spread(hc, "feed")[: 3 if spread else 1]
    # no --count: the total is known once the writer is done; tail stops 8s after the last
    args = ["-u", hc.url, "tail", *streams, "--timeout", "8s", "--retry-for", "60s"]
    if group:
        seed = redis.RedisCluster(host="127.0.0.1", port=hc.nodes[0].port, protocol=2)
        for s in streams:
            seed.xgroup_create(s, "g", id="$", mkstream=True)
        seed.close()
        args += ["--group", "g", "--consumer", "c"]
    else:
        args += ["--from", "0"]
    out_file = (tmp_path / "out.ndjson").open("wb")  # not a pipe: it would fill and stall tail
    proc = _streamctl([*args, "-o", "ndjson"], stdout=out_file)
    writer = _Writer(hc, streams)
    try:
        time.sleep(1.0)  # tail is reading (blocked) before the first entry
        writer.start()
        _wait_for(lambda: writer.written >= 300)
        hc.failover(streams[0])
        writer.join()  # 300 more after the promotion
        _, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
        out_file.close()
    assert proc.returncode == 0, err.decode()
    got: dict[str, list[str]] = {s: [] for s in streams}
    for line in (tmp_path / "out.ndjson").read_text().splitlines():
        entry = json.loads(line)
        got[entry["stream"]].append(entry["id"])
    for s in streams:
        assert got[s] == writer.ids[s], err.decode()  # each once, in order
        assert _held(hc, s) == writer.ids[s]  # the promotion lost nothing
    if group:
        for s in streams:
            client = hc.primary_of(s).client()
            assert client.xpending(s, "g")["pending"] == 0  # acknowledged on the new primary
            client.close()


@pytest.mark.parametrize("how", [(), ("FORCE",)], ids=["failover", "force"])
def test_publish_file_continues_at_least_once_in_order(
    hc: ReplicatedCluster, tmp_path: Path, how: tuple[str, ...]
) -> None:
    """Events fed at a steady pace until well after the promotion (FORCE: the replica does not
    wait for its primary, whose last acknowledged writes may be lost)."""
    stream = "big"
    ids_file = (tmp_path / "ids.ndjson").open("wb")  # not a pipe: it would fill and stall the run
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", hc.url, "publish", stream, "--file", "-",
         "-o", "ndjson"],
        stdin=subprocess.PIPE, stdout=ids_file, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    promoted = threading.Event()
    fed = 0

    def feed() -> None:
        nonlocal fed
        assert proc.stdin is not None
        after = 0
        while after < 50:  # 25,000 events after the promotion
            proc.stdin.write(b"".join(b'{"n": "%d"}\n' % i for i in range(fed, fed + 500)))
            proc.stdin.flush()
            fed += 500
            after += promoted.is_set()
            time.sleep(0.01)
        proc.stdin.close()

    feeder = threading.Thread(target=feed)
    old = hc.primary_of(stream).client()
    feeder.start()
    try:
        _wait_for(lambda: old.xlen(stream) > 20_000, timeout=60)
        hc.failover(stream, *how)
        promoted.set()
        feeder.join(timeout=120)
        assert proc.stderr is not None
        err = proc.stderr.read()  # until the run ends (stdin is closed by the feeder)
        proc.wait(timeout=120)
    finally:
        promoted.set()
        proc.kill()
        ids_file.close()
        old.close()
    assert proc.returncode == 0, err.decode()
    assert "publishing again from event" in err.decode()  # the promotion was seen
    new = hc.primary_of(stream).client()
    held = [int(f[b"n"]) for _, f in new.xrange(stream)]
    assert _first_seen_in_order(held)
    assert set(held) == set(range(fed))  # every event at least once
    assert held[-1] == fed - 1
    # every id printed last for an event is one the new primary holds
    printed = [
        json.loads(line)["id"] for line in (tmp_path / "ids.ndjson").read_text().splitlines()
    ]
    assert set(printed[-1000:]) <= {i.decode() for i, _ in new.xrange(stream)}
    new.close()


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return _samples(resp.read().decode())


def test_metrics_listen_answers_across_a_promotion(hc: ReplicatedCluster) -> None:
    """Scrapes keep answering (streamctl_up 1) while a primary is replaced, and then report the
    lag the new primary holds."""
    streams = _spread(hc, "jobs")
    seed = redis.RedisCluster(host="127.0.0.1", port=hc.nodes[0].port, protocol=2)
    for s in streams:
        for n in range(5):
            seed.xadd(s, {"n": str(n)})
        seed.xgroup_create(s, "workers", id="0")
        seed.xreadgroup("workers", "c1", {s: ">"}, count=2)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", hc.url, "--timeout", "2", "metrics",
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    assert proc.stderr.readline().startswith("serving http://")

    def lag(s: str) -> str:
        return f'streamctl_group_lag{{group="workers",stream="{s}"}}'

    scrapes: list[dict[str, float]] = []
    stop = threading.Event()

    def scrape_steadily() -> None:
        while not stop.is_set():
            scrapes.append(_scrape(port))
            time.sleep(0.05)

    scraper = threading.Thread(target=scrape_steadily, daemon=True)
    try:
        first = _scrape(port)
        assert first["streamctl_up"] == 1
        assert [first[lag(s)] for s in streams] == [3, 3, 3]
        scraper.start()
        hc.failover(streams[0])
        for n in range(5, 9):  # written on the new primary: the lag it holds grows
            seed.xadd(streams[0], {"n": str(n)})
        time.sleep(0.5)
        stop.set()
        scraper.join(30)
        after = _scrape(port)
    finally:
        stop.set()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        seed.close()
    assert len(scrapes) > 10
    assert [s["streamctl_up"] for s in scrapes] == [1] * len(scrapes), err
    assert after["streamctl_up"] == 1
    assert [after[lag(s)] for s in streams] == [7, 3, 3]
