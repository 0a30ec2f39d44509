"""A stalled server (SIGSTOP: the kernel still accepts connections, nothing answers) makes each
command fail after `--timeout` with exit 3 and one line, in about that time, never hang.

(`tail`'s blocking read retries as its own section specifies: its stall tests come with it.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import ISOLATED_ENV_DROP, invoke
from tests.servers import ServerProcess, server_binary, start_server

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def stall_server() -> Iterator[ServerProcess]:
    """A server of our own: pausing the shared one would stall other tests on a failure."""
    if server_binary("redis8.2") is None:
        pytest.skip("redis8.2 server not available")
    srv = start_server("redis8.2")
    yield srv
    srv.stop()  # sends SIGCONT first


@pytest.fixture
def paused(stall_server: ServerProcess) -> Iterator[ServerProcess]:
    client = stall_server.client()
    client.flushall()
    client.xadd("s", {"a": "1"})
    client.close()
    stall_server.pause()
    try:
        yield stall_server
    finally:
        stall_server.resume()


COMMANDS = {
    "publish": ["publish", "s", "a=2"],
    "range": ["range", "s"],
    "ls": ["ls"],
    "info": ["info", "s"],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_stalled_server_is_exit_3_after_the_timeout(paused: ServerProcess, name: str) -> None:
    started = time.monotonic()
    res = invoke(["-u", paused.url, "--timeout", str(TIMEOUT), *COMMANDS[name]])
    elapsed = time.monotonic() - started
    assert res.exit_code == 3, res.stderr
    assert res.stdout == ""
    [line] = res.stderr.splitlines()
    assert line == (
        f"error: the server at {paused.url} timed out after 1s (--timeout): "
        "Timeout reading from socket"
    )
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.5, elapsed


@pytest.mark.timeout(60)
def test_stalled_server_bulk_publish(paused: ServerProcess, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(5000)))
    started = time.monotonic()
    res = invoke(["-u", paused.url, "--timeout", str(TIMEOUT), "publish", "s", "--file", str(path)])
    elapsed = time.monotonic() - started
    assert res.exit_code == 3, res.stderr
    [line] = res.stderr.splitlines()
    assert line.startswith(f"error: the server at {paused.url} timed out after 1s (--timeout): ")
    assert line.endswith(
        "0 events were published before it (rerun with --skip 0 to publish the rest)"
    )
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.5, elapsed
    paused.resume()
    # replies never read: whatever the server applied once it woke up is at most the batches sent
    assert paused.client().xlen("s") <= 1 + 2000


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_stall_in_the_middle_of_a_bulk_publish(stall_server: ServerProcess, tmp_path: Path) -> None:
    """Paused while publishing: the command gives up after --timeout, counting what was acked."""
    client = stall_server.client()
    client.flushall()
    path = tmp_path / "events.ndjson"
    with open(path, "w") as fh:
        fh.writelines(f'{{"n":{i}}}\n' for i in range(600_000))
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamctl", "-u", stall_server.url, "--timeout", "1",
             "publish", "s", "--file", str(path)],
            stdout=out, stderr=err, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while client.xlen("s") < 50_000 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "publish ended before the pause"
        stall_server.pause()
        paused_at = time.monotonic()
        proc.wait(30)
        waited = time.monotonic() - paused_at
    finally:
        stall_server.resume()
    stderr = (tmp_path / "err").read_text()
    assert proc.returncode == 3, stderr
    [line] = stderr.splitlines()
    assert "timed out" in line
    acked = int(line.split("; ")[-1].split(" events")[0])
    assert len((tmp_path / "out").read_text().splitlines()) == acked
    assert 1.0 <= waited < 4.0, waited
    # after SIGCONT the server applies what it had received: at least every acked event
    length = client.xlen("s")
    assert length >= acked
    assert [int(f[b"n"]) for _, f in client.xrange("s", count=acked)] == list(range(acked))


def test_socket_timeout_is_not_retried(stall_server: ServerProcess) -> None:
    """redis-py retries a TimeoutError by default: streamctl's clients must not (--timeout is the
    whole wait, not the wait per attempt)."""
    from streamctl.config import resolve_settings
    from streamctl.core.connection import connect

    client = connect(resolve_settings(url=stall_server.url, timeout=0.5))
    client.ping()
    stall_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            client.ping()
        assert time.monotonic() - started < 1.2
    finally:
        stall_server.resume()
