"""`streamctl top`: --once json exactly, rates with a producer running, the dashboard rendered from
recorded snapshots, the live dashboard in a real terminal (pty), and the exit codes."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

from rich.console import Console

from streamctl.core.health import GroupSample, RateTracker, Snapshot, StreamSample
from streamctl.render.health import sparkline, top_data, top_table
from tests.servers import free_port

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def seed(r) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, 6):
        r.xadd("orders", {"n": str(i)}, id=f"{i}000-0")
    r.xgroup_create("orders", "billing", id="0")
    r.xreadgroup("billing", "c1", {"orders": ">"}, count=2)
    r.xadd("events", {"a": "1"}, id="7000-0")


def test_once_json_exact(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli("top", "--once", "--interval", "0.1", "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert TIME_RE.match(data["time"])
    assert 100 <= data["interval_ms"] < 10_000
    group = data["streams"][1]["groups"][0]
    assert isinstance(group["oldest_pending_age_ms"], int)
    assert group["oldest_pending_age_ms"] > 1_000_000  # the entry's id time is in 1970
    assert isinstance(group["oldest_pending_idle_ms"], int)
    assert 0 <= group["oldest_pending_idle_ms"] < 60_000
    assert data == {
        "time": data["time"],
        "interval_ms": data["interval_ms"],
        "streams": [
            {
                "stream": "events",
                "length": 1,
                "entries_added": 1,
                "in_rate": 0.0,
                "groups": [],
            },
            {
                "stream": "orders",
                "length": 5,
                "entries_added": 5,
                "in_rate": 0.0,
                "groups": [
                    {
                        "group": "billing",
                        "consumers": 1,
                        "lag": 3,
                        "lag_computed": False,
                        "pending": 2,
                        "entries_read": 2,
                        "out_rate": 0.0,
                        "oldest_pending_id": "1000-0",
                        "oldest_pending_time": "1970-01-01T00:00:01.000Z",
                        "oldest_pending_age_ms": group["oldest_pending_age_ms"],
                        "oldest_pending_idle_ms": group["oldest_pending_idle_ms"],
                    }
                ],
            },
        ],
    }


def test_once_pattern_and_empty(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli("top", "ev*", "--once", "--interval", "0.05", "-o", "json")
    assert [s["stream"] for s in res.json()["streams"]] == ["events"]
    res = cli("top", "nothing*", "--once", "--interval", "0.05", "-o", "json")
    assert res.exit_code == 0 and res.json()["streams"] == []


def test_once_rates_with_a_producer_and_a_consumer_running(cli, r, server) -> None:  # type: ignore[no-untyped-def]
    r.xgroup_create("orders", "billing", id="$", mkstream=True)
    stop = threading.Event()
    counts = {"published": 0}

    def produce_and_consume() -> None:
        client = server.client()
        while not stop.is_set():
            for _ in range(10):
                client.xadd("orders", {"n": "1"})
            counts["published"] += 10
            client.xreadgroup("billing", "worker", {"orders": ">"}, count=5)  # half of them
            time.sleep(0.02)

    worker = threading.Thread(target=produce_and_consume, daemon=True)
    worker.start()
    try:
        while counts["published"] < 20:  # running before the first sample
            time.sleep(0.01)
        res = cli("top", "--once", "--interval", "0.5", "-o", "json")
    finally:
        stop.set()
        worker.join(10)
    assert res.exit_code == 0, res.stderr
    (orders,) = res.json()["streams"]
    (billing,) = orders["groups"]
    # ~10 events every ~20ms is at most 500/s; a loaded machine is slower, never idle
    assert 20 < orders["in_rate"] <= 600
    assert 10 < billing["out_rate"] <= 300
    assert billing["out_rate"] < orders["in_rate"]
    assert billing["lag"] > 0 and billing["pending"] > 0


def test_once_table(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli("top", "--once", "--interval", "0.05", "-o", "table")
    assert res.exit_code == 0
    rows = [line.split() for line in res.lines if line.strip()]
    assert rows[0] == [
        "stream",
        "/",
        "group",
        "length",
        "in/s",
        "lag",
        "pending",
        "out/s",
        "oldest",
        "pending",
        "trend",
    ]
    assert rows[2] == ["events", "1", "0.0", "▁"]
    assert rows[3] == ["orders", "5", "0.0", "▁"]
    assert rows[4][:6] == ["└", "billing", "3", "2", "0.0", rows[4][5]]
    assert rows[4][-1] == "▁"
    assert rows[-1][0:2] == ["server", "time"] and rows[-1][3:5] == ["every", rows[-1][4]]


def test_refuses_without_a_terminal(cli, r) -> None:  # type: ignore[no-untyped-def]
    res = cli("top")
    assert (res.exit_code, res.stdout) == (2, "")
    assert res.stderr == (
        "error: top is a live dashboard and needs a terminal: use --once for one snapshot "
        "(e.g. top --once -o json)\n"
    )


def test_bad_interval_and_no_server(cli, run_cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("top", "--once", "--interval", "0")
    assert (res.exit_code, res.stderr) == (
        2,
        "error: bad --interval 0: give a number of seconds above 0\n",
    )
    url = f"redis://127.0.0.1:{free_port()}/0"
    res = run_cli(["-u", url, "top", "--once", "--interval", "0.01"])
    assert res.exit_code == 3 and res.stderr.startswith(f"error: cannot connect to {url}")


# ---------------------------------------------------------------- rendering


def recorded() -> list[Snapshot]:
    """Four samples one second apart: orders gets 10, 30, 0 new events; billing reads 5, 20, 15."""

    def snap(t: int, added: int, read: int, pending: int) -> Snapshot:
        billing = GroupSample(
            "billing", 2, pending, added - read, False, read, f"{read}-0", "1700000000000-0", 4200
        )
        audit = GroupSample("audit", 0, 0, added - 93, True, None, "0-0", None, None)
        return Snapshot(
            1_700_000_060_000 + t,
            (
                StreamSample("events", 3, 3, "3-0", ()),
                StreamSample("orders", added, added, f"{added}-0", (audit, billing)),
            ),
        )

    return [
        snap(0, 100, 90, 4),
        snap(1000, 110, 95, 4),
        snap(2000, 140, 115, 6),
        snap(3000, 140, 130, 0),
    ]


def render(renderable: object, width: int = 110) -> str:
    with open(os.devnull, "w") as sink:
        console = Console(width=width, record=True, no_color=True, file=sink)
        console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def test_dashboard_rendered_from_recorded_snapshots() -> None:
    tracker = RateTracker()
    reports = [tracker.update(s) for s in recorded()]
    text = render(top_table(reports[-1], title="streamctl top  redis://localhost:6379/0"))
    assert text == "\n".join(
        [
            "streamctl top  redis://localhost:6379/0",
            "",
            "  stream / group   length   in/s   lag   pending   out/s   oldest pending   trend",
            " ─────────────────────────────────────────────────────────────────────────────────",
            "  events                3    0.0                                            ▁▁▁",
            "  orders              140    0.0                                            ▃█▁",
            "   ├ audit                         47*         0     0.0                -   ▁▁▁",
            "   └ billing                        10         0    15.0             1m3s   ▃█▆",
            "",
            "server time 2023-11-14T22:14:23.000Z, every 1s; rates per second, trend over 1m",
        ]
    )
    data = top_data(reports[-1])
    assert data["streams"][1]["in_rate"] == 0.0
    assert data["streams"][1]["groups"][1]["out_rate"] == 15.0
    assert data["streams"][1]["groups"][0] == {
        "group": "audit",
        "consumers": 0,
        "lag": 47,
        "lag_computed": True,
        "pending": 0,
        "entries_read": None,
        "out_rate": 0.0,
        "oldest_pending_id": None,
        "oldest_pending_time": None,
        "oldest_pending_age_ms": None,
        "oldest_pending_idle_ms": None,
    }


def test_dashboard_first_sample_and_no_streams() -> None:
    first = RateTracker().update(recorded()[0])
    text = render(top_table(first))
    assert "  orders              100      -" in text
    assert "server time 2023-11-14T22:14:20.000Z; rates per second, trend over 1m" in text
    empty = RateTracker().update(Snapshot(1_700_000_000_000, ()))
    assert "no streams match" in render(top_table(empty, title="t"))


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([0, 1, 2, 4, 8]) == "▁▂▃▅█"
    assert sparkline([1.0] * 5, width=3) == "███"
    assert sparkline([1.0, 2.0], width=0) == ""


# ---------------------------------------------------------------- the live dashboard


def test_live_dashboard_in_a_terminal(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    seed(r1)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamctl", "-u", one_server.url, "top", "--interval", "0.1"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        # two refreshes at least: the second has rates
        while time.monotonic() < deadline and seen.count(b"billing") < 2:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
        try:
            while True:
                ready, _, _ = select.select([master], [], [], 0.2)
                if not ready:
                    break
                chunk = os.read(master, 65536)
                if not chunk:
                    break
                seen += chunk
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert code == 130
    assert "streamctl top" in text and "orders" in text and "└ billing" in text
    # a rate: the dashboard refreshed with a second sample
    assert re.search(r"orders +5 +0\.0 ", text), text
    assert "Traceback" not in text and "error:" not in text
