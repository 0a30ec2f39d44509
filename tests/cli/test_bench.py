"""`streamctl bench`: json shape, table, exit codes, and that it leaves no stream behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from streamctl.core.bench import BENCH_PREFIX
from tests.servers import free_port


def bench_keys(r) -> list[bytes]:  # type: ignore[no-untyped-def]
    return list(r.scan_iter(match=BENCH_PREFIX + "*"))


def test_json(cli, r) -> None:  # type: ignore[no-untyped-def]
    res = cli(
        "bench", "--events", "2000", "--size", "32", "--producers", "2", "--consumers", "2",
        "--batch", "50", "-o", "json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    data = res.json()
    publish, consume, latency = data["publish"], data["consume"], data["latency_ms"]
    assert data == {
        "stream": data["stream"],
        "events": 2000,
        "size": 32,
        "producers": 2,
        "consumers": 2,
        "batch": 50,
        "publish": {
            "events": 2000,
            "seconds": publish["seconds"],
            "events_per_second": publish["events_per_second"],
            "mb_per_second": publish["mb_per_second"],
        },
        "consume": {
            "events": 2000,
            "seconds": consume["seconds"],
            "events_per_second": consume["events_per_second"],
            "mb_per_second": consume["mb_per_second"],
        },
        "latency_ms": {
            "p50": latency["p50"],
            "p90": latency["p90"],
            "p99": latency["p99"],
            "max": latency["max"],
        },
    }
    assert data["stream"].startswith(BENCH_PREFIX)
    assert publish["seconds"] > 0 and publish["events_per_second"] > 100
    assert publish["events_per_second"] == pytest.approx(2000 / publish["seconds"], rel=0.01)
    assert publish["mb_per_second"] == pytest.approx(
        publish["events_per_second"] * 32 / 1e6, abs=0.01
    )
    assert 0 <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert res.stderr.startswith("bench: 2,000 events of 32 bytes, 2 producers, 2 consumers on ")
    assert bench_keys(r) == []


def test_publish_only_table(cli, r) -> None:  # type: ignore[no-untyped-def]
    res = cli("bench", "--events", "1000", "--consumers", "0", "-o", "table")
    assert res.exit_code == 0, res.stderr
    rows = [line.split() for line in res.lines if line.strip()]
    assert rows[0] == [
        "1,000", "events", "of", "128", "bytes,", "1", "producer,", "0", "consumers,",
        "batches", "of", "100",
    ]  # fmt: skip
    assert rows[1] == ["events", "seconds", "events/s", "MB/s"]
    assert rows[3][:2] == ["publish", "1,000"]
    assert len(rows) == 4  # no consume row, no latency table
    assert "latency" not in res.stdout
    res = cli("bench", "--events", "1000", "--consumers", "0", "-o", "json")
    assert (res.json()["consume"], res.json()["latency_ms"]) == (None, None)
    assert bench_keys(r) == []


def test_table_with_latency(cli1, r1) -> None:  # type: ignore[no-untyped-def]
    res = cli1("bench", "--events", "1000", "-o", "table")
    assert res.exit_code == 0
    rows = [line.split() for line in res.lines if line.strip()]
    assert [row[0] for row in rows[3:5]] == ["publish", "consume"]
    assert rows[5] == ["latency", "(ms)", "p50", "p90", "p99", "max"]
    assert rows[7][:3] == ["publish", "to", "receipt"] and len(rows[7]) == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--events", "0"], "error: bad --events 0: give a number of 1 or more\n"),
        (["--size", "0"], "error: bad --size 0: give a number of 1 or more\n"),
        (["--producers", "0"], "error: bad --producers 0: give a number of 1 or more\n"),
        (["--consumers", "-1"], "error: bad --consumers -1: give a number of 0 or more\n"),
        (
            ["--events", "2", "--producers", "3"],
            "error: bad --producers 3: more producers than --events 2\n",
        ),
    ],
)
def test_bad_options_exit_2(cli1, r1, args, message) -> None:  # type: ignore[no-untyped-def]
    res = cli1("bench", *args)
    assert (res.exit_code, res.stdout, res.stderr) == (2, "", message)
    assert bench_keys(r1) == []


def test_no_server_exit_3(run_cli) -> None:  # type: ignore[no-untyped-def]
    url = f"redis://127.0.0.1:{free_port()}/0"
    res = run_cli(["-u", url, "bench", "--events", "10"])
    assert res.exit_code == 3
    assert res.stderr.startswith(f"error: cannot connect to {url}")
    assert res.stderr.count("\n") == 1


def test_ctrl_c_deletes_the_stream_exit_130(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", one_server.url, "bench", "--events", "50000000",
         "--size", "8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not bench_keys(r1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bench_keys(r1), "the bench did not start"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130
    assert out == b""
    assert err.decode().splitlines()[-1].startswith("error: interrupted after ")
    assert bench_keys(r1) == []
