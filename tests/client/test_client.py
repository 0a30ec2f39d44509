"""The Python API (SPEC "Using streamctl from Python") against every server kind: what a program
gets back, the errors it can catch, and the server's state after."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import redis

import streamctl
from tests.servers import ServerProcess, free_port


@pytest.fixture
def sc(server: ServerProcess, r: redis.Redis) -> Iterator[streamctl.Client]:
    with streamctl.connect(server.url) as client:
        yield client


def test_import_streamctl_loads_neither_typer_rich_nor_redis() -> None:
    code = (
        "import sys, streamctl; from streamctl import connect, Client, Entry, NotFound; "
        "print(sorted(m for m in ('typer', 'rich', 'redis', 'click') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_publish_and_range(sc: streamctl.Client, r: redis.Redis) -> None:
    first = sc.publish("orders", {"order_id": "42", "status": "created"})
    second = sc.publish("orders", [("k", "a"), ("k", b"\xff"), ("n", 5), ("obj", {"x": [1]})])
    assert [e[0].decode() for e in r.xrange("orders")] == [first, second]
    script = "return redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])"
    raw = r.execute_command("EVAL", script, 1, "orders", second)[0][1]
    assert raw == [b"k", b"a", b"k", b"\xff", b"n", b"5", b"obj", b'{"x":[1]}']

    entries = list(sc.range("orders"))
    assert [e.id for e in entries] == [first, second]
    assert entries[0].stream == "orders"
    assert entries[0].fields == {"order_id": "42", "status": "created"}
    assert entries[1].pairs == ((b"k", b"a"), (b"k", b"\xff"), (b"n", b"5"), (b"obj", b'{"x":[1]}'))
    assert entries[1].fields["k"] == "\ufffd"  # a repeated name: the last value
    assert entries[1].field("k") == b"\xff"
    ms = int(first.split("-")[0])
    assert entries[0].time == datetime.fromtimestamp(ms / 1000, tz=timezone.utc)

    assert [e.id for e in sc.range("orders", reverse=True)] == [second, first]
    assert [e.id for e in sc.range("orders", count=1)] == [first]
    assert [e.id for e in sc.range("orders", f"({first}")] == [second]


def test_publish_caps_and_refusals(sc: streamctl.Client, r: redis.Redis) -> None:
    for i in range(5):
        sc.publish("capped", {"i": str(i)}, maxlen=3)
    assert r.xlen("capped") == 3
    with pytest.raises(streamctl.NotFound) as missing:
        sc.publish("absent", {"a": "b"}, mkstream=False)
    assert missing.value.exit_code == 4
    assert not r.exists("absent")
    with pytest.raises(streamctl.BadInput, match="at least one field"):
        sc.publish("orders", {})
    with pytest.raises(streamctl.BadInput, match="mapping"):
        sc.publish("orders", "status=new")  # type: ignore[arg-type]
    r.set("plain", "x")
    with pytest.raises(streamctl.ServerRefused, match="WRONGTYPE") as wrong:
        sc.publish("plain", {"a": "b"})
    assert wrong.value.exit_code == 1


def test_range_errors_are_raised_at_the_call(sc: streamctl.Client) -> None:
    with pytest.raises(streamctl.NotFound, match="'nope'"):
        sc.range("nope")
    sc.publish("s", {"a": "1"})
    with pytest.raises(streamctl.BadInput, match="bad id or time 'yesterday'"):
        sc.range("s", "yesterday")
    with pytest.raises(streamctl.BadInput, match="count"):
        sc.range("s", count=-1)


def test_publish_many_and_tail_without_group(sc: streamctl.Client) -> None:
    done = sc.publish_many("bulk", ({"i": str(i)} for i in range(2500)))
    assert done == 2500
    got = [e.fields["i"] for e in sc.tail("bulk", start="0", follow=False)]
    assert got == [str(i) for i in range(2500)]
    assert [e.fields["i"] for e in sc.tail("bulk", start="0", count=3)] == ["0", "1", "2"]


def test_tail_sees_a_live_entry(sc: streamctl.Client, server: ServerProcess) -> None:
    sc.publish("live", {"n": "0"})

    def later() -> None:
        with streamctl.connect(server.url) as other:
            other.publish("live", {"n": "1"})

    timer = threading.Timer(0.3, later)
    timer.start()
    try:
        got = [e.fields["n"] for e in sc.tail("live", count=1, timeout="10s")]
    finally:
        timer.join()
    assert got == ["1"]


def test_tail_group_acknowledges_what_the_loop_finished(
    sc: streamctl.Client, r: redis.Redis
) -> None:
    for i in range(5):
        sc.publish("orders", {"i": str(i)})
    created = sc.create_group("orders", "billing", start="0")
    assert created.created
    seen = []
    for entry in sc.tail("orders", group="billing", consumer="w1", follow=False):
        seen.append(entry.id)
        if len(seen) == 3:
            break  # the third was taken but the loop never asked for the next one
    # one read delivered all five; it is acknowledged only once the loop is done with all of
    # it, so stopping at the third leaves the read pending for w1 (at-least-once)
    rows = r.xpending_range("orders", "billing", "-", "+", 10)
    pending = [p["message_id"].decode() for p in rows]
    assert pending[:3] == seen
    assert len(pending) == 5

    rest = [e.id for e in sc.tail("orders", group="billing", consumer="w2", follow=False)]
    assert rest == []  # nothing undelivered: `>` reads new entries only
    again = [
        e.id for e in sc.tail("orders", group="billing", consumer="w1", start="0", follow=False)
    ]
    assert again == pending  # w1's own pending history, now acknowledged
    assert r.xpending("orders", "billing")["pending"] == 0

    for i in range(3):
        sc.publish("orders", {"i": f"late-{i}"})
    taken = [e.fields["i"] for e in sc.tail("orders", group="billing", consumer="w1", count=3)]
    assert taken == ["late-0", "late-1", "late-2"]
    assert r.xpending("orders", "billing")["pending"] == 0  # finished loops leave nothing


def test_tail_group_create_at_start(sc: streamctl.Client, r: redis.Redis) -> None:
    sc.publish("events", {"a": "1"})
    got = [
        e.fields["a"]
        for e in sc.tail(
            "events", group="g", consumer="c", create_group=True, start="0", follow=False
        )
    ]
    assert got == ["1"]
    assert r.xinfo_groups("events")[0]["pending"] == 0


def test_range_and_tail_filters_agree(sc: streamctl.Client) -> None:
    sc.publish("s", [("status", "new"), ("status", "shipped"), ("amount", "120")])
    sc.publish("s", [("status", "shipped"), ("status", "new"), ("amount", "80")])
    where = "fields.status == 'shipped' && to_number(fields.amount) > `100`"
    by_range = [e.id for e in sc.range("s", match=["status=shipped"])]
    by_tail = [e.id for e in sc.tail("s", start="0", follow=False, match=["status=shipped"])]
    by_where = [e.id for e in sc.range("s", where=where)]
    assert by_range == by_tail == by_where
    assert len(by_range) == 1  # a repeated field: its last value counts
    with pytest.raises(streamctl.BadInput, match="where"):
        sc.range("s", where="fields.status ==")


def test_tail_errors(sc: streamctl.Client) -> None:
    with pytest.raises(streamctl.BadInput):
        sc.tail("s", start="soon")
    with pytest.raises(streamctl.BadInput, match="timeout"):
        sc.tail("s", timeout="forever")
    sc.publish("s", {"a": "1"})
    with pytest.raises(streamctl.NotFound, match="NOGROUP|group"):
        list(sc.tail("s", group="nope", consumer="c", follow=False))
    with pytest.raises(streamctl.CheckFailed, match="saw 0 of 2") as waited:
        list(sc.tail("s", count=2, timeout="300ms", match=["a=zzz"]))
    assert waited.value.exit_code == 5


def test_groups_and_consumers(sc: streamctl.Client, r: redis.Redis) -> None:
    for i in range(4):
        sc.publish("orders", {"i": str(i)})
    sc.create_group("orders", "billing", start="0")
    with pytest.raises(streamctl.ServerRefused, match="billing"):
        sc.create_group("orders", "billing")
    assert not sc.create_group("orders", "billing", exist_ok=True).created
    [group] = sc.groups("orders")
    assert (group.name, group.lag, group.pending) == ("billing", 4, 0)

    r.xreadgroup("billing", "w1", {"orders": ">"}, count=2)
    assert sc.group("orders", "billing").pending == 2
    assert [(c.name, c.pending) for c in sc.consumers("orders", "billing")] == [("w1", 2)]

    plan = sc.setid("orders", "billing", "0")
    assert r.xinfo_groups("orders")[0]["last-delivered-id"] != b"0-0"  # a plan changes nothing
    sc.setid("orders", "billing", "0", execute=True)
    assert r.xinfo_groups("orders")[0]["last-delivered-id"] == b"0-0"
    assert plan.new_id == "0-0"

    with pytest.raises(streamctl.Refused) as refused:
        sc.delete_consumer("orders", "billing", "w1")
    assert refused.value.exit_code == 6
    sc.delete_consumer("orders", "billing", "w1", reassign_to="w2")
    assert r.xpending("orders", "billing")["consumers"] == [{"name": b"w2", "pending": 2}]

    with pytest.raises(streamctl.Refused):
        sc.destroy_group("orders", "billing")
    sc.destroy_group("orders", "billing", force=True)
    assert r.xinfo_groups("orders") == []
    with pytest.raises(streamctl.NotFound):
        sc.groups("absent")


def test_pending_claim_dead_letter_ack(sc: streamctl.Client, r: redis.Redis) -> None:
    ids = [sc.publish("orders", {"i": str(i)}) for i in range(6)]
    sc.create_group("orders", "billing", start="0")
    r.xreadgroup("billing", "w1", {"orders": ">"}, count=6)
    summary = sc.pending("orders", "billing")
    assert (summary.count, summary.oldest_id, summary.newest_id) == (6, ids[0], ids[5])
    assert [p.id for p in sc.pending_entries("orders", "billing", count=2)] == ids[:2]

    claimed = sc.claim("orders", "billing", to="w2", ids=[ids[0], ids[1]])
    assert claimed.claimed == ids[:2]
    claimed = sc.claim("orders", "billing", to="w3", consumer="w1", count=1)
    assert claimed.claimed == [ids[2]]
    owners = {c["name"]: c["pending"] for c in r.xpending("orders", "billing")["consumers"]}
    assert owners == {b"w1": 3, b"w2": 2, b"w3": 1}
    with pytest.raises(streamctl.BadInput, match="`to`"):
        sc.claim("orders", "billing", to="")

    # a second delivery of ids[3..5] makes them eligible for the dead-letter stream
    r.xreadgroup("billing", "w1", {"orders": "0"})  # w1 re-reads its own: ids[3:]
    planned = sc.dead_letter("orders", "billing", "orders.dlq", max_deliveries=2, dry_run=True)
    assert not r.exists("orders.dlq")
    moved = sc.dead_letter("orders", "billing", "orders.dlq", max_deliveries=2)
    assert [m.id for m in moved.moved] == [m.id for m in planned.moved] == ids[3:]
    assert all(m.dlq_id is None for m in planned.moved)
    copies = r.xrange("orders.dlq")
    assert [c[1][b"dlq_id"].decode() for c in copies] == ids[3:]
    assert r.xpending("orders", "billing")["pending"] == 3

    acked = sc.ack("orders", "billing", [ids[0], ids[5]])
    assert (acked.acked, acked.not_pending) == (1, 1)
    with pytest.raises(streamctl.NotFound):
        sc.ack("orders", "nogroup", [ids[0]])


def test_trim_refuses_then_forces(sc: streamctl.Client, r: redis.Redis) -> None:
    for i in range(10):
        sc.publish("s", {"i": str(i)})
    sc.create_group("s", "g", start="0")
    planned = sc.trim("s", maxlen=4, dry_run=True)
    assert planned.plan.count == 6
    with pytest.raises(streamctl.Refused, match="'g'"):
        sc.trim("s", maxlen=4)
    assert r.xlen("s") == 10
    sc.trim("s", maxlen=4, force=True)
    assert r.xlen("s") == 4


def test_replay_export_import(sc: streamctl.Client, r: redis.Redis, tmp_path: Any) -> None:
    ids = [sc.publish("orders", {"status": s}) for s in ("new", "shipped", "shipped")]
    result = sc.replay("orders", "0", into="copy", match=["status=shipped"])
    assert result.copied == 2
    assert [e.fields["status"] for e in sc.range("copy")] == ["shipped", "shipped"]

    sc.create_group("orders", "g", start="$")
    sc.replay("orders", ids[1], group="g")
    assert sc.group("orders", "g").lag == 2
    with pytest.raises(streamctl.BadInput, match="`into`"):
        sc.replay("orders", "0")

    out = io.StringIO()
    exported = sc.export("orders", out, with_groups=True)
    assert exported.count == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["group"]["name"] == "g"
    assert [line["id"] for line in lines[1:]] == ids
    path = tmp_path / "orders.ndjson"
    path.write_text(out.getvalue())
    imported = sc.import_("restored", str(path), keep_ids=True)
    assert imported.imported == 3
    assert [e[0].decode() for e in r.xrange("restored")] == ids
    again = sc.import_("restored", str(path), keep_ids=True)
    assert (again.imported, again.skipped) == (0, 3)


def test_check(sc: streamctl.Client) -> None:
    for i in range(3):
        sc.publish("orders", {"i": str(i)})
    sc.create_group("orders", "g", start="0")
    report = sc.check(["orders"], max_lag=2)
    assert report.breached
    assert [(c.check, c.value) for c in report.results] == [("lag", 3)]
    assert not sc.check(["orders"], max_lag=3).breached
    with pytest.raises(streamctl.BadInput, match="max_idle"):
        sc.check(["orders"], max_idle="soon")
    with pytest.raises(streamctl.NotFound):
        sc.check(["absent"])


def test_errors_name_each_clients_own_server(server: ServerProcess) -> None:
    port = free_port()
    down = streamctl.connect(f"redis://127.0.0.1:{port}/0", timeout=1)
    up = streamctl.connect(server.url)
    with down, up:
        with pytest.raises(streamctl.ConnectionFailed) as failed:
            down.publish("s", {"a": "b"})
        assert failed.value.exit_code == 3
        assert f"127.0.0.1:{port}" in str(failed.value)
        up.publish("s", {"a": "b"})
        with pytest.raises(streamctl.NotFound) as missing:
            up.groups("absent")
        assert f"127.0.0.1:{port}" not in str(missing.value)


def test_password_never_in_a_message(server: ServerProcess) -> None:
    with streamctl.connect(f"redis://u:s3cret-pw@127.0.0.1:{free_port()}/0", timeout=1) as sc:
        assert "s3cret" not in repr(sc)
        with pytest.raises(streamctl.ConnectionFailed) as failed:
            sc.ping()
    assert "s3cret" not in str(failed.value)
    assert "***" in str(failed.value)


def test_connect_resolves_like_the_cli(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"profiles:\n  here: {{url: '{server.url}'}}\n")
    with streamctl.connect(profile="here", config=str(config)) as sc:
        assert sc.ping()
    monkeypatch.setenv("STREAMCTL_URL", server.url)
    with streamctl.connect() as sc:
        assert sc.url == server.url
    with pytest.raises(streamctl.BadInput, match="no profile 'absent'"):
        streamctl.connect(profile="absent", config=str(config))
    with pytest.raises(streamctl.BadInput, match="bad URL"):
        streamctl.connect("http://example.com")


def test_on_a_cluster(cluster: Any, rc: Any) -> None:
    names = ["orders-a", "orders-b", "orders-c"]
    with streamctl.connect(cluster.url) as sc:
        for name in names:
            sc.publish(name, {"stream": name})
            sc.create_group(name, "g", start="0")
        got = sorted(e.stream for e in sc.tail(names, group="g", consumer="c", follow=False))
        assert got == sorted(names)
        for name in names:
            assert rc.xpending(name, "g")["pending"] == 0
        assert sorted(s.name for s in sc.streams()) == sorted(names)
        assert not sc.check(max_lag=0).breached


def test_errors_name_arguments_not_flags(sc: streamctl.Client, server: ServerProcess) -> None:
    sc.publish("s", {"a": "1"})
    sc.create_group("s", "g", start="0")
    list(sc.tail("s", group="g", consumer="c", ack=False, follow=False))
    with pytest.raises(streamctl.Refused) as refused:
        sc.destroy_group("s", "g")
    assert "rerun with force" in str(refused.value)
    with pytest.raises(streamctl.NotFound) as missing:
        sc.publish("absent", {"a": "b"}, mkstream=False)
    assert "(mkstream=False)" in str(missing.value)
    with pytest.raises(streamctl.BadInput) as bad:
        sc.trim("s")
    assert "--" not in str(bad.value)
    assert "maxlen" in str(bad.value)
    for exc in (refused.value, missing.value, bad.value):
        assert "--" not in str(exc)
    # the CLI's Client keeps the flags
    cli_client = streamctl.Client(sc.settings, wording="flags")
    with cli_client, pytest.raises(streamctl.Refused, match="--force"):
        cli_client.destroy_group("s", "g")
    with pytest.raises(streamctl.BadInput, match="wording"):
        streamctl.Client(sc.settings, wording="shouting")


def test_argument_wording() -> None:
    from streamctl.client import argument_wording

    assert (
        argument_wording("bad --max-deliveries 0; see --from") == "bad max_deliveries 0; see start"
    )
    assert argument_wording("a--b and x--y stay") == "a--b and x--y stay"


def test_every_public_name_is_documented() -> None:
    import inspect

    missing = [
        name
        for name in streamctl.__all__
        if not name.startswith("_")
        and not (getattr(streamctl, name).__doc__ or "").strip()
        and not isinstance(getattr(streamctl, name), str)
    ]
    missing += [
        f"Client.{name}"
        for name, member in inspect.getmembers(streamctl.Client)
        if not name.startswith("_") and not (inspect.getdoc(member) or "").strip()
    ]
    assert missing == []
