"""`streamctl demo`: the story end to end on a given server and on an embedded one, its narration,
and that it removes its stream (also when it fails half-way)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from streamctl.core.embedded import port_in_use
from streamctl.demo import CRASHER, DEMO_GROUP, DEMO_STREAM, WORKER
from tests.conftest import run_process
from tests.servers import free_port

STEPS = ["create-group", "publish", "consume", "pending", "claim", "group-ls"]


def check_story(data: dict) -> None:  # type: ignore[type-arg]
    """The steps tell the story, whatever the server and the ids."""
    assert [s["step"] for s in data["steps"]] == STEPS
    results = {s["step"]: s["result"] for s in data["steps"]}

    (group,) = results["create-group"]["groups"]
    assert (group["group"], group["consumers"], group["pending"], group["lag"]) == (
        DEMO_GROUP,
        0,
        0,
        0,
    )

    entries = results["publish"]["entries"]
    assert [e["fields"] for e in entries] == [
        {"order_id": o, "customer": c, "amount": a, "status": "created"}
        for o, c, a in [
            ("1001", "alice", "19.90"), ("1002", "bob", "5.00"), ("1003", "carol", "42.50"),
            ("1004", "dave", "12.00"), ("1005", "erin", "7.25"), ("1006", "frank", "99.99"),
        ]
    ]  # fmt: skip
    ids = [e["id"] for e in entries]

    deliveries = results["consume"]["deliveries"]
    assert [(d["consumer"], d["id"], d["acked"]) for d in deliveries] == [
        (WORKER if i % 2 == 0 else CRASHER, ids[i], i % 2 == 0) for i in range(6)
    ]
    assert deliveries[1]["summary"] == "#1002 bob 5.00"
    stuck = ids[1::2]

    pending = results["pending"]["entries"]
    assert [(p["id"], p["consumer"], p["deliveries"]) for p in pending] == [
        (i, CRASHER, 1) for i in stuck
    ]
    assert all(isinstance(p["idle_ms"], int) for p in pending)

    claim = results["claim"]
    assert claim == {
        "consumer": WORKER,
        "min_idle_ms": 100,
        "claimed": [{"id": i, "previous_consumer": CRASHER} for i in stuck],
        "acked": 3,
    }

    (final,) = results["group-ls"]["groups"]
    assert (final["consumers"], final["pending"], final["lag"], final["entries_read"]) == (
        2,
        0,
        0,
        6,
    )
    assert final["last_delivered_id"] == ids[-1]
    assert data["stream"] == DEMO_STREAM and data["cleaned_up"] is True


def test_demo_on_the_server_at_url(cli1, r1, one_server) -> None:  # type: ignore[no-untyped-def]
    r1.xadd("mine", {"keep": "me"})
    res = cli1("demo")  # not a terminal: json, no pause
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert (data["server"], data["embedded"]) == (one_server.url, False)
    check_story(data)
    assert data["next"][0] == f"streamctl -u {one_server.url} group create orders billing --from 0"
    assert data["next"][-1] == f"streamctl -u {one_server.url} top"
    assert res.stderr == ""
    assert r1.exists(DEMO_STREAM) == 0
    assert [k.decode() for k in r1.keys("*")] == ["mine"]  # nothing else touched


def test_demo_narration(cli1, r1, one_server) -> None:  # type: ignore[no-untyped-def]
    res = cli1("demo", "-o", "table", "--pause", "0")
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert out.startswith(f"streamctl demo on the server at {one_server.url}\n")
    for text in (
        "1. The billing service creates its consumer group 'billing'",
        f"   $ streamctl group create {DEMO_STREAM} billing\n",
        "2. The orders service publishes 6 events",
        f"3. Two consumers of 'billing' share them: {WORKER} acknowledges each order",
        f"4. pending shows the orders {CRASHER} took down with it",
        f"   $ streamctl pending {DEMO_STREAM} billing\n",
        f"5. {WORKER} claims what has been idle 100ms",
        "6. Every order is processed: lag and pending are back to zero",
        f"Removed {DEMO_STREAM}.\n",
        f"Try it yourself:\n  streamctl -u {one_server.url} group create orders billing",
    ):
        assert text in out, text
    final = out[out.index("6. Every order") : out.index("Removed")]
    row = next(line.split() for line in final.splitlines() if line.strip().startswith("billing"))
    assert row[:3] == ["billing", "2", "0"] and row[-1] == "0"  # consumers, pending ... lag
    assert r1.exists(DEMO_STREAM) == 0


def test_demo_on_an_embedded_server_when_none_answers(run_cli) -> None:  # type: ignore[no-untyped-def]
    url = f"redis://127.0.0.1:{free_port()}/0"
    res = run_cli(["-u", url, "demo"])
    assert res.exit_code == 0, res.stderr
    data = res.json()
    assert data["embedded"] is True and data["server"] != url
    check_story(data)
    assert data["next"][0].startswith("streamctl server")
    assert data["next"][1] == "streamctl group create orders billing --from 0"
    assert res.stderr == (f"no server answers at {url}: starting an embedded one for the demo\n")
    port = urlsplit(data["server"]).port
    assert port is not None and not port_in_use(port)  # stopped at the end


def test_demo_as_the_readme_runs_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`./dev demo` runs `streamctl demo`: a real process, no server at the default URL."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = run_process(["demo"], env={"STREAMCTL_URL": url}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    check_story(json.loads(proc.stdout))


def test_demo_removes_its_stream_when_it_fails(cli1, r1, one_server) -> None:  # type: ignore[no-untyped-def]
    # a user who may do everything but XAUTOCLAIM: the demo fails at the claim step
    r1.execute_command("ACL", "SETUSER", "noclaim", "on", ">pw", "~*", "+@all", "-xautoclaim")
    try:
        url = one_server.url.replace("redis://", "redis://noclaim:pw@")
        from tests.conftest import invoke

        res = invoke(["-u", url, "demo"])
        assert res.exit_code == 1
        assert res.stdout == ""
        assert res.stderr.startswith("error: permission denied: NOPERM")
        assert res.stderr.count("\n") == 1 and "pw@" not in res.stderr
        assert r1.exists(DEMO_STREAM) == 0
    finally:
        r1.execute_command("ACL", "DELUSER", "noclaim")


def test_demo_clears_what_an_earlier_run_left(cli1, r1) -> None:  # type: ignore[no-untyped-def]
    r1.xadd(DEMO_STREAM, {"left": "over"})
    res = cli1("demo")
    assert res.exit_code == 0
    check_story(res.json())
    assert res.stderr == f"removed {DEMO_STREAM} left over by an earlier demo\n"
    assert r1.exists(DEMO_STREAM) == 0


@pytest.mark.parametrize("pause", ["-1", "soon"])
def test_bad_pause(cli1, pause) -> None:  # type: ignore[no-untyped-def]
    res = cli1("demo", "--pause", pause)
    assert res.exit_code == 2 and res.stdout == "" and res.stderr.count("\n") == 1


def test_a_server_that_refuses_us_is_not_replaced(run_cli, one_server) -> None:  # type: ignore[no-untyped-def]
    url = one_server.url.replace("redis://", "redis://nobody:wrong@")
    res = run_cli(["-u", url, "demo"])
    assert res.exit_code == 3
    assert res.stderr.startswith("error: authentication failed at redis://nobody:***@")
    assert "wrong" not in res.stderr and res.stdout == ""
