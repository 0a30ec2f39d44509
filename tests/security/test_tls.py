"""TLS (rediss://) against Debian's redis-server 7.0, the one server here built with TLS.

The test makes its own CA and server certificate (trustme). The CA reaches streamctl by
--tls-ca, STREAMCTL_TLS_CA or a profile's ca_cert; a CA that did not sign the server's
certificate is exit 3 with one line that says where to give the right one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.conftest import Run, run_process
from tests.servers import free_port, server_binary

REQUIRE_ALL = os.environ.get("STREAMCTL_TEST_ALL_SERVERS", "") == "1"
CA_HINT = "give the CA that signed it with --tls-ca, STREAMCTL_TLS_CA or the profile's ca_cert"


def skip_or_fail(message: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(message + " (STREAMCTL_TEST_ALL_SERVERS=1)")
    pytest.skip(message)


@dataclass
class TLSServer:
    """redis-server with only a TLS port (--port 0), its CA, and a CA that did not sign it."""

    binary: str
    dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    env_extra: dict[str, str] = field(default_factory=dict)

    @property
    def ca(self) -> str:
        return str(self.dir / "ca.pem")

    @property
    def wrong_ca(self) -> str:
        return str(self.dir / "other-ca.pem")

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def make_certificates(self) -> None:
        trustme = pytest.importorskip("trustme")
        ca = trustme.CA()
        # only the IP: connecting as "localhost" is a hostname mismatch
        cert = ca.issue_cert("127.0.0.1")
        ca.cert_pem.write_to_path(self.ca)
        cert.private_key_pem.write_to_path(str(self.dir / "server.key"))
        cert.cert_chain_pems[0].write_to_path(str(self.dir / "server.crt"))
        trustme.CA().cert_pem.write_to_path(self.wrong_ca)

    def start(self) -> None:
        self.port = free_port()
        args = [
            self.binary,
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(self.dir / "server.crt"),
            "--tls-key-file", str(self.dir / "server.key"),
            "--tls-ca-cert-file", self.ca,
            "--tls-auth-clients", "no",
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
        ]  # fmt: skip
        with open(self.dir / "server.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 20.0) -> str | None:
        """None when it answers over TLS, else the reason it did not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return (self.dir / "server.log").read_text(errors="replace")[-600:]
            try:
                if self.client().ping():
                    return None
            except redis.RedisError:
                time.sleep(0.05)
        return f"no TLS answer on port {self.port}"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            ssl=True,
            ssl_ca_certs=self.ca,
            protocol=2,
            socket_timeout=5,
            **kwargs,  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TLSServer]:
    binary = server_binary("redis7.0")
    if binary is None:
        skip_or_fail("Debian's redis-server 7.0 (built with TLS) is not on this machine")
    assert binary is not None
    srv = TLSServer(binary, Path(tempfile.mkdtemp(prefix="streamctl-tls-")))
    try:
        srv.make_certificates()
        srv.start()
        failure = srv.wait_ready()
        if failure is not None:
            skip_or_fail(f"redis-server {binary} does not serve TLS: {failure.strip()}")
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(srv.dir, ignore_errors=True)


@pytest.fixture
def tls(tls_server: TLSServer) -> Iterator[TLSServer]:
    client = tls_server.client()
    client.flushall()
    client.close()
    yield tls_server


def one_line_error(res: Run) -> str:
    assert res.stdout == ""
    assert res.stderr.endswith("\n")
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in res.stderr
    return lines[0]


def write_profile(path: Path, url: str, ca_cert: str | None, *, default: bool = True) -> str:
    text = ("default: tls\n" if default else "") + "profiles:\n  tls:\n"
    text += f'    url: "{url}"\n'
    if ca_cert is not None:
        text += f'    ca_cert: "{ca_cert}"\n'
    path.write_text(text)
    return str(path)


# ---- the CA given three ways ----


def test_tls_ca_flag_publish_range_ls(tls: TLSServer, run_cli) -> None:
    res = run_cli(["-u", tls.url, "--tls-ca", tls.ca, "publish", "orders", "order_id=42"])
    assert res.exit_code == 0, res.stderr
    new_id = res.stdout.strip()
    server = tls.client()
    assert [(i.decode(), f) for i, f in server.xrange("orders")] == [(new_id, {b"order_id": b"42"})]

    res = run_cli(["-u", tls.url, "--tls-ca", tls.ca, "range", "orders", "-o", "ndjson"])
    assert res.exit_code == 0, res.stderr
    assert [(e["id"], e["fields"]) for e in res.ndjson()] == [(new_id, {"order_id": "42"})]

    res = run_cli(["-u", tls.url, "--tls-ca", tls.ca, "ls", "-o", "json"])
    assert res.exit_code == 0, res.stderr
    assert [(s["name"], s["length"]) for s in res.json()] == [("orders", 1)]


