"""Every command through Redis Sentinel (redis+sentinel:// URLs and the profile form), on Redis 8.2
and Valkey 9.1: what the user sees, checked against what the primary holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

import streamctl
from tests.conftest import invoke, xrange_raw
from tests.ha.topology import MASTER, SentinelTopology


def test_publish_and_range_reach_the_primary(cli_ha, hr: redis.Redis, ha: SentinelTopology) -> None:
    out = cli_ha("publish", "orders", "status=new", "n=1")
    assert out.exit_code == 0, out.stderr
    new_id = out.stdout.strip()
    assert xrange_raw(hr, "orders") == [(new_id.encode(), [b"status", b"new", b"n", b"1"])]
    # the replica is not where it went: it only copies
    replica = ha.replica().client()
    assert replica.info("replication")["role"] == "slave"
    listed = cli_ha("range", "orders", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    assert [(e["id"], e["fields"]) for e in listed.json()] == [
        (new_id, {"status": "new", "n": "1"})
    ]


def test_groups_tail_pending_check_ls_info(cli_ha, hr: redis.Redis, ha: SentinelTopology) -> None:
    for n in range(3):
        hr.xadd("jobs", {"n": str(n)})
    assert cli_ha("group", "create", "jobs", "workers", "--from", "0").exit_code == 0
    assert [g["name"] for g in hr.xinfo_groups("jobs")] == [b"workers"]
    tail = cli_ha(
        "tail", "jobs", "--group", "workers", "--consumer", "c1", "--no-ack",
        "--count", "3", "--timeout", "5s", "-o", "ndjson",
    )  # fmt: skip
    assert tail.exit_code == 0, tail.stderr
    assert [e["fields"]["n"] for e in tail.ndjson()] == ["0", "1", "2"]
    pending = cli_ha("pending", "jobs", "workers", "-o", "json")
    assert pending.exit_code == 0, pending.stderr
    assert hr.xpending("jobs", "workers")["pending"] == 3
    assert "3" in pending.stdout
    check = cli_ha("check", "jobs", "--group", "workers", "--max-pending", "2")
    assert check.exit_code == 5, check.stdout + check.stderr
    assert cli_ha("check", "jobs", "--group", "workers", "--max-pending", "3").exit_code == 0
    ls = cli_ha("ls", "-o", "json")
    assert ls.exit_code == 0, ls.stderr
    assert [s["name"] for s in ls.json()] == ["jobs"]
    info = cli_ha("info", "jobs", "-o", "json")
    assert info.exit_code == 0, info.stderr
    assert info.json()["length"] == 3
    # where they are connected: the primary the Sentinels name, and the master's name
    connected = {
        "address": f"127.0.0.1:{ha.primary().port}",
        "role": "primary",
        "master_name": MASTER,
    }
    assert [s["connected"] for s in ls.json()] == [connected]
    assert info.json()["connected"] == connected
    doctor = cli_ha("doctor", "-o", "json")
    assert doctor.json()["connected"] == connected, doctor.stderr


def test_the_client_through_sentinel(ha: SentinelTopology, hr: redis.Redis) -> None:
    with streamctl.connect(ha.url) as sc:
        first = sc.publish("events", {"k": "v"})
        assert sc.publish_many("events", [{"i": str(i)} for i in range(50)]) == 50
        entries = list(sc.range("events"))
        assert entries[0].id == first
        assert len(entries) == 51
        assert sc.ping()
    assert hr.xlen("events") == 51


def test_any_one_sentinel_may_be_down(cli_ha, hr: redis.Redis, ha: SentinelTopology) -> None:
    ha.sentinels[0].pause()
    try:
        out = cli_ha("--timeout", "1", "publish", "s", "a=1")
    finally:
        ha.sentinels[0].resume()
    assert out.exit_code == 0, out.stderr
    assert hr.xlen("s") == 1


def test_no_sentinel_answering_is_exit_3_naming_them(run_cli) -> None:
    from tests.servers import free_port

    ports = [free_port(), free_port()]
    url = f"redis+sentinel://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/{MASTER}"
    out = run_cli(["-u", url, "ls"])
    assert out.exit_code == 3
    assert f"127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]}" in out.stderr
    assert "no Sentinel answered" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_an_unknown_master_name_is_exit_3(ha: SentinelTopology, run_cli) -> None:
    out = run_cli(["-u", ha.url.replace(MASTER, "nosuch"), "ls"])
    assert out.exit_code == 3
    assert "no healthy primary named 'nosuch'" in out.stderr


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis+sentinel://h:1/", "no MASTER name"),
        ("redis+sentinel:///m", "no Sentinel HOST:PORT"),
        ("redis+sentinel://h:1,h/m", "'h' is not HOST:PORT"),
        ("redis+sentinel://h:1/m/x", "the database 'x' is not a number"),
        ("redis+sentinel://h:1/m/0/more", "too many parts"),
        ("redis+sentinel://h:1/m?db=1", "takes no options"),
    ],
)
def test_bad_sentinel_urls_are_exit_2_naming_the_form(run_cli, url: str, why: str) -> None:
    out = run_cli(["-u", url, "ls"])
    assert out.exit_code == 2
    assert why in out.stderr
    assert (
        "accepted redis+sentinel://[user:pass@]HOST:PORT[,HOST:PORT...]/MASTER[/DB]" in out.stderr
    )


def test_passwords_are_never_printed(ha: SentinelTopology, run_cli, monkeypatch) -> None:
    # the data nodes have no password here: a wrong one is refused, and the message masks it
    url = ha.url.replace("redis+sentinel://", "redis+sentinel://user:hunter2secret@")
    monkeypatch.setenv("STREAMCTL_SENTINEL_PASSWORD", "sentinelsecret")
    out = run_cli(["-u", url, "ls"])
    assert out.exit_code == 3
    assert "hunter2secret" not in out.stderr + out.stdout
    assert "sentinelsecret" not in out.stderr + out.stdout
    bad = run_cli(["-u", "redis+sentinel://u:hunter2secret@h:1,x/m", "ls"])
    assert bad.exit_code == 2
    assert "hunter2secret" not in bad.stderr and "u:***@" in bad.stderr


def test_sentinel_password(ha: SentinelTopology, cli_ha, monkeypatch, tmp_path: Path) -> None:
    """Sentinels with `requirepass`: the password from STREAMCTL_SENTINEL_PASSWORD or the
    profile's sentinel_password_env; without it, no Sentinel answers (exit 3)."""
    for sentinel in ha.sentinels:
        c = sentinel.client()
        c.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-pass", "s3ntinel-pw")
        c.execute_command("ACL", "SETUSER", "default", "resetpass", ">s3ntinel-pw")
        c.close()
    try:
        denied = cli_ha("ls")
        assert denied.exit_code == 3, denied.stderr
        assert "STREAMCTL_SENTINEL_PASSWORD" in denied.stderr
        monkeypatch.setenv("STREAMCTL_SENTINEL_PASSWORD", "s3ntinel-pw")
        assert cli_ha("publish", "s", "a=1").exit_code == 0
        monkeypatch.delenv("STREAMCTL_SENTINEL_PASSWORD")
        hosts = [f"127.0.0.1:{s.port}" for s in ha.sentinels]
        config = tmp_path / "config.yaml"
        config.write_text(
            json.dumps(
                {
                    "profiles": {
                        "ha": {
                            "url": "redis://ignored/0",
                            "sentinel": {"master": MASTER, "nodes": hosts},
                            "sentinel_password_env": "HA_SENTINEL_PW",
                        }
                    }
                }
            )
        )
        monkeypatch.setenv("HA_SENTINEL_PW", "s3ntinel-pw")
        out = invoke(["--config", str(config), "-P", "ha", "range", "s", "-o", "json"])
        assert out.exit_code == 0, out.stderr
        assert [e["fields"] for e in out.json()] == [{"a": "1"}]
        monkeypatch.delenv("HA_SENTINEL_PW")
        unset = invoke(["--config", str(config), "-P", "ha", "ls"])
        assert unset.exit_code == 2
        assert "$HA_SENTINEL_PW" in unset.stderr
    finally:
        for sentinel in ha.sentinels:
            c = redis.Redis(port=sentinel.port, password="s3ntinel-pw")
            c.execute_command("ACL", "SETUSER", "default", "nopass")
            c.execute_command("SENTINEL", "CONFIG", "SET", "sentinel-pass", "")
            c.close()


