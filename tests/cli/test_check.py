"""`streamctl check`: json asserted exactly, the table, and every exit code, on each server."""

from __future__ import annotations

import time

from tests.servers import free_port


def seed(r) -> None:  # type: ignore[no-untyped-def]
    """orders: 5 entries at 1s..5s; billing has read 2 (pending), audit nothing; events: 1."""
    for i in range(1, 6):
        r.xadd("orders", {"n": str(i)}, id=f"{i}000-0")
    r.xgroup_create("orders", "billing", id="0")
    r.xreadgroup("billing", "c1", {"orders": ">"}, count=2)
    r.xgroup_create("orders", "audit", id="0")
    r.xadd("events", {"a": "1"}, id="7000-0")


def row(stream, group, check, value, max_, status):  # type: ignore[no-untyped-def]
    return {
        "stream": stream,
        "group": group,
        "check": check,
        "value": value,
        "max": max_,
        "status": status,
    }


def test_breached_thresholds_json_exit_5(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli(
        "check", "orders", "--max-length", "5", "--max-lag", "4", "--max-pending", "1",
        "--max-behind", "3s", "-o", "json",
    )  # fmt: skip
    assert res.exit_code == 5, res.stderr
    assert res.json() == {
        "status": "breached",
        "breached": 3,
        "checks": [
            row("orders", None, "length", 5, 5, "ok"),
            row("orders", "audit", "lag", 5, 4, "breached"),
            row("orders", "audit", "pending", 0, 1, "ok"),
            row("orders", "audit", "behind_ms", 4000, 3000, "breached"),
            row("orders", "billing", "lag", 3, 4, "ok"),
            row("orders", "billing", "pending", 2, 1, "breached"),
            row("orders", "billing", "behind_ms", 3000, 3000, "ok"),
        ],
    }
    assert res.stderr == (
        "error: 3 checks breached: orders/audit lag 5 > 4; orders/audit behind 4s > 3s; "
        "orders/billing pending 2 > 1\n"
    )


def test_passing_checks_exit_0(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli("check", "--group", "billing", "--max-lag", "3", "--max-idle", "1h", "-o", "json")
    assert res.exit_code == 0, res.stderr
    data = res.json()
    idle = data["checks"][1]["value"]
    assert isinstance(idle, int) and 0 <= idle < 60_000
    assert data == {
        "status": "ok",
        "breached": 0,
        "checks": [
            row("orders", "billing", "lag", 3, 3, "ok"),
            row("orders", "billing", "idle_ms", idle, 3_600_000, "ok"),
        ],
    }
    assert res.stderr == ""


def test_idle_breach(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    time.sleep(0.03)
    res = cli("check", "orders", "-g", "billing", "--max-idle", "20ms", "-o", "json")
    assert res.exit_code == 5
    (result,) = res.json()["checks"]
    assert result["check"] == "idle_ms" and result["status"] == "breached"
    assert result["value"] >= 30 and result["max"] == 20
    assert res.stderr.startswith("error: 1 check breached: orders/billing idle ")


def test_no_thresholds_reports_every_value(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli("check", "-o", "json")
    assert res.exit_code == 0
    data = res.json()
    billing_idle = data["checks"][-2]["value"]
    assert isinstance(billing_idle, int)
    assert data == {
        "status": "ok",
        "breached": 0,
        "checks": [
            row("events", None, "length", 1, None, "ok"),
            row("orders", None, "length", 5, None, "ok"),
            row("orders", "audit", "lag", 5, None, "ok"),
            row("orders", "audit", "pending", 0, None, "ok"),
            row("orders", "audit", "idle_ms", None, None, "ok"),
            row("orders", "audit", "behind_ms", 4000, None, "ok"),
            row("orders", "billing", "lag", 3, None, "ok"),
            row("orders", "billing", "pending", 2, None, "ok"),
            row("orders", "billing", "idle_ms", billing_idle, None, "ok"),
            row("orders", "billing", "behind_ms", 3000, None, "ok"),
        ],
    }


def test_table(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli("check", "orders", "--max-lag", "4", "--max-behind", "1h", "-o", "table")
    assert res.exit_code == 5
    lines = [line.split() for line in res.lines if line.strip()]
    assert lines[0] == ["stream", "group", "check", "value", "max", "status"]
    body = [cells for cells in lines if cells[0] == "orders"]
    assert body == [
        ["orders", "audit", "lag", "5", "4", "BREACHED"],
        ["orders", "audit", "behind", "4s", "1h", "ok"],
        ["orders", "billing", "lag", "3", "4", "ok"],
        ["orders", "billing", "behind", "3s", "1h", "ok"],
    ]
    assert lines[-1] == ["1", "of", "4", "checks", "breached"]
    ok = cli("check", "events", "--max-length", "1", "-o", "table")
    assert ok.exit_code == 0
    assert "all 1 checks ok" in ok.stdout


def test_yaml(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli("check", "events", "--max-length", "0", "-o", "yaml")
    assert res.exit_code == 5
    assert res.stdout == (
        "status: breached\nbreached: 1\nchecks:\n- stream: events\n  group: null\n"
        "  check: length\n  value: 1\n  max: 0\n  status: breached\n"
    )


def test_missing_stream_or_group_exit_4(cli, r) -> None:  # type: ignore[no-untyped-def]
    seed(r)
    res = cli("check", "orders", "nope", "--max-lag", "1")
    assert (res.exit_code, res.stdout, res.stderr) == (
        4,
        "",
        "error: stream 'nope' does not exist\n",
    )
    res = cli("check", "orders", "--group", "nope")
    assert (res.exit_code, res.stderr) == (
        4,
        "error: group 'nope' does not exist on stream 'orders'\n",
    )
    res = cli("check", "--group", "nope")
    assert (res.exit_code, res.stderr) == (4, "error: group 'nope' does not exist on any stream\n")


def test_wrong_type_exit_1(cli, r) -> None:  # type: ignore[no-untyped-def]
    r.set("plain", "x")
    res = cli("check", "plain")
    assert res.exit_code == 1
    assert res.stderr == "error: WRONGTYPE: key 'plain' holds a string, not a stream\n"


def test_bad_thresholds_exit_2(cli, r) -> None:  # type: ignore[no-untyped-def]
    res = cli("check", "--max-idle", "5x")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: bad --max-idle '5x': accepted: 500ms, 90s")
    res = cli("check", "--max-lag", "-1")
    assert (res.exit_code, res.stderr) == (
        2,
        "error: bad --max-lag -1: give a count of 0 or more\n",
    )
    res = cli("check", "--max-lag", "many")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1


def test_no_server_exit_3(run_cli) -> None:  # type: ignore[no-untyped-def]
    url = f"redis://127.0.0.1:{free_port()}/0"
    res = run_cli(["-u", url, "check", "--max-lag", "0"])
    assert res.exit_code == 3
    assert res.stderr.startswith(f"error: cannot connect to {url}")
    assert res.stderr.count("\n") == 1


def test_empty_server_passes(cli, r) -> None:  # type: ignore[no-untyped-def]
    res = cli("check", "--max-lag", "0", "-o", "json")
    assert (res.exit_code, res.json()) == (0, {"status": "ok", "breached": 0, "checks": []})
