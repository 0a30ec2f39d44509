"""ACL users on the three real servers: a user limited to some keys and commands gets exit 1
naming what was refused (NOPERM, the command, the key, the user); a wrong password, a disabled or
unknown user is exit 3; nothing is written when a write is refused."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.conftest import Run
from tests.servers import ServerProcess, server_binary, start_server

PASSWORD = "Rd-pass-9f81c2"


@dataclass
class AclUser:
    name: str
    password: str
    port: int

    def url(self, password: str | None = None) -> str:
        return f"redis://{self.name}:{password or self.password}@127.0.0.1:{self.port}/0"


def make_user(r: redis.Redis, port: int, *rules: str) -> AclUser:
    name = f"u{uuid.uuid4().hex[:8]}"
    r.execute_command("ACL", "SETUSER", name, "on", f">{PASSWORD}", *rules)
    return AclUser(name, PASSWORD, port)


@pytest.fixture
def reader(server: ServerProcess, r: redis.Redis) -> Iterator[AclUser]:
    """May read streams named orders*, and run what streamctl's reads need; no writes."""
    user = make_user(
        r, server.port, "~orders*", "+@read", "+ping", "+info", "+time", "+scan", "+type"
    )
    yield user
    r.execute_command("ACL", "DELUSER", user.name)


@pytest.fixture
def writer(server: ServerProcess, r: redis.Redis) -> Iterator[AclUser]:
    """May read and write streams named orders* only."""
    user = make_user(r, server.port, "~orders*", "+@read", "+@write", "+@stream", "+@connection")
    yield user
    r.execute_command("ACL", "DELUSER", user.name)


def one_line_error(res: Run) -> str:
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def noperm_line(res: Run, *, key: str, user: AclUser) -> str:
    """exit 1 with one line: NOPERM, the server's reason, the refused key and the user."""
    assert res.exit_code == 1, res.stderr
    line = one_line_error(res)
    assert re.fullmatch(
        rf"error: (permission denied|the server refused): NOPERM .+ "
        rf"\([A-Z]+( [A-Z]+)? '{re.escape(key)}', user '{user.name}'\)",
        line,
    ), line
    assert user.password not in res.stderr
    return line


def test_limited_user_reads_what_it_may(reader: AclUser, r: redis.Redis, run_cli) -> None:
    eid = r.xadd("orders", {"a": "1"}).decode()
    res = run_cli(["-u", reader.url(), "range", "orders", "-o", "ndjson"])
    assert res.exit_code == 0, res.stderr
    assert [(e["id"], e["fields"]) for e in res.ndjson()] == [(eid, {"a": "1"})]
    res = run_cli(["-u", reader.url(), "info", "orders", "-o", "json"])
    assert (res.exit_code, res.json()["length"]) == (0, 1), res.stderr


@pytest.mark.parametrize("command", [["range", "secret"], ["info", "secret"]])
def test_key_outside_the_users_patterns_is_exit_1_naming_it(
    reader: AclUser, r: redis.Redis, run_cli, command: list[str]
) -> None:
    r.xadd("secret", {"a": "1"})
    res = run_cli(["-u", reader.url(), *command])
    line = noperm_line(res, key="secret", user=reader)
    assert line.startswith("error: permission denied: NOPERM ")


def test_command_the_user_lacks_is_exit_1_naming_it(
    reader: AclUser, r: redis.Redis, run_cli
) -> None:
    r.xadd("orders", {"a": "1"})
    res = run_cli(["-u", reader.url(), "publish", "orders", "a=2"])
    line = noperm_line(res, key="orders", user=reader)
    assert "'xadd'" in line  # the server's text names the command the user lacks
    assert r.xlen("orders") == 1


def test_bulk_publish_refused_publishes_nothing(
    reader: AclUser, r: redis.Redis, run_cli, tmp_path: Path
) -> None:
    path = tmp_path / "events.ndjson"
    path.write_text("".join(f'{{"n": {i}}}\n' for i in range(50)))
    res = run_cli(["-u", reader.url(), "publish", "orders", "--file", str(path)])
    assert res.exit_code == 1
    line = one_line_error(res)
    assert "NOPERM" in line and "'xadd'" in line
    assert "0 events were published" in line
    assert not r.exists("orders")


def test_write_to_a_key_outside_the_patterns(writer: AclUser, r: redis.Redis, run_cli) -> None:
    res = run_cli(["-u", writer.url(), "publish", "orders", "a=1"])
    assert res.exit_code == 0, res.stderr
    res = run_cli(["-u", writer.url(), "publish", "secret", "a=1"])
    noperm_line(res, key="secret", user=writer)
    assert not r.exists("secret")
    assert r.xlen("orders") == 1


# ---- who you are: exit 3 ----


def auth_failure(res: Run, user: str, *secrets: str) -> str:
    assert res.exit_code == 3, res.stderr
    line = one_line_error(res)
    assert line.startswith(f"error: authentication failed at redis://{user}:***@127.0.0.1:")
    for secret in secrets:
        assert secret not in res.stderr
    return line


