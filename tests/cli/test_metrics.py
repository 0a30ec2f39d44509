"""metrics: the exposition (checked by promtool), --listen scraped by a real Prometheus, up 0 when
the server does not answer, and every primary of a cluster."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port

STREAMCTL = str(Path(sys.executable).with_name("streamctl"))
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
REQUIRE_ALL = os.environ.get("STREAMCTL_TEST_ALL_SERVERS", "") == "1"


def need(tool: str | None, name: str) -> str:
    if tool is None:
        if REQUIRE_ALL:
            pytest.fail(f"{name} not installed (Debian's prometheus package)")
        pytest.skip(f"{name} not installed (Debian's prometheus package)")
    return tool


def promtool_ok(text: str) -> None:
    proc = subprocess.run(
        [need(PROMTOOL, "promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout + proc.stderr == ""  # no lint complaint either


SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (\S+)$")


def samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, line
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def families(text: str) -> dict[str, str]:
    """{family: type} from the TYPE lines; every family also has a HELP line."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
    assert helps == set(types)
    return types


def make_orders(r) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        r.xadd("orders", {"n": i})
    r.xgroup_create("orders", "billing", "0")
    r.xreadgroup("billing", "w1", {"orders": ">"}, count=2)  # 2 pending, lag 3
    r.xgroup_create("orders", "audit", "$")  # caught up
    r.xadd("audit-log", {"a": 1})
    r.set("not-a-stream", "x")


def test_exposition_with_groups(cli, r):
    make_orders(r)
    res = cli("metrics")
    assert res.exit_code == 0, res.stderr
    promtool_ok(res.stdout)
    assert families(res.stdout) == {
        "streamctl_up": "gauge",
        "streamctl_stream_length": "gauge",
        "streamctl_stream_entries_added_total": "counter",
        "streamctl_stream_oldest_entry_age_seconds": "gauge",
        "streamctl_stream_newest_entry_age_seconds": "gauge",
        "streamctl_group_lag": "gauge",
        "streamctl_group_pending": "gauge",
        "streamctl_group_consumers": "gauge",
        "streamctl_group_entries_read_total": "counter",
        "streamctl_group_oldest_pending_idle_seconds": "gauge",
        "streamctl_group_behind_seconds": "gauge",
        "streamctl_scrape_duration_seconds": "gauge",
        "streamctl_streams": "gauge",
        "streamctl_streams_truncated": "gauge",
    }
    s = samples(res.stdout)
    assert s["streamctl_up"] == 1
    assert s['streamctl_stream_length{stream="orders"}'] == 5
    assert s['streamctl_stream_length{stream="audit-log"}'] == 1
    assert s['streamctl_stream_entries_added_total{stream="orders"}'] == 5
    assert s['streamctl_group_lag{group="billing",stream="orders"}'] == 3
    assert s['streamctl_group_lag{group="audit",stream="orders"}'] == 0
    assert s['streamctl_group_pending{group="billing",stream="orders"}'] == 2
    assert s['streamctl_group_pending{group="audit",stream="orders"}'] == 0
    assert s['streamctl_group_consumers{group="billing",stream="orders"}'] == 1
    assert s['streamctl_group_oldest_pending_idle_seconds{group="audit",stream="orders"}'] == 0
    assert s["streamctl_streams"] == 2
    assert s["streamctl_streams_truncated"] == 0
    assert not any("not-a-stream" in k for k in s)


def test_exposition_without_groups_with_a_pattern(cli, r):
    make_orders(r)
    res = cli("metrics", "audit*")
    assert res.exit_code == 0, res.stderr
    promtool_ok(res.stdout)
    s = samples(res.stdout)
    assert s['streamctl_stream_length{stream="audit-log"}'] == 1
    assert not [k for k in s if k.startswith("streamctl_group_")]
    assert s["streamctl_streams"] == 1


def test_group_lag_computed_where_the_server_reports_none(cli, r):
    for i in range(6):
        r.xadd("s", {"n": i}, id=f"{i + 1}-0")
    r.xgroup_create("s", "g", "0")
    r.xreadgroup("g", "c", {"s": ">"}, count=2)
    r.xdel("s", "4-0")  # a deletion after last-delivered: the server's lag is nil
    raw = r.execute_command("XINFO", "GROUPS", "s")
    assert dict(zip(raw[0][::2], raw[0][1::2], strict=True))[b"lag"] is None
    s = samples(cli("metrics").stdout)
    assert s['streamctl_group_lag{group="g",stream="s"}'] == 3  # 3-0, 5-0, 6-0


