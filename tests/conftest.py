"""Shared fixtures: real servers (session scope, one per kind), a clean database per test, and a
CLI runner in process with an isolated environment (no color, fixed width, no user config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from tests.servers import KINDS, ServerProcess, server_binary, start_server

# CI sets this so that a missing server fails the run instead of skipping its tests.
REQUIRE_ALL = os.environ.get("STREAMCTL_TEST_ALL_SERVERS", "") == "1"

ISOLATED_ENV_DROP = (
    "STREAMCTL_URL",
    "REDIS_URL",
    "STREAMCTL_PROFILE",
    "STREAMCTL_OUTPUT",
    "STREAMCTL_TLS_CA",
    "STREAMCTL_SENTINEL_PASSWORD",
    "STREAMCTL_DEBUG",
    "FORCE_COLOR",
)


def start_or_skip(kind: str, **kwargs: Any) -> ServerProcess:
    """A server of `kind` (start_server's options), or a skip when its binary is missing (a
    failure under STREAMCTL_TEST_ALL_SERVERS=1)."""
    if server_binary(kind) is None:
        message = f"{kind} server not available"
        if REQUIRE_ALL:
            pytest.fail(message + " (STREAMCTL_TEST_ALL_SERVERS=1)")
        pytest.skip(message)
    return start_server(kind, **kwargs)


@pytest.fixture(params=KINDS)
def aof_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """A server of each kind of its own with AOF (appendfsync always), for tests that kill and
    restart it: what it acknowledged survives the restart."""
    srv = start_or_skip(request.param, aof=True)
    yield srv
    srv.stop()


@pytest.fixture(scope="session", params=KINDS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """Each test using it runs once per server kind."""
    srv = start_or_skip(request.param)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def one_server() -> Iterator[ServerProcess]:
    """A single Redis 8.2 for tests whose subject does not depend on the server version."""
    srv = start_or_skip("redis8.2")
    yield srv
    srv.stop()


@pytest.fixture
def r(server: ServerProcess) -> Iterator[redis.Redis]:
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def r1(one_server: ServerProcess) -> Iterator[redis.Redis]:
    client = one_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ISOLATED_ENV_DROP:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("STREAMCTL_CONFIG", str(tmp_path / "no-config.yaml"))


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def ndjson(self) -> list[Any]:
        # split on "\n" only: a JSON string may hold U+2028 or U+0085, which splitlines() splits on
        return [json.loads(line) for line in self.stdout.split("\n") if line.strip()]

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def invoke(
    args: list[str], input: str | bytes | None = None, env: dict[str, str] | None = None
) -> Run:
    from streamctl.cli.app import app

    result = CliRunner().invoke(app, args, input=input, env=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli(server: ServerProcess, r: redis.Redis):  # type: ignore[no-untyped-def]
    """Run streamctl in process against the test's server: cli("range", "s", "-o", "json")."""

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Run:
        return invoke(["-u", server.url, *args], input=input, env=env)

    return run


@pytest.fixture
def cli1(one_server: ServerProcess, r1: redis.Redis):  # type: ignore[no-untyped-def]
    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Run:
        return invoke(["-u", one_server.url, *args], input=input, env=env)

    return run


@pytest.fixture
def run_cli():  # type: ignore[no-untyped-def]
    """Run streamctl in process with no URL added."""
    return invoke


def run_process(
    args: list[str],
    *,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """The installed command in a real process (pipes, signals, start-up imports)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "streamctl", *args],
        input=input,
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """A real 3-primary Redis 8.2 cluster (session scope)."""
    from tests.servers import start_cluster

    if server_binary("redis8.2") is None:
        if REQUIRE_ALL:
            pytest.fail("redis8.2 server not available for the cluster")
        pytest.skip("redis8.2 server not available for the cluster")
    c = start_cluster()
    yield c
    c.stop()


@pytest.fixture
def rc(cluster: Any) -> Iterator[Any]:
    """A cluster client, every primary flushed before the test."""
    client = cluster.client()
    for node in cluster.nodes:
        node.client().flushall()
    yield client
    client.close()


@pytest.fixture
def cli_cluster(cluster: Any, rc: Any):  # type: ignore[no-untyped-def]
    """streamctl against the cluster (no --cluster flag: detection must find it)."""

    def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Run:
        return invoke(["-u", cluster.url, *args], input=input, env=env)

    return run


def xrange_raw(client: redis.Redis, stream: str) -> list[tuple[bytes, list[bytes]]]:
    """XRANGE - + exactly as the server sends it: field order, repeated names and every value
    kept (redis-py's reply callback folds the fields into a dict)."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_command("XRANGE", stream, "-", "+")
        reply = conn.read_response()
    finally:
        pool.release(conn)
    return [(entry_id, list(fields)) for entry_id, fields in reply]