def test_wrong_password_is_exit_3(reader: AclUser, r: redis.Redis, run_cli) -> None:
    res = run_cli(["-u", reader.url("Not-The-Pass-1"), "ls"])
    line = auth_failure(res, reader.name, "Not-The-Pass-1", reader.password)
    assert line.endswith("invalid username-password pair or user is disabled.")


def test_unknown_user_is_exit_3(server: ServerProcess, r: redis.Redis, run_cli) -> None:
    url = f"redis://nobody-here:{PASSWORD}@127.0.0.1:{server.port}/0"
    auth_failure(run_cli(["-u", url, "range", "orders"]), "nobody-here", PASSWORD)


def test_disabled_user_is_exit_3(reader: AclUser, r: redis.Redis, run_cli) -> None:
    r.execute_command("ACL", "SETUSER", reader.name, "off")
    auth_failure(run_cli(["-u", reader.url(), "ls"]), reader.name, reader.password)


def test_password_from_profile_password_env(
    reader: AclUser, r: redis.Redis, run_cli, tmp_path: Path
) -> None:
    r.xadd("orders", {"a": "1"})
    config = tmp_path / "config.yaml"
    config.write_text(
        "profiles:\n  limited:\n"
        f'    url: "redis://127.0.0.1:{reader.port}/0"\n'
        f"    username: {reader.name}\n"
        "    password_env: LIMITED_REDIS_PASSWORD\n"
    )
    base = ["--config", str(config), "-P", "limited"]
    res = run_cli([*base, "range", "orders", "-o", "ndjson"],
                  env={"LIMITED_REDIS_PASSWORD": reader.password})  # fmt: skip
    assert (res.exit_code, len(res.ndjson())) == (0, 1), res.stderr

    res = run_cli([*base, "ls"], env={"LIMITED_REDIS_PASSWORD": "Wrong-Env-Pass-7"})
    assert res.exit_code == 3
    line = one_line_error(res)
    assert line.startswith("error: authentication failed at redis://127.0.0.1:")
    assert "Wrong-Env-Pass-7" not in res.stderr

    res = run_cli([*base, "ls"], env={"LIMITED_REDIS_PASSWORD": reader.password})
    assert res.exit_code == 0, res.stderr

    res = run_cli([*base, "ls"])
    assert res.exit_code == 2
    assert one_line_error(res) == (
        "error: profile 'limited' takes its password from $LIMITED_REDIS_PASSWORD, which is not set"
    )


# ---- a server that requires a password for everyone ----


@pytest.fixture(scope="module")
def locked_server() -> Iterator[ServerProcess]:
    if server_binary("redis8.2") is None:
        pytest.skip("redis8.2 server not available")
    srv = start_server("redis8.2")
    srv.client().config_set("requirepass", "Default-Pass-31")
    yield srv
    srv.stop()


def test_no_password_where_one_is_required_is_exit_3_with_a_hint(
    locked_server: ServerProcess, run_cli
) -> None:
    res = run_cli(["-u", locked_server.url, "ls"])
    assert res.exit_code == 3
    assert one_line_error(res) == (
        f"error: authentication failed at {locked_server.url}: Authentication required. "
        "(give user:password in the URL, or a profile with password_env)"
    )


def test_default_user_password_in_the_url(locked_server: ServerProcess, run_cli) -> None:
    url = f"redis://:Default-Pass-31@127.0.0.1:{locked_server.port}/0"
    res = run_cli(["-u", url, "ls", "-o", "json"])
    assert res.exit_code == 0, res.stderr
    res = run_cli(["-u", url.replace("Default-Pass-31", "Nope-Pass-32"), "ls"])
    line = auth_failure(res, "", "Nope-Pass-32", "Default-Pass-31")
    assert line.endswith("invalid username-password pair or user is disabled.")


def test_tail_of_a_key_outside_the_patterns(reader: AclUser, r: redis.Redis, run_cli) -> None:
    r.xadd("secret", {"a": "1"})
    res = run_cli(["-u", reader.url(), "tail", "secret", "--from", "0", "--no-follow"])
    noperm_line(res, key="secret", user=reader)


def test_group_read_without_xreadgroup_fails_at_once(
    reader: AclUser, r: redis.Redis, run_cli
) -> None:
    """A refusal is not a lost connection: tail must not retry it for --retry-for."""
    r.xadd("orders", {"a": "1"})
    r.xgroup_create("orders", "billing", id="0")
    started = time.monotonic()
    res = run_cli(["-u", reader.url(), "tail", "orders", "--group", "billing", "--timeout", "5s"])
    assert time.monotonic() - started < 3
    line = noperm_line(res, key="orders", user=reader)
    assert "'xreadgroup'" in line
    assert r.xpending("orders", "billing")["pending"] == 0
