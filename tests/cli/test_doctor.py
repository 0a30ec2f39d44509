"""doctor against servers configured each way, on every server kind (the `server` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.servers import ServerProcess


@pytest.fixture
def config(r: redis.Redis) -> Iterator[redis.Redis]:
    """The server's settings put back after the test (the server is shared by the session)."""
    saved = {k: r.config_get(k)[k] for k in ("maxmemory-policy", "maxmemory", "save", "appendonly")}
    yield r
    for key, value in saved.items():
        r.config_set(key, value)
    for user in r.acl_users():
        if user != "default":
            r.acl_deluser(user)


def findings(report: dict[str, Any], check: str) -> list[dict[str, str]]:
    return [f for f in report["findings"] if f["check"] == check]


def user_url(server: ServerProcess, user: str) -> str:
    return server.url.replace("redis://", f"redis://{user}:pw@")


def test_a_safe_server_passes(cli, config, server):
    config.config_set("maxmemory-policy", "noeviction")
    config.config_set("appendonly", "yes")
    res = cli("doctor", "-o", "json")
    assert res.exit_code == 0, res.stderr
    report = res.json()
    assert report["server"] == ("valkey" if server.kind.startswith("valkey") else "redis")
    assert report["version"].startswith(server.kind[-3:])  # e.g. 7.0 of redis7.0
    assert report["topology"]["mode"] == "standalone"
    assert [f["level"] for f in report["findings"]] == ["ok", "ok", "ok"]
    assert report["failed"] is False
    assert report["connected"] == {
        "address": f"127.0.0.1:{server.port}",
        "role": "primary",
        "master_name": None,
    }
    table = cli("doctor", "-o", "table")
    assert f"connected  127.0.0.1:{server.port} (primary)" in table.stdout


def test_allkeys_eviction_is_an_error_and_exit_5(cli, config):
    config.config_set("maxmemory", "512mb")
    config.config_set("maxmemory-policy", "allkeys-lru")
    res = cli("doctor", "-o", "json")
    assert res.exit_code == 5
    assert res.stderr == "error: 1 finding at error level: maxmemory-policy\n"
    [f] = findings(res.json(), "maxmemory-policy")
    assert f["level"] == "error"
    assert "allkeys-lru" in f["message"]
    assert "noeviction" in f["action"]
    # without a memory limit the policy evicts nothing yet: a warning
    config.config_set("maxmemory", "0")
    res = cli("doctor", "-o", "json")
    assert res.exit_code == 0
    assert findings(res.json(), "maxmemory-policy")[0]["level"] == "warning"


def test_volatile_eviction_names_the_streams_with_a_ttl(cli, config):
    config.config_set("maxmemory-policy", "volatile-lru")
    config.xadd("orders", {"a": 1})
    config.xadd("events", {"a": 1})
    res = cli("doctor", "-o", "json")
    assert findings(res.json(), "maxmemory-policy")[0]["level"] == "ok"
    config.expire("events", 3600)
    config.set("cache", "x", ex=60)  # a TTL on a key that is not a stream: not named
    res = cli("doctor", "-o", "json")
    assert res.exit_code == 0
    [f] = findings(res.json(), "maxmemory-policy")
    assert f["level"] == "warning"
    assert f["message"].endswith("streams with a TTL can be evicted: 'events'")
    assert "PERSIST" in f["action"]


def test_no_persistence_is_a_warning(cli, config):
    config.config_set("appendonly", "no")
    config.config_set("save", "")
    res = cli("doctor", "-o", "json")
    assert res.exit_code == 0
    [f] = findings(res.json(), "persistence")
    assert f["level"] == "warning"
    assert "a restart loses every stream" in f["message"]
    config.config_set("save", "3600 1")
    [f] = findings(cli("doctor", "-o", "json").json(), "persistence")
    assert (f["level"], f["message"]) == ("ok", "RDB snapshots on")