def test_consumers_and_group_filter(cli, r):
    make_orders(r)
    r.xreadgroup("billing", "w2", {"orders": ">"}, count=1)
    res = cli("metrics", "--consumers", "--group", "billing")
    assert res.exit_code == 0, res.stderr
    promtool_ok(res.stdout)
    s = samples(res.stdout)
    assert s['streamctl_consumer_pending{consumer="w1",group="billing",stream="orders"}'] == 2
    assert s['streamctl_consumer_pending{consumer="w2",group="billing",stream="orders"}'] == 1
    assert 'streamctl_consumer_idle_seconds{consumer="w2",group="billing",stream="orders"}' in s
    assert not [k for k in s if 'group="audit"' in k]
    assert s["streamctl_streams"] == 1  # audit-log has no group billing


def test_max_streams_truncates_by_name(cli, r):
    for name in ("c", "a", "d", "b"):
        r.xadd(name, {"x": 1})
    res = cli("metrics", "--max-streams", "2")
    assert res.exit_code == 0, res.stderr
    promtool_ok(res.stdout)
    s = samples(res.stdout)
    assert s["streamctl_streams_truncated"] == 1
    assert s["streamctl_streams"] == 2
    assert sorted(k for k in s if k.startswith("streamctl_stream_length")) == [
        'streamctl_stream_length{stream="a"}',
        'streamctl_stream_length{stream="b"}',
    ]
    bad = cli("metrics", "--max-streams", "0")
    assert bad.exit_code == 2
    assert bad.stderr == "error: bad --max-streams 0: give a number of streams of 1 or more\n"


def test_labels_are_escaped(cli, r):
    r.xadd('we"ird\\name\n', {"x": 1})
    res = cli("metrics")
    promtool_ok(res.stdout)
    assert 'streamctl_stream_length{stream="we\\"ird\\\\name\\n"} 1.0' in res.stdout


def test_up_0_and_nothing_else_when_the_server_does_not_answer(run_cli):
    res = run_cli(["-u", f"redis://127.0.0.1:{free_port()}/0", "metrics"])
    assert res.exit_code == 3
    promtool_ok(res.stdout)
    assert samples(res.stdout) == {"streamctl_up": 0}
    assert res.stderr.startswith("error: cannot connect to")


