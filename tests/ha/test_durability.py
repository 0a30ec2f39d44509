"""publish --wait-replicas / --wait-aof: WAIT (WAITAOF) after the event or after each batch of a
--file run, exit 5 naming how many replicas confirmed, against a real primary and replica."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import streamctl
from streamctl.core.models_transfer import ReplayResult
from streamctl.errors import BadInput, CheckFailed, PartialFailure
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


# ---- import and replay --into: the same waits, after each batch ----


def _envelopes(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "export.ndjson"
    path.write_text(
        "".join(json.dumps({"id": f"{i + 1}-0", "fields": {"n": str(i)}}) + "\n" for i in range(n))
    )
    return path


def test_import_confirmed_batch_by_batch(cli_ha, ha: SentinelTopology, tmp_path: Path) -> None:
    path = _envelopes(tmp_path, 2500)
    out = cli_ha("import", "s", str(path), "--keep-ids", "--wait-replicas", "1")
    assert out.exit_code == 0, out.stderr
    assert ha.replica().client().xlen("s") == 2500


def test_import_not_confirmed_names_count_and_continues(
    cli_ha, hr: redis.Redis, tmp_path: Path
) -> None:
    path = _envelopes(tmp_path, 2500)
    out = cli_ha(
        "import", "s", str(path), "--keep-ids", "--wait-replicas", "2", "--wait-timeout", "200ms"
    )
    assert out.exit_code == 5
    assert len(out.stderr.strip().splitlines()) == 1
    assert "1 of 2 replicas confirmed the write within 0.2s" in out.stderr
    assert hr.xlen("s") == 1000  # the first batch: imported, then the run stopped
    assert "1,000 entries were imported, the last one line 1000" in out.stderr
    assert "rerun the same command to continue" in out.stderr
    rerun = cli_ha("import", "s", str(path), "--keep-ids")
    assert rerun.exit_code == 0, rerun.stderr
    assert [f[b"n"] for _, f in hr.xrange("s")] == [str(i).encode() for i in range(2500)]


def test_replay_confirmed_batch_by_batch(cli_ha, ha: SentinelTopology, hr: redis.Redis) -> None:
    for i in range(2500):
        hr.xadd("src", {"n": str(i)})
    out = cli_ha("replay", "src", "--from", "-", "--into", "dst", "--wait-replicas", "1")
    assert out.exit_code == 0, out.stderr
    assert ha.replica().client().xlen("dst") == 2500


def test_replay_not_confirmed_names_count_and_where_to_continue(cli_ha, hr: redis.Redis) -> None:
    ids = [hr.xadd("src", {"n": str(i)}).decode() for i in range(2500)]
    out = cli_ha(
        "replay", "src", "--from", "-", "--into", "dst",
        "--wait-replicas", "2", "--wait-timeout", "200ms",
    )  # fmt: skip
    assert out.exit_code == 5
    assert "1 of 2 replicas confirmed the write within 0.2s" in out.stderr
    assert hr.xlen("dst") == 1000
    assert f"1,000 entries were copied; continue with --from '({ids[999]}'" in out.stderr
    rerun = cli_ha("replay", "src", "--from", f"({ids[999]}", "--into", "dst")
    assert rerun.exit_code == 0, rerun.stderr
    assert [f[b"n"] for _, f in hr.xrange("dst")] == [str(i).encode() for i in range(2500)]


def test_import_and_replay_wait_aof(cli_ha, aof_primary: redis.Redis, tmp_path: Path) -> None:
    out = cli_ha("import", "s", str(_envelopes(tmp_path, 10)), "--wait-aof")
    assert out.exit_code == 0, out.stderr
    out = cli_ha("replay", "s", "--from", "-", "--into", "t", "--wait-aof")
    assert out.exit_code == 0, out.stderr
    both = cli_ha(
        "replay", "s", "--from", "-", "--into", "u",
        "--wait-aof", "--wait-replicas", "1", "--wait-timeout", "200ms",
    )  # fmt: skip
    assert both.exit_code == 5  # the replica has no AOF: it never confirms one
    assert "0 of 1 replicas confirmed the write in their AOF within 0.2s" in both.stderr
    assert [aof_primary.xlen(k) for k in ("s", "t", "u")] == [10, 10, 10]


def test_the_client_import_and_replay_take_the_same_arguments(
    ha: SentinelTopology, hr: redis.Redis, tmp_path: Path
) -> None:
    path = _envelopes(tmp_path, 1500)
    with streamctl.connect(ha.url) as sc:
        assert sc.import_("s", str(path), wait_replicas=1, wait_timeout=5).imported == 1500
        copied = sc.replay("s", "-", into="t", wait_replicas=1)
        assert isinstance(copied, ReplayResult) and copied.copied == 1500
        with pytest.raises(PartialFailure, match="1 of 3 replicas") as short:
            sc.replay("s", "-", into="u", wait_replicas=3, wait_timeout=0.2)
        assert short.value.exit_code == 5 and short.value.done == 1000
        with pytest.raises(PartialFailure, match="1 of 3 replicas") as short:
            sc.import_("v", str(path), wait_replicas=3, wait_timeout=0.2)
        assert short.value.exit_code == 5 and short.value.done == 1000
        with pytest.raises(BadInput, match="bad wait_replicas -1"):
            sc.import_("w", str(path), wait_replicas=-1)
        with pytest.raises(BadInput, match="bad wait_timeout 0"):
            sc.replay("s", "-", into="w", wait_replicas=1, wait_timeout=0)
    assert [hr.xlen(k) for k in ("s", "t", "u", "v")] == [1500, 1500, 1000, 1000]
    assert hr.exists("w") == 0


@pytest.mark.parametrize("command", ["import", "replay"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wait-replicas", "-1"], "bad --wait-replicas -1: give a count of replicas, 0 or more"),
        (["--wait-timeout", "2s"], "--wait-timeout applies with --wait-replicas N or --wait-aof"),
        (["--wait-replicas", "1", "--wait-timeout", "soon"], "bad --wait-timeout 'soon'"),
        (["--wait-aof", "--wait-timeout", "0s"], "bad --wait-timeout '0s': give a duration"),
    ],
)
def test_bad_wait_options_on_import_and_replay(
    cli_ha, hr: redis.Redis, tmp_path: Path, command: str, args: list[str], message: str
) -> None:
    hr.xadd("src", {"a": "1"})
    if command == "import":
        out = cli_ha("import", "s", str(_envelopes(tmp_path, 3)), *args)
    else:
        out = cli_ha("replay", "src", "--from", "-", "--into", "s", *args)
    assert out.exit_code == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert hr.exists("s") == 0


def test_wait_options_do_not_apply_to_replay_group(cli_ha, hr: redis.Redis) -> None:
    hr.xadd("src", {"a": "1"})
    hr.xgroup_create("src", "g", id="0")
    out = cli_ha("replay", "src", "--from", "-", "--group", "g", "--wait-replicas", "1")
    assert out.exit_code == 2
    assert "--wait-replicas apply to --into, not to --group" in out.stderr


def test_import_and_replay_wait_aof_on_a_server_without_waitaof(run_cli, tmp_path: Path) -> None:
    """Redis 7.0 has no WAITAOF: refused before anything is written."""
    from tests.servers import server_binary, start_server

    if server_binary("redis7.0") is None:
        pytest.skip("redis7.0 server not available")
    srv = start_server("redis7.0")
    try:
        client = srv.client()
        client.xadd("src", {"a": "1"})
        out = run_cli(["-u", srv.url, "import", "s", str(_envelopes(tmp_path, 3)), "--wait-aof"])
        assert out.exit_code == 1
        assert "WAITAOF" in out.stderr and "redis 7.0" in out.stderr
        out = run_cli(["-u", srv.url, "replay", "src", "--from", "-", "--into", "s", "--wait-aof"])
        assert out.exit_code == 1
        assert "WAITAOF" in out.stderr and "redis 7.0" in out.stderr
        assert client.exists("s") == 0
    finally:
        srv.stop()
