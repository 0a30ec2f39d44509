"""A Sentinel topology from the wheels' servers: a primary, a replica and three Sentinels
(`redis-server sentinel.conf --sentinel`, each with its own writable config), on free ports."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.servers import ServerProcess, free_port, server_binary

MASTER = "mymaster"


@dataclass
class SentinelProcess:
    binary: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, primary_port: int) -> SentinelProcess:
        conf = self.dir / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            "protected-mode no\n"
            f"dir {self.dir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 4000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        with open(self.dir / "sentinel.log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, protocol=2, socket_timeout=2, decode_responses=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(18)  # SIGCONT: a paused Sentinel must be able to exit
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(19)  # SIGSTOP: it no longer answers (a Sentinel that is down)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(18)


@dataclass
class SentinelTopology:
    kind: str
    servers: list[ServerProcess] = field(default_factory=list)
    sentinels: list[SentinelProcess] = field(default_factory=list)
    dir: Path | None = None

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER}"

    def primary_port(self) -> int:
        _, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def primary(self) -> ServerProcess:
        port = self.primary_port()
        return next(s for s in self.servers if s.port == port)

    def replica(self) -> ServerProcess:
        port = self.primary_port()
        return next(s for s in self.servers if s.port != port)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every Sentinel agrees on the primary, knows the replica and the other Sentinels,
        the primary says it is one and the replica's link to it is up."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                answers = set()
                for sentinel in self.sentinels:
                    c = sentinel.client()
                    state = c.sentinel_master(MASTER)
                    replicas = c.sentinel_slaves(MASTER)
                    ok = (
                        state["num-other-sentinels"] == len(self.sentinels) - 1
                        and not state["is_sdown"]
                        and not state["is_odown"]
                        and "failover_in_progress" not in str(state.get("flags", ""))
                        and any(not r["is_sdown"] for r in replicas)
                    )
                    answers.add((state["ip"], int(state["port"]), ok))
                    c.close()
                if len(answers) == 1:
                    (_, port, ok) = answers.pop()
                    if ok:
                        primary = redis.Redis(port=port, decode_responses=True)
                        role = primary.info("replication")
                        replica = next(s for s in self.servers if s.port != port)
                        rinfo = replica.client(decode_responses=True).info("replication")
                        if (
                            role["role"] == "master"
                            and rinfo.get("role") == "slave"
                            and int(rinfo.get("master_port", 0)) == port
                            and rinfo.get("master_link_status") == "up"
                        ):
                            return
                last = repr(answers)
            except (redis.RedisError, KeyError, StopIteration) as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"the Sentinel topology did not settle: {last}")

    def failover(self, timeout: float = 60.0) -> tuple[int, int]:
        """SENTINEL FAILOVER, then wait until the old replica is the primary everyone agrees
        on. Returns (old primary port, new primary port)."""
        old = self.primary_port()
        self.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.primary_port() != old:
                    break
            except redis.RedisError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError("SENTINEL FAILOVER did not change the primary")
        # Sentinel demotes the old primary only when its next INFO (every 10 s) shows it still
        # a primary; do now what it will do then, so a test does not wait those seconds.
        new = self.primary_port()
        old_server = next(s for s in self.servers if s.port == old)
        old_server.client().execute_command("REPLICAOF", "127.0.0.1", new)
        self.wait_healthy(timeout)
        return old, self.primary_port()

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def start_sentinel_topology(kind: str) -> SentinelTopology:
    binary = server_binary(kind)
    if binary is None:
        raise LookupError(kind)
    topo = SentinelTopology(kind, dir=Path(tempfile.mkdtemp(prefix=f"streamctl-ha-{kind}-")))
    try:
        primary = ServerProcess(kind, binary).start()
        topo.servers.append(primary)
        replica = ServerProcess(
            kind, binary, extra=["--replicaof", "127.0.0.1", str(primary.port)]
        ).start()
        topo.servers.append(replica)
        for i in range(3):
            d = topo.dir / f"sentinel{i}"
            d.mkdir()
            topo.sentinels.append(SentinelProcess(binary, free_port(), d).start(primary.port))
        topo.wait_healthy()
        return topo
    except BaseException:
        topo.stop()
        raise