def test_tls_ca_from_profile_with_config_flag(tls: TLSServer, run_cli, tmp_path: Path) -> None:
    tls.client().xadd("orders", {"a": "1"})
    path = write_profile(tmp_path / "config.yaml", tls.url, tls.ca)
    res = run_cli(["--config", path, "ls", "-o", "json"])
    assert res.exit_code == 0, res.stderr
    assert [s["name"] for s in res.json()] == ["orders"]
    res = run_cli(["--config", path, "-P", "tls", "info", "orders", "-o", "json"])
    assert (res.exit_code, res.json()["length"]) == (0, 1), res.stderr


def test_tls_ca_from_profile_with_config_env(tls: TLSServer, run_cli, tmp_path: Path) -> None:
    tls.client().xadd("orders", {"a": "1"})
    path = write_profile(tmp_path / "config.yaml", tls.url, tls.ca, default=False)
    res = run_cli(["-P", "tls", "range", "orders", "-o", "ndjson"], env={"STREAMCTL_CONFIG": path})
    assert res.exit_code == 0, res.stderr
    assert [e["fields"] for e in res.ndjson()] == [{"a": "1"}]


def test_tls_ca_from_env(tls: TLSServer, run_cli) -> None:
    tls.client().xadd("orders", {"a": "1"})
    res = run_cli(["-u", tls.url, "ls", "-o", "json"], env={"STREAMCTL_TLS_CA": tls.ca})
    assert res.exit_code == 0, res.stderr
    assert [s["name"] for s in res.json()] == ["orders"]


def test_tail_over_tls(tls: TLSServer, run_cli) -> None:
    """tail's blocking reads use a client without a socket timeout: TLS works there too."""
    server = tls.client()
    eid = server.xadd("orders", {"a": "1"}).decode()
    res = run_cli(["-u", tls.url, "--tls-ca", tls.ca, "tail", "orders", "--from", "0",
                   "--count", "1", "--timeout", "5s", "-o", "ndjson"])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert [(e["id"], e["fields"]) for e in res.ndjson()] == [(eid, {"a": "1"})]
    server.xgroup_create("orders", "billing", id="0")
    res = run_cli(["-u", tls.url, "--tls-ca", tls.ca, "tail", "orders", "--group", "billing",
                   "--count", "1", "--timeout", "5s", "-o", "ndjson"])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert [e["id"] for e in res.ndjson()] == [eid]
    assert server.xpending("orders", "billing")["pending"] == 0


