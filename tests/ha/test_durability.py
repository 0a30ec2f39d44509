"""publish --wait-replicas / --wait-aof: WAIT (WAITAOF) after the event or after each batch of a
--file run, exit 5 naming how many replicas confirmed, against a real primary and replica."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import streamctl
from streamctl.errors import CheckFailed
from tests.ha.topology import SentinelTopology


def _events(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps({"n": str(i)}) + "\n" for i in range(n)))
    return path


def test_one_event_confirmed_by_the_replica(cli_ha, ha: SentinelTopology) -> None:
    out = cli_ha("publish", "s", "a=1", "--wait-replicas", "1", "--wait-timeout", "5s")
    assert out.exit_code == 0, out.stderr
    # confirmed means the replica holds it now, without waiting for anything more
    replica = ha.replica().client()
    assert [i.decode() for i, _ in replica.xrange("s")] == [out.stdout.strip()]


def test_one_event_not_confirmed_is_exit_5_and_stays(cli_ha, hr: redis.Redis) -> None:
    out = cli_ha("publish", "s", "a=1", "--wait-replicas", "2", "--wait-timeout", "300ms")
    assert out.exit_code == 5
    assert "1 of 2 replicas confirmed the write within 0.3s" in out.stderr
    assert hr.xlen("s") == 1  # published all the same
    assert f"event {hr.xrange('s')[0][0].decode()} was published" in out.stderr


def test_file_confirmed_batch_by_batch(cli_ha, ha: SentinelTopology, tmp_path: Path) -> None:
    out = cli_ha("publish", "s", "--file", str(_events(tmp_path, 2500)), "--wait-replicas", "1")
    assert out.exit_code == 0, out.stderr
    assert len(out.lines) == 2500
    assert ha.replica().client().xlen("s") == 2500


def test_file_not_confirmed_names_count_and_skip(cli_ha, hr: redis.Redis, tmp_path: Path) -> None:
    path = _events(tmp_path, 2500)
    out = cli_ha(
        "publish", "s", "--file", str(path), "--wait-replicas", "2", "--wait-timeout", "200ms"
    )
    assert out.exit_code == 5
    held = hr.xlen("s")
    assert 1000 <= held <= 2500
    assert "1 of 2 replicas confirmed the write within 0.2s" in out.stderr
    assert f"{held} events were published (rerun with --skip {held} " in out.stderr
    assert len(out.lines) == held  # every published id was printed
    rerun = cli_ha("publish", "s", "--file", str(path), "--skip", str(held))
    assert rerun.exit_code == 0, rerun.stderr
    assert [f[b"n"] for _, f in hr.xrange("s")] == [str(i).encode() for i in range(2500)]


@pytest.fixture
def aof_primary(ha: SentinelTopology) -> Iterator[redis.Redis]:
    client = ha.primary().client()
    client.config_set("appendonly", "yes")
    client.config_set("appendfsync", "always")
    for _ in range(200):  # the AOF is rewritten in the background when switched on
        if client.info("persistence")["aof_rewrite_in_progress"] == 0:
            break
        import time

        time.sleep(0.05)
    yield client
    client.config_set("appendonly", "no")
    client.close()


def test_wait_aof(cli_ha, aof_primary: redis.Redis) -> None:
    out = cli_ha("publish", "s", "a=1", "--wait-aof")
    assert out.exit_code == 0, out.stderr
    both = cli_ha(
        "publish", "s", "a=2", "--wait-aof", "--wait-replicas", "1", "--wait-timeout", "200ms"
    )
    assert both.exit_code == 5  # the replica has no AOF: it never confirms one
    assert "0 of 1 replicas confirmed the write in their AOF within 0.2s" in both.stderr
    assert aof_primary.xlen("s") == 2


def test_wait_aof_without_an_aof_is_a_clear_error(cli_ha, hr: redis.Redis) -> None:
    out = cli_ha("publish", "s", "a=1", "--wait-aof")
    assert out.exit_code == 1
    assert "no AOF (appendonly no)" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_the_client_takes_the_same_arguments(ha: SentinelTopology, hr: redis.Redis) -> None:
    with streamctl.connect(ha.url) as sc:
        sc.publish("s", {"a": "1"}, wait_replicas=1, wait_timeout=5)
        assert sc.publish_many("s", [{"i": str(i)} for i in range(10)], wait_replicas=1) == 10
        with pytest.raises(CheckFailed, match="1 of 3 replicas"):
            sc.publish("s", {"a": "2"}, wait_replicas=3, wait_timeout=0.2)
    assert hr.xlen("s") == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wait-replicas", "-1"], "bad --wait-replicas -1"),
        (["--wait-timeout", "2s"], "--wait-timeout applies with --wait-replicas N or --wait-aof"),
        (["--wait-replicas", "1", "--wait-timeout", "soon"], "bad --wait-timeout 'soon'"),
    ],
)
def test_bad_wait_options(cli_ha, hr: redis.Redis, args: list[str], message: str) -> None:
    out = cli_ha("publish", "s", "a=1", *args)
    assert out.exit_code == 2
    assert message in out.stderr
    assert hr.exists("s") == 0


def test_wait_aof_on_a_server_without_waitaof(run_cli) -> None:
    """Redis 7.0 has no WAITAOF: refused before anything is written."""
    from tests.servers import server_binary, start_server

    if server_binary("redis7.0") is None:
        pytest.skip("redis7.0 server not available")
    srv = start_server("redis7.0")
    try:
        out = run_cli(["-u", srv.url, "publish", "s", "a=1", "--wait-aof"])
        assert out.exit_code == 1
        assert "WAITAOF" in out.stderr and "redis 7.0" in out.stderr
        assert srv.client().exists("s") == 0
    finally:
        srv.stop()