def test_a_user_without_eval_is_warned_and_nothing_is_written(config, server, run_cli):
    config.acl_setuser(
        "app", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-eval"]
    )
    res = run_cli(["-u", user_url(server, "app"), "doctor", "-o", "json"])
    assert res.exit_code == 0, res.stderr
    [f] = findings(res.json(), "acl")
    assert f["level"] == "warning"
    assert f["message"].startswith(
        "user 'app' may not run EVAL (affected: EVAL: pending --dead-letter"
    )
    assert f["action"].startswith("ACL SETUSER app +eval")
    assert config.keys("*") == []  # the probes were queued and discarded, never run
    full = run_cli(["-u", server.url, "doctor", "-o", "json"]).json()
    assert findings(full, "acl")[0]["level"] == "ok"


def test_config_refused_is_unknown_not_a_failure(config, server, run_cli):
    config.config_set("appendonly", "no")
    config.acl_setuser(
        "app", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-config", "-info"]
    )
    res = run_cli(["-u", user_url(server, "app"), "doctor", "-o", "json"])
    assert res.exit_code == 0, res.stderr
    report = res.json()
    for check in ("maxmemory-policy", "persistence"):
        [f] = findings(report, check)
        assert f["level"] == "unknown", f
        assert "refused" in f["message"]
    assert report["server"] in ("redis", "valkey")  # from HELLO
    assert report["topology"]["mode"] == "unknown"


def test_capabilities_are_asked_of_the_server(cli, server):
    caps = {c["name"]: c for c in cli("doctor", "-o", "json").json()["capabilities"]}
    lag = caps["consumer-group lag fields (entries-read, lag)"]
    assert lag["available"] is True
    assert lag["detected_by"] == "COMMAND DOCS XGROUP|CREATE ENTRIESREAD"
    assert caps["XAUTOCLAIM"]["available"] is True
    has_ackdel = server.kind == "redis8.2"
    assert caps["XACKDEL / XDELEX"]["available"] is has_ackdel
    assert caps["ACKED trimming (XADD/XTRIM KEEPREF, DELREF, ACKED)"]["available"] is has_ackdel
    assert caps["XNACK"]["available"] is False


def test_capabilities_unknown_when_command_is_refused(config, server, run_cli):
    config.acl_setuser(
        "app", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-command"]
    )
    res = run_cli(["-u", user_url(server, "app"), "doctor", "-o", "json"])
    assert res.exit_code == 0, res.stderr
    assert {c["available"] for c in res.json()["capabilities"]} == {None}


def test_the_table_shows_levels_and_what_to_do(cli, config):
    config.config_set("maxmemory", "512mb")
    config.config_set("maxmemory-policy", "allkeys-lru")
    res = cli("doctor", "-o", "table")
    assert res.exit_code == 5
    assert "capabilities" in res.stdout and "findings" in res.stdout
    assert "error" in res.stdout and "what to do" in res.stdout


def test_doctor_on_a_replica_warns_about_writes(one_server, r1, run_cli):
    from tests.servers import start_server

    replica = start_server("redis8.2", extra=["--replicaof", "127.0.0.1", str(one_server.port)])
    try:
        res = run_cli(["-u", replica.url, "doctor", "-o", "json"])
        report = res.json()
        assert report["topology"]["mode"] == "replica"
        [f] = findings(report, "replication")
        assert f["level"] == "warning"
        assert f"replica of 127.0.0.1:{one_server.port}" in f["message"]
        primary = run_cli(["-u", one_server.url, "doctor", "-o", "json"]).json()
        assert primary["topology"]["replicas"] == [f"127.0.0.1:{replica.port}"]
    finally:
        replica.stop()


def test_doctor_cannot_connect_is_exit_3(run_cli):
    from tests.servers import free_port

    res = run_cli(["-u", f"redis://127.0.0.1:{free_port()}/0", "doctor"])
    assert res.exit_code == 3
    assert res.stderr.startswith("error: cannot connect to")