def test_tls_in_a_real_process(tls: TLSServer) -> None:
    tls.client().xadd("orders", {"a": "1"})
    proc = run_process(["-u", tls.url, "--tls-ca", tls.ca, "range", "orders", "-o", "ndjson"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    assert b'"fields":{"a":"1"}' in proc.stdout


def test_tls_ca_flag_beats_profile_ca_cert(tls: TLSServer, run_cli, tmp_path: Path) -> None:
    path = write_profile(tmp_path / "config.yaml", tls.url, tls.wrong_ca)
    res = run_cli(["--config", path, "--tls-ca", tls.ca, "ls", "-o", "json"])
    assert (res.exit_code, res.json()) == (0, []), res.stderr


def test_tls_ca_env_beats_profile_ca_cert(tls: TLSServer, run_cli, tmp_path: Path) -> None:
    path = write_profile(tmp_path / "config.yaml", tls.url, tls.wrong_ca)
    res = run_cli(["--config", path, "ls", "-o", "json"], env={"STREAMCTL_TLS_CA": tls.ca})
    assert res.exit_code == 0, res.stderr


def test_tls_user_and_password(tls: TLSServer, run_cli) -> None:
    """With AUTH on the connection (a round trip at connect) and without +ping for default."""
    admin = tls.client()
    admin.execute_command("ACL", "SETUSER", "tlsuser", "on", ">tls-Secret-42", "~*", "+@all")
    admin.execute_command("ACL", "SETUSER", "default", "-ping")
    try:
        url = f"rediss://tlsuser:tls-Secret-42@127.0.0.1:{tls.port}/0"
        res = run_cli(["-u", url, "--tls-ca", tls.ca, "publish", "s", "a=1"])
        assert res.exit_code == 0, res.stderr
        assert admin.xlen("s") == 1
        # the default user may not PING: streamctl's TLS connect must still work
        res = run_cli(["-u", tls.url, "--tls-ca", tls.ca, "ls", "-o", "json"])
        assert (res.exit_code, [s["name"] for s in res.json()]) == (0, ["s"]), res.stderr
        res = run_cli(["-u", url.replace("Secret", "Wrong"), "--tls-ca", tls.ca, "ls"])
        assert res.exit_code == 3
        assert one_line_error(res).startswith(
            "error: authentication failed at rediss://tlsuser:***@"
        )
        assert "Secret" not in res.stderr and "Wrong" not in res.stderr
    finally:
        admin.execute_command("ACL", "SETUSER", "default", "+ping")
        admin.execute_command("ACL", "DELUSER", "tlsuser")


# ---- a CA that does not vouch for the server: exit 3, one line ----


@pytest.mark.parametrize("source", ["flag", "env", "profile"])
def test_wrong_ca_is_exit_3_with_one_line(
    tls: TLSServer, run_cli, tmp_path: Path, source: str
) -> None:
    if source == "flag":
        res = run_cli(["-u", tls.url, "--tls-ca", tls.wrong_ca, "ls"])
    elif source == "env":
        res = run_cli(["-u", tls.url, "ls"], env={"STREAMCTL_TLS_CA": tls.wrong_ca})
    else:
        path = write_profile(tmp_path / "config.yaml", tls.url, tls.wrong_ca)
        res = run_cli(["--config", path, "ls"])
    assert res.exit_code == 3
    line = one_line_error(res)
    assert re.fullmatch(
        rf"error: TLS: the certificate of {re.escape(tls.url)} was not verified "
        rf"\(self[- ]signed certificate in certificate chain\); {re.escape(CA_HINT)}",
        line,
    ), line


def test_no_ca_uses_the_system_store_which_does_not_know_the_test_ca(
    tls: TLSServer, run_cli
) -> None:
    res = run_cli(["-u", tls.url, "ls"])
    assert res.exit_code == 3
    line = one_line_error(res)
    assert line.startswith(f"error: TLS: the certificate of {tls.url} was not verified")


def test_hostname_mismatch_is_exit_3(tls: TLSServer, run_cli) -> None:
    url = f"rediss://localhost:{tls.port}/0"
    res = run_cli(["-u", url, "--tls-ca", tls.ca, "--timeout", "3", "ls"])
    assert res.exit_code == 3
    line = one_line_error(res)
    assert line.startswith(f"error: TLS: the certificate of {url} was not verified (")
    assert "localhost" in line.split("(", 1)[1]


def test_wrong_ca_in_a_real_process(tls: TLSServer) -> None:
    proc = run_process(["-u", tls.url, "--tls-ca", tls.wrong_ca, "publish", "s", "a=1"])
    assert proc.returncode == 3
    assert proc.stdout == b""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(b"error: TLS: the certificate of ")
    assert tls.client().exists("s") == 0


# ---- a CA file that cannot be used is the user's input to fix: exit 2 ----


def test_missing_ca_file_is_exit_2(tls: TLSServer, run_cli, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    res = run_cli(["-u", tls.url, "--tls-ca", missing, "ls"])
    assert res.exit_code == 2
    assert one_line_error(res) == (
        f"error: CA file {missing!r} (--tls-ca, STREAMCTL_TLS_CA or the profile's ca_cert) "
        "does not exist or is not a file"
    )


def test_ca_file_without_a_certificate_is_exit_2(tls: TLSServer, run_cli, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    res = run_cli(["-u", tls.url, "--tls-ca", str(garbage), "ls"])
    assert res.exit_code == 2
    assert one_line_error(res).startswith(f"error: CA file {str(garbage)!r} (")
    assert "holds no usable certificate" in res.stderr


# ---- the wrong scheme for the port ----


def test_plain_url_to_the_tls_port_is_exit_3_with_a_hint(tls: TLSServer, run_cli) -> None:
    url = f"redis://127.0.0.1:{tls.port}/0"
    res = run_cli(["-u", url, "--timeout", "2", "ls"])
    assert res.exit_code == 3
    line = one_line_error(res)
    assert line.startswith(f"error: cannot connect to {url}: ")
    assert line.endswith("(if that port speaks TLS, use rediss://)")


def test_tls_url_to_a_plain_port_fails_within_the_timeout(one_server, run_cli) -> None:
    url = f"rediss://127.0.0.1:{one_server.port}/0"
    started = time.monotonic()
    res = run_cli(["-u", url, "--timeout", "1", "ls"])
    elapsed = time.monotonic() - started
    assert res.exit_code == 3
    assert one_line_error(res) == (
        f"error: TLS handshake with {url} timed out; is that port TLS (rediss://)?"
    )
    assert elapsed < 4
