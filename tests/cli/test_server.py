"""`streamctl server`: an embedded server in the foreground that prints its URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import redis


def test_server_prints_its_url_serves_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamctl",
            "server",
            "--port",
            "0",
            "--dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        assert url.startswith("redis://127.0.0.1:")
        client = redis.Redis.from_url(url)
        client.xadd("s", {"a": 1})
        assert client.xlen("s") == 1
        client.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130  # SPEC: interrupted (Ctrl-C); the server is stopped first
        assert proc.stderr.read().splitlines()[-1] == b"error: interrupted"  # type: ignore[union-attr]
        assert (tmp_path / "data").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_server_refuses_a_busy_port(one_server, run_cli):
    res = run_cli(["server", "--port", str(one_server.port)])
    assert res.exit_code == 1
    assert f"port {one_server.port} is already in use" in res.stderr
