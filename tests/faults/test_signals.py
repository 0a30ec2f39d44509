"""Ctrl-C (SIGINT) and SIGTERM during a bulk publish stop cleanly: the batches in flight are
finished, the count is reported with the `--skip N` that resumes, the exit code is 130 / 143, and
the stream holds exactly those N events (a rerun with --skip N completes it, each event once).
A reader that goes away (`| head`) never gets a traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import ISOLATED_ENV_DROP
from tests.servers import ServerProcess

TOTAL = 600_000
STOPPED = re.compile(
    r"error: (?P<how>interrupted|terminated): (?P<n>\d+) (?:event was|events were) published "
    r"\(rerun with --skip (?P<skip>\d+) to publish the rest\)"
)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}


def streamctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamctl", *args]


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("signals") / "events.ndjson"
    with open(path, "w") as fh:
        fh.writelines(f'{{"n":{i}}}\n' for i in range(TOTAL))
    return str(path)


@pytest.fixture
def client(one_server: ServerProcess) -> Iterator[redis.Redis]:
    c = one_server.client()
    c.flushall()
    yield c
    c.close()


def numbers(client: redis.Redis, stream: str) -> list[int]:
    return [int(fields[b"n"]) for _, fields in client.xrange(stream)]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("signum", "code", "how"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_during_bulk_publish(
    one_server: ServerProcess,
    client: redis.Redis,
    events_file: str,
    tmp_path: Path,
    signum: int,
    code: int,
    how: str,
) -> None:
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen(
            streamctl("-u", one_server.url, "publish", "s", "--file", events_file),
            stdout=out, stderr=err, env=env(),
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while client.xlen("s") < 30_000 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "publish ended before the signal"
    proc.send_signal(signum)
    started = time.monotonic()
    proc.wait(30)
    assert time.monotonic() - started < 5, "did not stop promptly"
    stderr = (tmp_path / "err").read_text()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()
    match = STOPPED.fullmatch(line)
    assert match and match["how"] == how, line
    done = int(match["n"])
    assert int(match["skip"]) == done
    assert 30_000 <= done < TOTAL
    # exactly the reported events: the batches in flight were finished, nothing half-known
    assert numbers(client, "s") == list(range(done))
    assert len((tmp_path / "out").read_text().splitlines()) == done

    rerun = subprocess.run(
        streamctl("-u", one_server.url, "-q", "publish", "s", "--file", events_file,
                  "--skip", str(done)),
        capture_output=True, timeout=120, env=env(),
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert numbers(client, "s") == list(range(TOTAL))  # each event exactly once


@pytest.mark.timeout(60)
def test_signal_between_two_bulk_reruns_keeps_counting(
    one_server: ServerProcess, client: redis.Redis, events_file: str, tmp_path: Path
) -> None:
    """A second interruption of a resumed run reports the absolute --skip to use."""
    first = 100_000
    with open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen(
            streamctl("-u", one_server.url, "-q", "publish", "s", "--file", events_file,
                      "--skip", str(first)),
            stdout=subprocess.DEVNULL, stderr=err, env=env(),
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while client.xlen("s") < 20_000 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    line = (tmp_path / "err").read_text().strip()
    assert proc.returncode == 130, line
    match = STOPPED.fullmatch(line)
    assert match, line
    done = int(match["n"])
    assert int(match["skip"]) == first + done
    assert numbers(client, "s") == list(range(first, first + done))


# ---- a reader that goes away ----


def head(args: list[str], lines: int = 1) -> tuple[int, bytes, bytes]:
    """`streamctl ... | head -n LINES`: read LINES lines, close the pipe, collect the rest."""
    proc = subprocess.Popen(
        streamctl(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env()
    )
    assert proc.stdout is not None and proc.stderr is not None
    got = b"".join(proc.stdout.readline() for _ in range(lines))
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.wait(30)
    return proc.returncode, got, stderr


def settled_length(client: redis.Redis, stream: str, quiet_s: float = 0.1) -> int:
    """XLEN once it has stopped changing for `quiet_s` (the server applies what a closed
    connection had sent before it notices the close)."""
    deadline = time.monotonic() + 10
    last, since = client.xlen(stream), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        now = client.xlen(stream)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return int(now)
    raise AssertionError(f"{stream} kept growing for 10 s")


@pytest.fixture
def big_stream(one_server: ServerProcess, client: redis.Redis) -> str:
    pipe = client.pipeline(transaction=False)
    for i in range(50_000):
        pipe.xadd("big", {"n": str(i), "pad": "x" * 50})
    pipe.execute()
    return one_server.url


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "command",
    [
        ["range", "big"],
        ["range", "big", "-o", "json"],
        ["range", "big", "-o", "yaml"],
        ["tail", "big", "--from", "0", "--no-follow"],
        ["tail", "big", "--from", "0", "--no-follow", "--format", "{id} {fields[n]}"],
    ],
    ids=lambda c: " ".join(c),
)
def test_head_closes_the_pipe_quietly(big_stream: str, command: list[str]) -> None:
    code, got, stderr = head(["-u", big_stream, *command])
    assert got
    assert stderr == b"", stderr.decode()
    assert code == 0


@pytest.mark.timeout(60)
def test_head_on_bulk_publish_ids(
    one_server: ServerProcess, client: redis.Redis, events_file: str
) -> None:
    """`publish --file ... | head`: no traceback; if it stops, it says how many were published."""
    code, got, stderr = head(["-u", one_server.url, "publish", "s", "--file", events_file])
    assert got.count(b"\n") == 1
    text = stderr.decode()
    assert "Traceback" not in text
    assert code == 0, text
    published = settled_length(client, "s")  # what the closed connection had sent is applied
    if published < TOTAL:  # stopped early: the count must be told, and be the truth
        [line] = text.splitlines()
        n = int(re.search(r"(\d+) (?:event was|events were) published", line)[1])  # type: ignore[index]
        assert n == published


@pytest.mark.timeout(60)
def test_sigint_during_a_long_range_is_exit_130(big_stream: str) -> None:
    proc = subprocess.Popen(
        streamctl("-u", big_stream, "range", "big"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(),
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()  # it is running and writing
    # nothing more is read until the signal is sent: the 5 MB of output cannot fit in the pipe,
    # so the range is still running (blocked on its stdout) when the signal arrives
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    # typer maps KeyboardInterrupt to a silent Exit(130): nothing, or the one line, on stderr
    assert err.decode().splitlines() in ([], ["error: interrupted"])
