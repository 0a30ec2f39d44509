"""`tail --group` while the server is SIGKILLed and restarted (AOF on, appendfsync always).

What is already covered elsewhere: tests/cli/test_tail.py and tests/core/test_follow.py kill and
restart an AOF server while `tail` (plain and --group) waits idle in its blocking read, with a few
entries published before and after. Not covered there, and tested here:
- the reply that delivered entries to the consumer is lost with the server (the entries are in
  the group's PEL, persisted, but never reached the tail): after the reconnect the tail must
  re-read its own pending entries, or they are lost until someone claims them;
- entries written to stdout whose XACK fails because the server died: they must be acked after
  the reconnect, not left pending and not written again;
- a producer publishing all the time and two consumers of one group reading while the server
  dies and comes back.

The guarantee (SPEC `tail`): "a dropped connection is retried with backoff and the read resumes
after the last id written: no gap, no duplicate"; README: an entry is acknowledged only after it
was written and flushed (at-least-once: an entry is written again only if the TAIL dies between
writing and acking it, which none of these tests does). So with the tail surviving the server's
restart, every event is received exactly once overall, and nothing is left pending.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import ISOLATED_ENV_DROP
from tests.servers import ServerProcess

BASE_MS = 1795773600000


def start_tail(srv: ServerProcess, consumer: str, tmp_path: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}
    with (
        open(tmp_path / f"{consumer}.out", "wb") as out,
        open(tmp_path / f"{consumer}.err", "wb") as err,
    ):
        return subprocess.Popen(
            [sys.executable, "-m", "streamctl", "-u", srv.url, "tail", "jobs",
             "--group", "workers", "--consumer", consumer, "--format", "{id}", *extra],
            stdout=out, stderr=err, env=env,
        )  # fmt: skip


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def blocked_clients(client: redis.Redis) -> int:
    return int(client.info("clients")["blocked_clients"])


def pending_of(client: redis.Redis, consumer: str | None = None) -> list[bytes]:
    kw = {"consumername": consumer} if consumer else {}
    return [
        p["message_id"]
        for p in client.xpending_range("jobs", "workers", "-", "+", 100_000, **kw)  # type: ignore[arg-type]
    ]


def output_of(tmp_path: Path, consumer: str) -> tuple[list[str], list[str]]:
    out = (tmp_path / f"{consumer}.out").read_text().splitlines()
    err = (tmp_path / f"{consumer}.err").read_text().splitlines()
    return out, err


def finish(proc: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def restart_notices(err: list[str]) -> None:
    assert "Traceback" not in "\n".join(err)
    assert err, "the tail did not notice the server going away"
    assert err[0].startswith("connection lost (") and "retrying for up to 1m" in err[0], err
    assert err[-1].startswith("reconnected; resuming after jobs "), err


# ---- the reply that delivered the entries is lost with the server ----

BIG = 300
BIG_VALUE = b"v" * 100_000  # 300 x 100 kB: a 30 MB reply, far beyond the socket buffers


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_entries_delivered_in_a_reply_lost_with_the_server_are_read_again(
    aof_server: ServerProcess, tmp_path: Path
) -> None:
    """The tail is stopped (SIGSTOP) in its blocking XREADGROUP; one transaction adds 300 large
    entries: the server delivers them to the consumer (PEL, persisted) in a 30 MB reply that
    mostly stays in its output buffer; the server dies with it. After the restart and SIGCONT the
    tail gets part of the reply, then the closed connection: it must re-read its own pending
    entries (XREADGROUP from its position) before `>`, or those 300 are never written."""
    client = aof_server.client()
    client.xgroup_create("jobs", "workers", id="$", mkstream=True)
    tail = start_tail(aof_server, "c1", tmp_path, "--count", str(BIG + 3), "--timeout", "20s")
    try:
        wait_until(lambda: blocked_clients(client) == 1, "the tail to block")
        tail.send_signal(signal.SIGSTOP)
        pipe = client.pipeline(transaction=True)
        for i in range(BIG):
            pipe.xadd("jobs", {"n": str(i), "payload": BIG_VALUE}, id=f"{BASE_MS}-{i}")
        pipe.execute()
        # delivered to c1 (in the PEL), most of the reply still in the server's output buffer
        assert len(pending_of(client, "c1")) == BIG

        def reply_stuck() -> bool:
            return any(
                c.get("cmd") == "xreadgroup" and int(c.get("omem", 0)) > 0
                for c in client.client_list()
            )

        wait_until(reply_stuck, "the reply to fill the socket buffers")
        aof_server.kill()
        aof_server.start()  # same port and dir: the stream and the PEL come back from the AOF
        client = aof_server.client()
        assert len(pending_of(client, "c1")) == BIG
        tail.send_signal(signal.SIGCONT)
        wait_until(lambda: blocked_clients(client) == 1, "the tail to read again")
        later = [client.xadd("jobs", {"n": str(BIG + i)}).decode() for i in range(3)]
        code = finish(tail)
    finally:
        tail.send_signal(signal.SIGCONT)
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    out, err = output_of(tmp_path, "c1")
    assert code == 0, err
    assert out == [f"{BASE_MS}-{i}" for i in range(BIG)] + later  # once each, in order
    restart_notices(err)
    assert pending_of(client) == []


# ---- entries written, their XACK lost with the server ----


@pytest.mark.timeout(120)
def test_entries_written_whose_ack_failed_are_acked_after_the_restart(
    aof_server: ServerProcess, tmp_path: Path
) -> None:
    """3 entries are delivered to the tail while it is stopped (SIGSTOP), so the reply waits in
    its socket; the server is then stopped too, and the tail let go: it writes the 3 and sends
    their XACK, which the stopped server never reads; the server is killed (the XACK is lost)
    and restarted with the 3 still pending. They must be acknowledged on the new connection
    (not left pending for ever, not written again), then the tail goes on with new entries."""
    client = aof_server.client()
    client.xgroup_create("jobs", "workers", id="$", mkstream=True)
    tail = start_tail(aof_server, "c1", tmp_path, "--count", "5", "--timeout", "20s")
    try:
        wait_until(lambda: blocked_clients(client) == 1, "the tail to block")
        tail.send_signal(signal.SIGSTOP)
        pipe = client.pipeline(transaction=True)  # one delivery of the 3 to the blocked read
        for i in range(3):
            pipe.xadd("jobs", {"n": str(i)})
        first = [eid.decode() for eid in pipe.execute()]
        assert len(pending_of(client, "c1")) == 3
        aof_server.pause()
        tail.send_signal(signal.SIGCONT)
        wait_until(lambda: len(output_of(tmp_path, "c1")[0]) == 3, "the tail to write the 3")
        time.sleep(0.3)  # its XACK is sent, unanswered
        aof_server.kill()
        aof_server.start()
        client = aof_server.client()
        wait_until(lambda: blocked_clients(client) == 1, "the tail to read again")
        assert pending_of(client) == []  # acked on the new connection, before the next read
        later = [client.xadd("jobs", {"n": str(i)}).decode() for i in range(3, 5)]
        code = finish(tail)
    finally:
        tail.send_signal(signal.SIGCONT)
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    out, err = output_of(tmp_path, "c1")
    assert code == 0, err
    assert out == first + later
    restart_notices(err)
    assert pending_of(client) == []


# ---- a producer publishing, two consumers reading, the server killed and restarted ----

EVENTS = 30_000
PIPELINE = 100


class Producer(threading.Thread):
    """Publishes EVENTS entries with explicit ids, 100 per round trip, paced, riding out the
    server's death: a round trip that fails is sent again once the server is back, and an id
    the server already has (applied before it died, reply lost) is an error reply it skips."""

    def __init__(self, srv: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.srv = srv
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        try:
            client = redis.Redis(port=self.srv.port, protocol=2, socket_timeout=5)
            for start in range(0, EVENTS, PIPELINE):
                deadline = time.monotonic() + 30
                while True:
                    try:
                        pipe = client.pipeline(transaction=False)
                        for i in range(start, start + PIPELINE):
                            pipe.xadd("jobs", {"n": str(i)}, id=event_id(i))
                        for reply in pipe.execute(raise_on_error=False):
                            if isinstance(reply, Exception):
                                assert "equal or smaller" in str(reply), reply
                        break
                    except (redis.ConnectionError, redis.TimeoutError):
                        assert time.monotonic() < deadline, "the server never came back"
                        time.sleep(0.05)
                self.sent = start + PIPELINE
                time.sleep(0.002)
        except BaseException as exc:
            self.error = exc


def event_id(i: int) -> str:
    return f"{BASE_MS + i // 10}-{i % 10}"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_consumers_and_a_producer_through_a_server_restart_every_event_once(
    aof_server: ServerProcess, tmp_path: Path
) -> None:
    client = aof_server.client()
    client.xgroup_create("jobs", "workers", id="$", mkstream=True)
    consumers = ("c1", "c2")
    tails = {c: start_tail(aof_server, c, tmp_path, "--timeout", "60s") for c in consumers}
    try:
        wait_until(lambda: blocked_clients(client) == 2, "both tails to block")
        producer = Producer(aof_server)
        producer.start()
        wait_until(lambda: producer.sent >= EVENTS // 3 or producer.error is not None, "events")
        aof_server.kill()
        time.sleep(0.2)  # producer and tails meet a dead port for a while
        aof_server.start()
        client = aof_server.client()
        producer.join(60)
        assert producer.error is None, producer.error
        assert not producer.is_alive()

        def all_acked() -> bool:
            group = client.xinfo_groups("jobs")[0]
            return group["last-delivered-id"] == event_id(EVENTS - 1).encode() and (
                group["pending"] == 0
            )

        wait_until(all_acked, "every event delivered and acknowledged", timeout=60)
        for tail in tails.values():
            tail.send_signal(signal.SIGTERM)
        codes = {c: finish(t) for c, t in tails.items()}
    finally:
        for tail in tails.values():
            if tail.poll() is None:
                tail.kill()
                tail.wait()
    expected = [event_id(i) for i in range(EVENTS)]
    assert [e.decode() for e, _ in client.xrange("jobs")] == expected  # each event once
    received: list[str] = []
    for consumer in consumers:
        out, err = output_of(tmp_path, consumer)
        assert codes[consumer] == 143, err
        restart_notices(err[:-1] if err and err[-1].startswith("error: terminated") else err)
        assert out == sorted(out, key=lambda i: tuple(map(int, i.split("-"))))
        received += out
    print(f"{aof_server.kind}: shares {[len(output_of(tmp_path, c)[0]) for c in consumers]}")
    assert len(received) == len(set(received))  # no event twice, across both consumers
    assert sorted(received) == sorted(expected)  # none lost
    assert pending_of(client) == []


# ---- a backlog drained with reads ahead while the server restarts ----

BACKLOG = 30_000


@pytest.mark.timeout(120)
@pytest.mark.parametrize("group", [True, False], ids=["group", "plain"])
def test_backlog_read_ahead_through_a_server_restart_each_entry_once(
    aof_server: ServerProcess, tmp_path: Path, group: bool
) -> None:
    """A backlog is read ahead (the next read sent before a batch is written, the XACK owed in
    front of it). This test stops reading the tail's stdout after 5,000 lines, so the tail is
    certainly in the middle of the backlog, blocked writing; the server is paused (SIGSTOP),
    the reading resumes: the tail writes what it holds, then waits for a read sent ahead to the
    paused server, which is killed and restarted. Every entry is written once, in order, and
    (group) acknowledged: nothing is pending after."""
    client = aof_server.client()
    for start in range(0, BACKLOG, 5000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, start + 5000):
            pipe.xadd("jobs", {"n": str(i)}, id=f"{BASE_MS}-{i}")
        pipe.execute()
    args = ["--no-follow", "--from", "0", "--format", "{id}"]
    if group:
        client.xgroup_create("jobs", "workers", id="0")
        args += ["--group", "workers", "--consumer", "c1"]
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}
    with open(tmp_path / "err", "wb") as errors:
        tail = subprocess.Popen(
            [sys.executable, "-m", "streamctl", "-u", aof_server.url, "tail", "jobs", *args],
            stdout=subprocess.PIPE, stderr=errors, env=env,
        )  # fmt: skip
    assert tail.stdout is not None
    lines: list[str] = []
    go_on = threading.Event()

    def read() -> None:
        assert tail.stdout is not None
        for line in tail.stdout:
            lines.append(line.decode().strip())
            if len(lines) == 5000:
                go_on.wait(30)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: len(lines) >= 5000, "5,000 lines")
        time.sleep(0.3)  # the tail fills the pipe and blocks writing, mid-backlog
        aof_server.pause()
        go_on.set()
        time.sleep(1.0)  # it writes what it holds, then waits on the paused server
        held = len(lines)
        aof_server.kill()
        aof_server.start()
        code = finish(tail)
        reader.join(30)
    finally:
        go_on.set()
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    err = (tmp_path / "err").read_text()
    assert code == 0, err
    assert "Traceback" not in err
    assert held < BACKLOG  # the restart came in the middle of the backlog
    assert err.startswith("connection lost (") and "\nreconnected; resuming after jobs " in err
    assert lines == [f"{BASE_MS}-{i}" for i in range(BACKLOG)]  # each once, in order
    client = aof_server.client()
    if group:
        info = client.xinfo_groups("jobs")[0]
        last = f"{BASE_MS}-{BACKLOG - 1}".encode()
        assert (info["pending"], info["last-delivered-id"]) == (0, last)