def test_profile_form_errors(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps({"profiles": {"ha": {"url": "redis://x/0", "sentinel": {"master": "m"}}}})
    )
    out = run_cli(["--config", str(config), "-P", "ha", "ls"])
    assert out.exit_code == 2
    assert "sentinel: {master: NAME, nodes:" in out.stderr


def test_sentinel_with_cluster_flag_is_refused(ha: SentinelTopology, run_cli) -> None:
    out = run_cli(["-u", ha.url, "--cluster", "ls"])
    assert out.exit_code == 2
    assert "not a Redis Cluster" in out.stderr


def test_metrics_and_doctor_through_sentinel(cli_ha, hr: redis.Redis, ha: SentinelTopology) -> None:
    """metrics reads the current primary (the lag the primary has), doctor says where it is."""
    for n in range(5):
        hr.xadd("jobs", {"n": str(n)})
    hr.xgroup_create("jobs", "workers", id="0")
    hr.xreadgroup("workers", "c1", {"jobs": ">"}, count=2)
    out = cli_ha("metrics")
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "streamctl_up 1.0" in lines
    lag = [line for line in lines if line.startswith("streamctl_group_lag{")]
    assert lag == ['streamctl_group_lag{group="workers",stream="jobs"} 3.0']
    doctor = cli_ha("doctor", "-o", "json")
    assert doctor.exit_code in (0, 5), doctor.stderr
    topology = doctor.json()["topology"]
    assert topology["mode"] == "sentinel"
    assert MASTER in topology["detail"]
    connected = doctor.json()["connected"]
    assert connected["master_name"] == MASTER
    assert connected["role"] == "primary"
    assert connected["address"].endswith(f":{ha.primary().port}")
