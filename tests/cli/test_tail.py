"""tail on the three real servers: exact output in every format, --count/--match/--timeout, the CI
wait-for-event, group mode, several consumers, a killed server, a closed pipe and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import ISOLATED_ENV_DROP
from tests.servers import KINDS, ServerProcess, free_port, server_binary, start_server

IDS = ["1795773600000-0", "1795773600000-1", "1795773601000-0"]


def fill(r: redis.Redis) -> None:
    r.xadd("orders", {"order_id": "1", "status": "created"}, id=IDS[0])
    r.xadd("orders", {"order_id": "1", "status": "shipped"}, id=IDS[1])
    r.xadd("orders", {"order_id": "2", "status": "created"}, id=IDS[2])


def envelope(eid: str, time_text: str, **fields: str) -> str:
    body = ",".join(f'"{k}":"{v}"' for k, v in fields.items())
    return f'{{"stream":"orders","id":"{eid}","time":"{time_text}","fields":{{{body}}}}}\n'


EXPECTED_NDJSON = (
    envelope(IDS[0], "2026-11-27T10:00:00.000Z", order_id="1", status="created")
    + envelope(IDS[1], "2026-11-27T10:00:00.000Z", order_id="1", status="shipped")
    + envelope(IDS[2], "2026-11-27T10:00:01.000Z", order_id="2", status="created")
)


def when_blocked(
    r: redis.Redis, action: Callable[[], object], clients: int = 1
) -> threading.Thread:
    """Run `action` in a thread once `clients` clients are blocked (BLOCK) on the server."""

    def wait_then_act() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if int(r.info("clients")["blocked_clients"]) >= clients:
                action()
                return
            time.sleep(0.01)

    t = threading.Thread(target=wait_then_act, daemon=True)
    t.start()
    return t


def wait_blocked(r: redis.Redis, clients: int = 1, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while int(r.info("clients")["blocked_clients"]) < clients:
        assert time.monotonic() < deadline, "tail never blocked"
        time.sleep(0.01)


def spawn(args: list[str], **kw: object) -> subprocess.Popen[bytes]:
    """streamctl in a real process that the test drives (signals, pipes) while it runs."""
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}
    return subprocess.Popen(
        [sys.executable, "-m", "streamctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        **kw,  # type: ignore[arg-type]
    )


def pending(r: redis.Redis, stream: str, group: str) -> list[str]:
    return [p["message_id"].decode() for p in r.xpending_range(stream, group, "-", "+", 1000)]


# ---- reading what is there ----


def test_from_zero_no_follow_prints_every_entry_in_order(cli, r):
    fill(r)
    res = cli("tail", "orders", "--from", "0", "--no-follow")
    assert (res.exit_code, res.stderr) == (0, "")
    assert res.stdout == EXPECTED_NDJSON


def test_json_and_yaml(cli, r):
    fill(r)
    res = cli("tail", "orders", "--from", "0", "--no-follow", "-o", "json")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "[\n  " + ",\n  ".join(EXPECTED_NDJSON.splitlines()) + "\n]\n"
    res = cli("tail", "orders", "--from", IDS[2], "--no-follow", "-o", "yaml")
    assert res.stdout == (
        "- stream: orders\n"
        "  id: 1795773601000-0\n"
        "  time: '2026-11-27T10:00:01.000Z'\n"
        "  fields:\n"
        "    order_id: '2'\n"
        "    status: created\n"
    )
    empty = cli("tail", "orders", "--from", "(" + IDS[2], "--no-follow", "-o", "json")
    assert (empty.exit_code, empty.stdout) == (0, "[]\n")


def test_table_is_a_line_per_entry(cli, r):
    fill(r)
    res = cli("tail", "orders", "--from", "0", "--no-follow", "-o", "table")
    assert res.exit_code == 0, res.stderr
    assert res.lines == [
        "1795773600000-0  2026-11-27T10:00:00.000Z  order_id=1  status=created",
        "1795773600000-1  2026-11-27T10:00:00.000Z  order_id=1  status=shipped",
        "1795773601000-0  2026-11-27T10:00:01.000Z  order_id=2  status=created",
    ]


def test_several_streams_each_from_its_own_position(cli, r):
    fill(r)
    r.xadd("payments", {"amount": "10"}, id="1795773600500-0")
    res = cli("tail", "orders", "payments", "--from", "0", "--no-follow", "-o", "table")
    assert res.exit_code == 0, res.stderr
    assert res.lines == [
        "orders  1795773600000-0  2026-11-27T10:00:00.000Z  order_id=1  status=created",
        "orders  1795773600000-1  2026-11-27T10:00:00.000Z  order_id=1  status=shipped",
        "orders  1795773601000-0  2026-11-27T10:00:01.000Z  order_id=2  status=created",
        "payments  1795773600500-0  2026-11-27T10:00:00.500Z  amount=10",
    ]


def test_format_template(cli, r):
    fill(r)
    r.xadd("orders", {"status": b"\xff"}, id="1795773602000-0")
    res = cli(
        "tail", "orders", "--from", "1795773601000", "--no-follow",
        "--format", "{stream} {id} {time} {fields[status]}|{fields[nope]}|{{x}} {id:>17}",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert res.lines == [
        "orders 1795773601000-0 2026-11-27T10:00:01.000Z created||{x}   1795773601000-0",
        "orders 1795773602000-0 2026-11-27T10:00:02.000Z \\xff||{x}   1795773602000-0",
    ]
    res = cli("tail", "orders", "--from", "0", "--no-follow", "--format", "{fields}")
    assert res.lines[2:] == ["order_id=2 status=created", "status=\\xff"]


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{bad}", "unknown field {bad}"),
        ("{id", "expected '}' before end of string"),
        ("}", "Single '}' encountered"),
        ("{}", "positional fields"),
        ("{0}", "positional fields"),
        ("{id.real}", "unknown field {id.real}"),
        ("{fields[]}", "unknown field {fields[]}"),
        ("{id!x}", "unknown conversion !x"),
        ("{id:d}", "bad format spec 'd'"),
        ("", "the template is empty"),
    ],
)
def test_bad_template_is_exit_2_before_reading(run_cli, template, why):
    # no server on this port: reading anything would be exit 3
    res = run_cli(["-u", f"redis://127.0.0.1:{free_port()}", "tail", "s", "--format", template])
    assert res.exit_code == 2, res.stderr
    assert res.stderr.startswith(f"error: bad --format {template!r}: {why}")
    assert len(res.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "30"], "error: bad --timeout '30': accepted: 500ms, 90s"),
        (["--timeout", "soon"], "error: bad --timeout 'soon'"),
        (["--timeout", "-1s"], "error: bad --timeout '-1s'"),
        (["--retry-for", "1x"], "error: bad --retry-for '1x'"),
        (["--from", "yesterday"], "error: bad id or time 'yesterday'"),
        (["--count", "0"], "error: bad --count 0"),
        (["--count", "x"], "error: Invalid value for '--count' / '-n'"),
        (["--match", "status"], "error: bad --match 'status': give FIELD=GLOB"),
        (["--no-ack"], "error: --consumer, --no-ack and --create-group need --group G"),
        (["--consumer", "c"], "error: --consumer, --no-ack and --create-group need --group G"),
        (["--group", "g", "--from", "+"], "error: --from + is not accepted with --group"),
        (["--format", "{id}", "-o", "json"], "error: --format TEMPLATE is a text format"),
        (["-o", "xml"], "error: bad output format 'xml'"),
    ],
)
def test_usage_errors_are_exit_2_before_connecting(run_cli, args, message):
    res = run_cli(["-u", f"redis://127.0.0.1:{free_port()}", "tail", "s", *args])
    assert res.exit_code == 2, res.stderr
    assert res.stderr.startswith(message)
    assert len(res.stderr.splitlines()) == 1


def test_missing_stream_with_no_follow_is_exit_4(cli, r):
    res = cli("tail", "nope", "--from", "0", "--no-follow")
    assert (res.exit_code, res.stdout) == (4, "")
    assert res.stderr == "error: stream 'nope' does not exist\n"


def test_wrong_type_is_exit_1(cli, r):
    r.set("str", "x")
    res = cli("tail", "str")
    assert res.exit_code == 1
    assert res.stderr == "error: WRONGTYPE: key 'str' holds a string, not a stream\n"


def test_no_follow_from_dollar_says_why_nothing_came(cli, r):
    fill(r)
    res = cli("tail", "orders", "--no-follow")
    assert (res.exit_code, res.stdout) == (0, "")
    assert "--from 0 prints the whole stream" in res.stderr


# ---- following: --count, --match, --timeout ----


def test_count_stops(cli, r):
    fill(r)
    res = cli("tail", "orders", "--from", "0", "--count", "2")  # following: only the count ends it
    assert res.exit_code == 0, res.stderr
    assert [e["id"] for e in res.ndjson()] == IDS[:2]


def test_match_filters(cli, r):
    fill(r)
    res = cli("tail", "orders", "--from", "0", "--no-follow", "--match", "status=ship*")
    assert [e["id"] for e in res.ndjson()] == [IDS[1]]
    res = cli(
        "tail", "orders", "--from", "0", "--no-follow",
        "-m", "status=created", "-m", "order_id=[2-9]",
    )  # fmt: skip
    assert [e["id"] for e in res.ndjson()] == [IDS[2]]


def test_new_entries_are_printed_as_they_come(cli, r):
    fill(r)

    def publish() -> None:
        r.xadd("orders", {"n": "1"})
        r.xadd("orders", {"n": "2"})

    t = when_blocked(r, publish)
    res = cli("tail", "orders", "--count", "2", "--timeout", "20s")
    t.join()
    assert res.exit_code == 0, res.stderr
    assert [e["fields"] for e in res.ndjson()] == [{"n": "1"}, {"n": "2"}]


def test_a_stream_that_does_not_exist_yet_is_waited_for(cli, r):
    t = when_blocked(r, lambda: r.xadd("later", {"a": "1"}))
    res = cli("tail", "later", "--count", "1", "--timeout", "20s")
    t.join()
    assert res.exit_code == 0, res.stderr
    assert [e["stream"] for e in res.ndjson()] == ["later"]


def test_wait_for_event_succeeds_when_another_process_publishes_it(server, r):
    r.xadd("orders", {"status": "created"})
    tail = spawn(
        ["-u", server.url, "tail", "orders", "--from", "0", "--match", "status=shipped",
         "--count", "1", "--timeout", "30s"]
    )  # fmt: skip
    try:
        wait_blocked(r)
        r.xadd("orders", {"status": "packed"})
        shipped = r.xadd("orders", {"status": "shipped", "order_id": "42"}).decode()
        out, err = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert (tail.returncode, err) == (0, b"")
    assert [line.split(b'"id":"')[1][: len(shipped)].decode() for line in out.splitlines()] == [
        shipped
    ]


def test_wait_for_event_exits_5_when_it_does_not_come(cli, r):
    r.xadd("orders", {"status": "created"})
    t = when_blocked(r, lambda: r.xadd("orders", {"status": "packed"}))
    started = time.monotonic()
    res = cli(
        "tail", "orders", "--from", "0", "--match", "status=shipped", "--count", "1",
        "--timeout", "1500ms",
    )  # fmt: skip
    t.join()
    assert 1.4 < time.monotonic() - started < 10
    assert (res.exit_code, res.stdout) == (5, "")
    assert res.stderr == (
        "error: timed out after 1500ms without a new entry: "
        "saw 0 of 1 entry matching status=shipped\n"
    )


def test_fewer_than_count_before_the_timeout_says_how_many(cli, r):
    fill(r)
    res = cli("tail", "orders", "--from", "0", "--count", "5", "--timeout", "300ms")
    assert res.exit_code == 5
    assert [e["id"] for e in res.ndjson()] == IDS
    assert res.stderr.endswith("saw 3 of 5 entries\n")


def test_timeout_without_count_is_success(cli, r):
    fill(r)
    res = cli("tail", "orders", "--timeout", "200ms")
    assert (res.exit_code, res.stdout, res.stderr) == (0, "", "")


def test_blocking_read_outlives_the_connect_timeout(one_server, r1, run_cli):
    # the global --timeout (socket timeout of ordinary commands) must not cut a long BLOCK
    started = time.monotonic()
    res = run_cli(["-u", one_server.url, "--timeout", "1", "tail", "s", "--timeout", "2500ms"])
    assert (res.exit_code, res.stderr) == (0, "")
    assert time.monotonic() - started >= 2.4


# ---- group mode ----


def test_group_acks_every_entry_it_wrote(cli, r):
    fill(r)
    r.xgroup_create("orders", "billing", "0")
    res = cli("tail", "orders", "--group", "billing", "--consumer", "c1", "--no-follow")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == EXPECTED_NDJSON
    assert pending(r, "orders", "billing") == []
    assert r.xinfo_groups("orders")[0]["last-delivered-id"].decode() == IDS[-1]


def test_group_no_ack_leaves_them_pending(cli, r):
    fill(r)
    r.xgroup_create("orders", "billing", "0")
    res = cli("tail", "orders", "-g", "billing", "-c", "c1", "--no-ack", "--no-follow")
    assert res.exit_code == 0, res.stderr
    assert [e["id"] for e in res.ndjson()] == IDS
    assert pending(r, "orders", "billing") == IDS
    assert [c["name"] for c in r.xinfo_consumers("orders", "billing")] == [b"c1"]
    assert "3 entries delivered to consumer 'c1' were left pending" in res.stderr


def test_group_missing_is_exit_4_naming_it(cli, r):
    fill(r)
    res = cli("tail", "orders", "--group", "billing")
    assert res.exit_code == 4
    assert res.stderr == (
        "error: group 'billing' does not exist on stream 'orders' "
        "(--create-group creates it at $)\n"
    )
    res = cli("tail", "nope", "--group", "billing")
    assert res.exit_code == 4
    assert "stream 'nope' does not exist" in res.stderr


def test_create_group_at_dollar(cli, r):
    fill(r)
    t = when_blocked(r, lambda: r.xadd("orders", {"n": "new"}))
    res = cli(
        "tail", "orders", "-g", "billing", "--create-group", "--count", "1", "--timeout", "20s"
    )
    t.join()
    assert res.exit_code == 0, res.stderr
    assert [e["fields"] for e in res.ndjson()] == [{"n": "new"}]
    assert res.stderr == "created group 'billing' on stream 'orders' at $\n"
    assert pending(r, "orders", "billing") == []


def test_group_default_consumer_is_host_and_pid(server, r):
    fill(r)
    r.xgroup_create("orders", "billing", "0")
    res = subprocess.run(
        [sys.executable, "-m", "streamctl", "-u", server.url, "tail", "orders", "-g", "billing",
         "--no-follow", "--no-ack"],
        capture_output=True,
        env={k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP},
        timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    [consumer] = [c["name"].decode() for c in r.xinfo_consumers("orders", "billing")]
    host, _, pid = consumer.rpartition("-")
    assert host == os.uname().nodename and pid.isdigit()


def test_group_from_zero_rereads_own_pending_then_new(cli, r):
    fill(r)
    r.xgroup_create("orders", "billing", "0")
    r.xreadgroup("billing", "c1", {"orders": ">"}, count=2)  # c1 crashed with these pending
    res = cli("tail", "orders", "-g", "billing", "-c", "c1", "--from", "0", "--no-follow")
    assert res.exit_code == 0, res.stderr
    assert [e["id"] for e in res.ndjson()] == IDS
    assert pending(r, "orders", "billing") == []


def test_two_consumers_split_the_entries(server, r):
    r.xgroup_create("orders", "billing", "$", mkstream=True)
    tails = [
        spawn(["-u", server.url, "tail", "orders", "-g", "billing", "-c", name,
               "--count", "5", "--timeout", "20s"])
        for name in ("a", "b")
    ]  # fmt: skip
    published: list[str] = []
    try:
        for _ in range(5):
            # both blocked (so both wrote and acked the last ones): the first entry wakes the
            # consumer that waited longest, the second goes to the one still waiting
            wait_blocked(r, 2)
            published.append(r.xadd("orders", {"n": str(len(published))}).decode())
            published.append(r.xadd("orders", {"n": str(len(published))}).decode())
        outputs = [t.communicate(timeout=30) for t in tails]
    finally:
        for t in tails:
            t.kill()
    got = [[line.split(b'"id":"')[1].split(b'"')[0].decode() for line in out.splitlines()]
           for out, _ in outputs]  # fmt: skip
    assert [t.returncode for t in tails] == [0, 0], [err for _, err in outputs]
    assert len(got[0]) == len(got[1]) == 5
    assert not set(got[0]) & set(got[1])
    assert sorted(got[0] + got[1]) == published
    assert pending(r, "orders", "billing") == []
    consumers = {c["name"]: c["pending"] for c in r.xinfo_consumers("orders", "billing")}
    assert consumers == {b"a": 0, b"b": 0}


# ---- a killed server, a closed pipe, Ctrl-C ----


@pytest.fixture(params=KINDS)
def aof(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    if server_binary(request.param) is None:
        pytest.skip(f"{request.param} server not available")
    srv = start_server(request.param, aof=True, dir=tmp_path)
    yield srv
    srv.stop()


@pytest.mark.parametrize("group", [False, True], ids=["xread", "group"])
def test_killed_and_restarted_server_loses_and_duplicates_nothing(aof, group):
    r = aof.client()
    args = ["-u", aof.url, "tail", "orders", "--count", "8", "--timeout", "60s"]
    if group:
        r.xgroup_create("orders", "billing", "$", mkstream=True)
        args += ["--group", "billing", "--consumer", "c1"]
    tail = spawn(args)
    try:
        wait_blocked(r)
        published = [r.xadd("orders", {"n": str(i)}).decode() for i in range(3)]
        first = [tail.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        assert all(b'"n":' in line for line in first)
        aof.kill()
        time.sleep(0.3)  # the tail retries against a dead port for a while
        aof.start()
        r = aof.client()
        published += [r.xadd("orders", {"n": str(i)}).decode() for i in range(3, 8)]
        rest, err = tail.communicate(timeout=60)
    finally:
        tail.kill()
    got = [line.split(b'"id":"')[1].split(b'"')[0].decode() for line in first + rest.splitlines()]
    assert tail.returncode == 0, err
    assert got == published
    lines = err.decode().splitlines()
    assert lines[0].startswith("connection lost (") and "retrying for up to 1m" in lines[0]
    assert lines[-1].startswith("reconnected; resuming after orders ")
    if group:
        assert pending(r, "orders", "billing") == []


def test_gives_up_with_exit_3_after_retry_for(tmp_path):
    srv = start_server("redis8.2", dir=tmp_path)
    try:
        r = srv.client()
        r.xadd("s", {"n": "1"}, id="1795773600000-0")
        tail = spawn(
            ["-u", srv.url, "tail", "s", "--from", "0", "--retry-for", "500ms", "-o", "json"]
        )
        wait_blocked(r)
        srv.kill()
        out, err = tail.communicate(timeout=30)
    finally:
        srv.stop()
    assert tail.returncode == 3
    # the array begun is closed: what was printed before the failure is still valid json
    assert [e["id"] for e in json.loads(out)] == ["1795773600000-0"]
    lines = err.decode().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("connection lost")
    assert lines[1].startswith("error: gave up after ") and "(--retry-for 500ms)" in lines[1]
    assert "Traceback" not in err.decode()


def test_closed_pipe_exits_quietly_and_acks_only_what_was_written(server, r):
    r.xgroup_create("orders", "billing", "$", mkstream=True)
    tail = spawn(["-u", server.url, "tail", "orders", "-g", "billing", "-c", "c1"])
    try:
        wait_blocked(r)
        first = r.xadd("orders", {"n": "1"}).decode()
        assert first.encode() in tail.stdout.readline()  # type: ignore[union-attr]
        tail.stdout.close()  # type: ignore[union-attr]  # what `| head -1` does after one line
        wait_blocked(r)
        second = r.xadd("orders", {"n": "2"}).decode()
        err = tail.stderr.read()  # type: ignore[union-attr]
        tail.wait(30)
    finally:
        tail.kill()
    assert (tail.returncode, err) == (0, b"")
    assert pending(r, "orders", "billing") == [second]  # its write failed: not acknowledged
    assert first not in pending(r, "orders", "billing")


def test_pipe_into_head_from_a_shell(server, r):
    for i in range(3000):  # more than a pipe buffer holds
        r.xadd("orders", {"n": str(i), "pad": "x" * 40})
    script = (
        f'"{sys.executable}" -m streamctl -u {server.url} tail orders --from 0 | head -1; '
        'echo "status=${PIPESTATUS[0]}" >&2'
    )
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}
    res = subprocess.run(["bash", "-c", script], capture_output=True, env=env, timeout=60)
    assert res.stdout.count(b"\n") == 1 and b'"n":"0"' in res.stdout
    assert res.stderr == b"status=0\n"


def test_ctrl_c_exits_130_without_a_traceback(one_server, r1):
    tail = spawn(["-u", one_server.url, "tail", "orders"])
    try:
        wait_blocked(r1)
        tail.send_signal(signal.SIGINT)
        out, err = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert (tail.returncode, out) == (130, b"")
    # typer turns KeyboardInterrupt into a silent Exit(130); the entry point may add one line
    assert err in (b"", b"error: interrupted\n")


def test_ctrl_c_closes_a_json_array(one_server, r1):
    r1.xadd("orders", {"n": "1"}, id="1795773600000-0")
    tail = spawn(["-u", one_server.url, "tail", "orders", "--from", "0", "-o", "json"])
    try:
        wait_blocked(r1)
        tail.send_signal(signal.SIGINT)
        out, err = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert tail.returncode == 130
    assert out == (
        b'[\n  {"stream":"orders","id":"1795773600000-0","time":"2026-11-27T10:00:00.000Z",'
        b'"fields":{"n":"1"}}\n]\n'
    )


def test_sigterm_exits_143_after_acking_what_was_written(one_server, r1):
    r1.xgroup_create("orders", "billing", "$", mkstream=True)
    tail = spawn(["-u", one_server.url, "tail", "orders", "-g", "billing", "-c", "c1"])
    try:
        wait_blocked(r1)
        eid = r1.xadd("orders", {"n": "1"}).decode()
        assert eid.encode() in tail.stdout.readline()  # type: ignore[union-attr]
        wait_blocked(r1)
        tail.send_signal(signal.SIGTERM)
        out, err = tail.communicate(timeout=30)
    finally:
        tail.kill()
    assert (tail.returncode, out, err) == (143, b"", b"error: terminated\n")
    assert pending(r1, "orders", "billing") == []


# ---- the block path: a read written at once, one flush, one XACK ----


def odd_entries(r: redis.Redis, n: int) -> None:
    """Entries of every shape the NDJSON fast path must fall back on, over several reads."""
    for i in range(n):
        kind = i % 5
        if kind == 0:
            args: list[object] = ["a", str(i), "b", "plain"]
        elif kind == 1:
            args = ["a", str(i), "a", "again"]  # a repeated name
        elif kind == 2:
            args = ["a", str(i), "bin", b"\xff\x00"]  # not UTF-8
        elif kind == 3:
            args = ["a", str(i), "q", 'say "hi"\nthen \\ leave', "n\u00e9", "\u2603"]
        else:
            args = ["a", str(i)]  # another width
        r.execute_command("XADD", "orders", "*", *args)


def test_block_output_is_the_same_bytes_as_the_generic_path(cli, r):
    from streamctl.core.models import Entry
    from streamctl.core.streams import read_range
    from streamctl.render.serialize import entry_data

    odd_entries(r, 1203)  # three reads of 500, the last one short
    client = connect_raw(r)
    raws = [raw for b in read_range(client, "orders") for raw in b.entries]
    generic = [entry_data(Entry.from_raw("orders", raw)) for raw in raws]
    res = cli("tail", "orders", "--from", "0", "--no-follow", "-o", "ndjson")
    assert res.exit_code == 0, res.stderr
    expected = "".join(
        json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in generic
    )
    assert res.stdout == expected
    as_json = cli("tail", "orders", "--from", "0", "--no-follow", "-o", "json")
    assert json.loads(as_json.stdout) == generic
    template = cli("tail", "orders", "--from", "0", "--no-follow", "--format", "{id}")
    assert template.stdout.split() == [e["id"] for e in generic]


def connect_raw(r: redis.Redis) -> redis.Redis:
    kw = r.connection_pool.connection_kwargs
    return redis.Redis(host=kw["host"], port=kw["port"])


def test_group_acks_each_read_once_after_writing_it(cli, r):
    from streamctl.core.follow import READ_BATCH

    total = 2 * READ_BATCH + 203
    odd_entries(r, total)
    r.xgroup_create("orders", "billing", "0")
    r.config_resetstat()
    res = cli("tail", "orders", "-g", "billing", "-c", "c1", "--no-follow", "-o", "ndjson")
    assert res.exit_code == 0, res.stderr
    ids_ = [e["id"] for e in res.ndjson()]
    assert len(ids_) == len(set(ids_)) == total  # each once, in order
    assert ids_ == [e[0].decode() for e in r.xrange("orders")]
    assert pending(r, "orders", "billing") == []
    # reads of a batch, a batch and 203: the first read's XACK rides in front of the third read
    # (sent ahead); the second's goes with the last one's after its flush: never one per entry
    assert int(r.info("commandstats")["cmdstat_xack"]["calls"]) == 2


def test_create_group_at_from(cli, r):
    fill(r)
    res = cli("tail", "orders", "-g", "fresh", "--create-group", "--from", "0", "--no-follow")
    assert res.exit_code == 0, res.stderr
    assert [e["id"] for e in res.ndjson()] == IDS
    assert res.stderr == "created group 'fresh' on stream 'orders' at 0-0\n"
    res = cli("tail", "orders", "-g", "mid", "--create-group", "--from", IDS[1], "--no-follow")
    assert [e["id"] for e in res.ndjson()] == IDS[1:]
    assert pending(r, "orders", "fresh") == pending(r, "orders", "mid") == []


def test_a_stalled_stdout_reader_is_not_idle_time(server, r):
    """--timeout counts only time waiting for the server: a reader of stdout that stalls for
    three timeouts (the pipe full) does not make tail stop "idle" with entries unread."""
    r.xgroup_create("orders", "billing", "0", mkstream=True)
    big = "x" * 100_000  # three of them are several pipe buffers: the write blocks
    first = [r.xadd("orders", {"n": str(n), "pad": big}).decode() for n in range(3)]
    tail = spawn(
        ["-u", server.url, "tail", "orders", "-g", "billing", "-c", "c1"]
        + ["--timeout", "1s", "-o", "ndjson"]
    )
    try:
        deadline = time.monotonic() + 30
        while len(pending(r, "orders", "billing")) < 3:  # delivered: being written to stdout
            assert time.monotonic() < deadline and tail.poll() is None, "tail never read"
            time.sleep(0.01)
        later = [r.xadd("orders", {"n": str(n)}).decode() for n in (3, 4)]
        time.sleep(3)  # the reader stalls for three timeouts, stdout blocked
        out, err = tail.communicate(timeout=60)
    finally:
        tail.kill()
    assert (tail.returncode, err) == (0, b"")
    assert [json.loads(line)["id"] for line in out.splitlines()] == first + later
    assert pending(r, "orders", "billing") == []