def test_a_paused_server_is_up_0_within_the_timeout(one_server, r1):
    r1.xadd("s", {"a": 1})
    one_server.pause()
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [STREAMCTL, "-u", one_server.url, "--timeout", "1", "metrics"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        elapsed = time.monotonic() - started
    finally:
        one_server.resume()
    assert proc.returncode == 3
    assert samples(proc.stdout) == {"streamctl_up": 0}
    assert "timed out" in proc.stderr
    assert elapsed < 5


def test_bad_listen_address(cli1):
    res = cli1("metrics", "--listen", "9187")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: bad --listen '9187': give [HOST]:PORT")


# ---- --listen ----


def start_listen(url: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [STREAMCTL, "-u", url, "--timeout", "1", "metrics", "--listen", f"127.0.0.1:{port}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line == f"serving http://127.0.0.1:{port}/metrics (SIGTERM or Ctrl-C stops)\n", line
    return proc, port


def fetch(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return str(resp.read().decode())


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    return proc.returncode, err


def test_listen_reads_the_server_on_each_scrape_and_stops_on_sigterm(one_server, r1):
    r1.xadd("s", {"a": 1})
    proc, port = start_listen(one_server.url)
    try:
        first = fetch(port)
        promtool_ok(first)
        assert samples(first)['streamctl_stream_length{stream="s"}'] == 1
        r1.xadd("s", {"a": 2})
        assert samples(fetch(port))['streamctl_stream_length{stream="s"}'] == 2
        one_server.pause()
        try:
            down = fetch(port)
        finally:
            one_server.resume()
        assert samples(down) == {"streamctl_up": 0}
        assert samples(fetch(port))["streamctl_up"] == 1  # back after the outage
    finally:
        code, err = stop(proc)
    assert code == 0
    assert "scrape: streamctl_up 0: the server at" in err
    assert "scrape: the server answers again" in err
    assert err.endswith("stopped\n")


def test_listen_stops_on_ctrl_c(one_server, r1):
    proc, port = start_listen(one_server.url)
    try:
        assert samples(fetch(port))["streamctl_up"] == 1
    finally:
        code, err = stop(proc, signal.SIGINT)
    assert code == 130
    assert err == "stopped\n"


PROM_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: streamctl
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


def query(prom_port: int, expr: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success"
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def test_a_real_prometheus_scrapes_the_group_lag(server, r, tmp_path):
    prometheus = need(PROMETHEUS, "prometheus")
    make_orders(r)
    lag = r.xinfo_groups("orders")
    server_lag = {g["name"].decode(): g["lag"] for g in lag}["billing"]
    assert server_lag == 3
    proc, port = start_listen(server.url)
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(PROM_CONFIG.format(port=port))
    prom = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115
    )
    try:
        deadline = time.monotonic() + 60
        result: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            try:
                result = query(prom_port, 'streamctl_group_lag{stream="orders",group="billing"}')
            except OSError:
                result = []  # Prometheus not listening yet
            if result:
                break
            time.sleep(0.5)
        log = (tmp_path / "prometheus.log").read_text(errors="replace")[-2000:]
        assert result, f"no sample after 60s; prometheus log:\n{log}"
        assert result[0]["value"][1] == str(server_lag)  # type: ignore[index]
        up = query(prom_port, "up")
        assert up[0]["value"][1] == "1"  # type: ignore[index]
    finally:
        prom.terminate()
        prom.wait(20)
        stop(proc)


def test_the_readme_alert_rules_pass_promtool(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- alert-rules:start -->", 1)[1].split("<!-- alert-rules:end -->")[0]
    rules = block.split("```yaml", 1)[1].split("```", 1)[0]
    (tmp_path / "rules.yml").write_text(rules)
    proc = subprocess.run(
        [need(PROMTOOL, "promtool"), "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 2 rules found" in proc.stdout


def test_the_exposition_is_what_prometheus_client_writes(server, r):
    """metrics writes the exposition itself: the same bytes as prometheus_client's
    generate_latest for the same families (escaped labels, counters, consumers, big and tiny
    values, empty streams, a group with nothing pending, a lag the server leaves nil)."""
    from prometheus_client.exposition import generate_latest

    from streamctl.core.metrics import collect_metrics
    from streamctl.core.models_monitoring import MetricsSnapshot
    from streamctl.render.metrics import exposition, registry_for

    r.xadd('we"ird\\name\n', {"x": 1})
    for i in range(3):
        r.xadd(f"orders-{i}", {"n": "1"}, id="1-0")
        r.xadd(f"orders-{i}", {"n": "2"}, id="2-0")
        r.xgroup_create(f"orders-{i}", "billing", id="0")
        r.xgroup_create(f"orders-{i}", 'a"udit\n', id="0")
        r.xreadgroup("billing", "c1\\", {f"orders-{i}": ">"}, count=1)
    r.xadd("gone", {"a": "1"}, id="1-0")
    r.xdel("gone", "1-0")
    r.xgroup_create("orders-1", "late", id="1-0")
    r.xadd("orders-1", {"n": "3"}, id="3-0")
    r.xdel("orders-1", "3-0")  # a tombstone after the groups: the server reports no lag
    snap = collect_metrics(server.client(), consumers=True)
    assert any(g.lag_computed for s in snap.streams for g in s.groups)
    for s in (
        snap,
        MetricsSnapshot(up=False, error="down"),
        MetricsSnapshot(up=True, duration_s=12345678.9, truncated=True),
        MetricsSnapshot(up=True, duration_s=1e-9),
    ):
        assert exposition(s) == generate_latest(registry_for(lambda s=s: s))  # type: ignore[misc]
    promtool_ok(exposition(snap).decode())


def test_sample_values_are_written_as_prometheus_client_writes_them():
    from prometheus_client.utils import floatToGoString

    from streamctl.render.metrics import _go_float

    values = [0, 1, -1, 999_999, 1_000_000, 1_234_567, 10**15 - 1, 10**15, -(10**15), 2**63 - 1]
    values += [0.0, -0.0, 0.001, 1e-9, 1.5, 999_999.5, 1_000_000.0, 12_345_678.9, 1e300]
    values += [float("inf"), float("-inf"), float("nan")]
    for v in values:
        assert _go_float(v) == floatToGoString(v), v
