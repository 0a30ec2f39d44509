"""`streamctl server` and `streamctl demo` stop the server they started, however they are stopped.

Each test runs the installed command in a real process, waits until it is mid-run (serving, or
half-way through the story), stops it as a user would (`kill -TERM`, `kill -HUP`, Ctrl-C,
`timeout`), and checks the exit code, that the server child is gone (reaped: no zombie left) and
that its port is free. A parent killed outright (SIGKILL) runs no code: the kernel stops the
child (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import redis

from streamctl.core.embedded import port_in_use
from streamctl.demo import DEMO_STREAM
from tests.conftest import ISOLATED_ENV_DROP
from tests.servers import ServerProcess, free_port

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

T = TypeVar("T")

STOPS = [
    (signal.SIGTERM, 143, "error: terminated"),
    (signal.SIGHUP, 129, "error: hung up"),
    (signal.SIGINT, 130, "error: interrupted"),
]
STOP_IDS = ["SIGTERM", "SIGHUP", "SIGINT"]


def streamctl() -> list[str]:
    """The installed command (the console script beside this Python)."""
    script = Path(sys.executable).with_name("streamctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "streamctl"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def state_of(pid: int) -> str | None:
    """The process state letter (R, S, Z ...), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def server_child(pid: int) -> tuple[int, int] | None:
    """(pid, port) of the redis-server/valkey-server that process `pid` started, once it has."""
    for child in children_of(pid):
        try:
            name = Path(f"/proc/{child}/comm").read_text().strip()
            argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if name not in ("redis-server", "valkey-server"):
            continue
        if "--port" in argv:  # as started
            return child, int(argv[argv.index("--port") + 1])
        title = re.search(r":(\d+)", " ".join(argv))  # as the server renames itself: "... IP:PORT"
        if title:
            return child, int(title[1])
    return None


class Runs:
    """The processes a test starts and the server children found; whatever is left running when
    the test ends (it failed half-way) is killed, so a failing run leaves no orphan behind."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.children: list[int] = []

    def start(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # the command starts with SIGHUP as a terminal session has it (default), however the
        # suite itself was started (under nohup it would inherit SIGHUP ignored, and rightly
        # keep ignoring it: test_an_inherited_ignored_sighup_stays_ignored)
        kwargs.setdefault("preexec_fn", lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), **kwargs
        )
        self.procs.append(proc)
        return proc

    def child_of(self, pid: int, what: str = "the server child") -> tuple[int, int]:
        child, port = wait_for(lambda: server_child(pid), what)
        self.children.append(child)
        return child, port

    def serving(self, proc: subprocess.Popen[bytes]) -> tuple[int, int]:
        """Wait until `streamctl server` printed its URL; the child's pid and port."""
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("redis://127.0.0.1:"), proc.stderr.read()
        child, port = self.child_of(proc.pid)
        assert urlsplit(url).port == port
        return child, port

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for child in self.children:
            if state_of(child) not in (None, "Z"):
                os.kill(child, signal.SIGKILL)


@pytest.fixture
def runs() -> Iterator[Runs]:
    started = Runs()
    yield started
    started.cleanup()


def assert_stopped(child: int, port: int) -> None:
    assert state_of(child) is None, f"server child {child} is still there ({state_of(child)})"
    assert not port_in_use(port), f"port {port} is still in use"


# ---- streamctl server ----


@pytest.mark.parametrize(("signum", "code", "line"), STOPS, ids=STOP_IDS)
def test_server_stops_its_child_on_a_signal(runs: Runs, signum: int, code: int, line: str) -> None:
    proc = runs.start([*streamctl(), "server", "--port", "0"])
    child, port = runs.serving(proc)
    redis.Redis(port=port).ping()
    proc.send_signal(signum)
    assert proc.wait(30) == code
    assert_stopped(child, port)
    stderr = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert stderr.splitlines()[-1] == line and "Traceback" not in stderr


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")
def test_timeout_stops_the_server_and_its_child(runs: Runs) -> None:
    """`timeout 8 streamctl server --port 0`, as the issue tried it (--preserve-status shows
    streamctl's own exit code instead of timeout's 124)."""
    proc = runs.start(["timeout", "--preserve-status", "8", *streamctl(), "server", "-p", "0"])
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip()
    assert url.startswith("redis://"), proc.stderr.read()  # type: ignore[union-attr]
    (command,) = wait_for(lambda: children_of(proc.pid), "streamctl under timeout")
    child, port = runs.child_of(command)
    assert proc.wait(60) == 143
    assert_stopped(child, port)


def test_an_inherited_ignored_sighup_stays_ignored(runs: Runs) -> None:
    """Under `nohup` (SIGHUP ignored) the server keeps serving after a hang-up."""
    proc = runs.start(
        [*streamctl(), "server", "--port", "0"],
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    child, port = runs.serving(proc)
    proc.send_signal(signal.SIGHUP)
    client = redis.Redis(port=port)
    client.set("after-hup", 1)  # one round trip after the signal: it was not acted on
    assert proc.poll() is None and client.get("after-hup") == b"1"
    client.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 143
    assert_stopped(child, port)


def test_a_killed_server_command_takes_its_child_with_it(
    runs: Runs,
) -> None:
    """SIGKILL runs no code in streamctl: Linux sends the child SIGTERM (PR_SET_PDEATHSIG)."""
    proc = runs.start([*streamctl(), "server", "--port", "0"])
    child, port = runs.serving(proc)
    proc.kill()
    proc.wait(30)
    # the orphan is reaped by whoever adopts it; a zombie left to an init that never reaps holds
    # no port
    wait_for(lambda: state_of(child) in (None, "Z"), "the orphaned child to exit")
    wait_for(lambda: not port_in_use(port), "its port to be free")


# ---- streamctl demo ----


def mid_story(proc: subprocess.Popen[bytes], client_port: Callable[[int], int]) -> None:
    """Wait until the demo has created its stream (step 1), then is pausing before step 2."""

    def created() -> bool:
        port = client_port(proc.pid)
        try:
            with redis.Redis(port=port, socket_timeout=1) as client:
                return bool(client.exists(DEMO_STREAM))
        except redis.ConnectionError:
            return False

    wait_for(created, f"the demo to create {DEMO_STREAM}")


@pytest.mark.parametrize(("signum", "code", "line"), STOPS, ids=STOP_IDS)
def test_demo_stops_its_embedded_server_on_a_signal(
    runs: Runs, signum: int, code: int, line: str
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    proc = runs.start([*streamctl(), "-u", nobody, "demo", "--pause", "120", "-o", "json"])
    child, port = runs.child_of(proc.pid, "the demo's embedded server")
    mid_story(proc, lambda _: port)
    proc.send_signal(signum)
    assert proc.wait(30) == code
    assert_stopped(child, port)
    assert proc.stdout.read() == b""  # type: ignore[union-attr]
    assert proc.stderr.read().decode().splitlines()[-1] == line  # type: ignore[union-attr]


def test_demo_on_a_server_removes_its_stream_when_terminated(
    runs: Runs, one_server: ServerProcess
) -> None:
    proc = runs.start([*streamctl(), "-u", one_server.url, "demo", "--pause", "120", "-o", "json"])
    mid_story(proc, lambda _: one_server.port)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 143
    assert server_child(proc.pid) is None
    with one_server.client() as client:
        assert client.exists(DEMO_STREAM) == 0
