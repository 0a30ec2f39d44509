"""The commands not covered by test_resharding.py, across a real slot migration done by hand
(SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT NODE; the `migration` fixture):

- TRYAGAIN: while a slot moves, a command on several keys of it (redrive's and dead-letter's
  scripts, XREAD of streams with one hash tag) whose keys are split between the two nodes is
  answered TRYAGAIN. It is sent again for up to 2s; produced here by MIGRATEing one of two
  hash-tagged keys by hand, then the other once the nodes have answered TRYAGAIN.
- replay --into, import, redrive, tail --group and dead-letter while the slots they write to or
  read from move: what the user sees (output, exit code) and what the new owner holds after
  (every entry exactly once, in order).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import Migration, numbers, try_again_replies, wait_blocked
from tests.conftest import invoke


def when_tried_again(cluster: Any, before: int, action: Callable[[], object]) -> threading.Thread:
    """Run `action` in a thread once a node has answered TRYAGAIN since `before`."""

    def wait_then_act() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if try_again_replies(cluster) > before:
                action()
                return
            time.sleep(0.005)

    t = threading.Thread(target=wait_then_act, daemon=True)
    t.start()
    return t


def fill_dlq(rc: Any, dlq: str, target: str, count: int) -> None:
    pipe = rc.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd(dlq, {"n": n, "dlq_stream": target, "dlq_group": "g", "dlq_id": f"1-{n}"})
    pipe.execute()


def redriven(client: Any, key: str) -> list[int]:
    """The n of each entry of `key` (the first, a seed, is not redriven), checking each of the
    others was published by redrive."""
    entries = client.xrange(key)
    assert all(
        b"redriven_from" in fields and b"dlq_stream" not in fields for _, fields in entries[1:]
    )
    return [int(fields[b"n"]) for _, fields in entries]


# ---- TRYAGAIN ----


def split_slot(rc: Any, migration: Callable[[str], Migration], moved: str, kept: str) -> Migration:
    """Start moving the slot of `moved` and `kept` (one hash tag) and MIGRATE `moved` only."""
    assert rc.keyslot(moved) == rc.keyslot(kept)
    m = migration(kept)
    m.start()
    m.migrate(moved)
    return m


def test_redrive_in_one_slot_waits_until_the_migration_moved_both_keys(cluster, rc, migration):
    dlq, target = "{rd}dlq", "{rd}orders"
    rc.xadd(target, {"n": -1})
    fill_dlq(rc, dlq, target, 50)
    m = split_slot(rc, migration, moved=target, kept=dlq)
    mover = when_tried_again(cluster, try_again_replies(cluster), lambda: m.migrate(dlq))
    res = invoke(["-u", cluster.url, "redrive", dlq, "-o", "json"])
    mover.join(20)
    assert res.exit_code == 0, res.stderr
    assert res.json()["redriven"] == 50
    assert res.json()["per_stream"] == {target: 50}
    m.finish()
    owner = m.new_owner()
    assert redriven(owner, target) == [-1, *range(50)]
    assert owner.xlen(dlq) == 0
    assert m.keys_left() == 0


def test_tryagain_that_outlasts_the_retries_is_one_line_and_changes_nothing(cluster, rc, migration):
    dlq, target = "{rt}dlq", "{rt}orders"
    rc.xadd(target, {"n": -1})
    fill_dlq(rc, dlq, target, 20)
    m = split_slot(rc, migration, moved=target, kept=dlq)
    before = try_again_replies(cluster)
    started = time.monotonic()
    res = invoke(["-u", cluster.url, "redrive", dlq])
    took = time.monotonic() - started
    assert res.exit_code == 3, res.stderr
    [line] = res.stderr.strip().splitlines()
    assert "TRYAGAIN" in line and "still split between two nodes after 2s of retries" in line
    assert "0 entries were redriven before it" in line
    assert 2 <= took < 10
    assert try_again_replies(cluster) - before > 5  # retried, not reported at once
    m.migrate(dlq)
    m.finish()
    assert m.new_owner().xlen(dlq) == 20  # nothing moved
    assert m.new_owner().xlen(target) == 1
    res = invoke(["-u", cluster.url, "redrive", dlq, "-o", "json"])
    assert res.exit_code == 0, res.stderr
    assert res.json()["redriven"] == 20
    assert redriven(m.new_owner(), target) == [-1, *range(20)]


def test_tail_of_two_streams_with_one_hash_tag_reads_across_the_split(cluster, rc, migration):
    a, b = "{tl}a", "{tl}b"
    for n in range(2):
        rc.xadd(a, {"n": n})
        rc.xadd(b, {"n": 10 + n})
    m = split_slot(rc, migration, moved=a, kept=b)
    mover = when_tried_again(cluster, try_again_replies(cluster), lambda: m.migrate(b))
    res = invoke(
        ["-u", cluster.url, "tail", a, b, "--from", "0", "-n", "4", "-o", "ndjson"]
        + ["--timeout", "10s"]
    )
    mover.join(20)
    assert res.exit_code == 0, res.stderr
    got = sorted((e["stream"], e["fields"]["n"]) for e in res.ndjson())
    assert got == [(a, "0"), (a, "1"), (b, "10"), (b, "11")]
    m.finish()
    assert numbers(m.new_owner(), a) == [0, 1]


# ---- the bulk and repair commands across a migration ----


def in_thread(args: list[str]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        result["res"] = invoke(args)

    t = threading.Thread(target=run)
    t.start()
    return t, result


def wait_len(rc: Any, key: str, at_least: int, t: threading.Thread) -> None:
    """Until `key` holds `at_least` entries (rc follows the slot wherever it is); the command
    (`t`) must still be running then: a migration after its end would test nothing."""
    deadline = time.monotonic() + 60
    while not rc.exists(key) or rc.xlen(key) < at_least:
        assert time.monotonic() < deadline, f"{key} did not reach {at_least} entries"
        time.sleep(0.005)
    assert t.is_alive(), "the command ended before the migration"


def fill(rc: Any, key: str, count: int, **extra: str) -> None:
    pipe = rc.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd(key, {"n": n, **extra})
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def test_replay_into_while_its_target_then_its_source_move(cluster, rc, migration):
    source, target = "rp-src", "rp-dst"
    assert rc.keyslot(source) != rc.keyslot(target)
    total = 30_000
    fill(rc, source, total)
    to, src = migration(target), migration(source)
    t, result = in_thread(
        ["-u", cluster.url, "replay", source, "--from", "0", "--into", target]
        + ["--rate", "10000", "-o", "json"]
    )
    wait_len(rc, target, 5_000, t)
    to.whole()
    wait_len(rc, target, 15_000, t)
    src.whole()
    t.join(60)
    res = result["res"]
    assert res.exit_code == 0, res.stderr
    assert res.json()["copied"] == total
    assert numbers(to.new_owner(), target) == list(range(total))
    assert numbers(src.new_owner(), source) == list(range(total))
    assert to.keys_left() == 0 and src.keys_left() == 0


def test_import_keeping_ids_across_a_migration_then_a_rerun_adds_nothing(
    cluster, rc, migration, tmp_path
):
    import streamctl

    key = "imp-1"
    total = 30_000
    path = tmp_path / "export.ndjson"
    path.write_text(
        "".join(
            json.dumps({"stream": "orders", "id": f"{1000 + n}-0", "fields": {"n": str(n)}}) + "\n"
            for n in range(total)
        )
    )
    m = migration(key)
    steps = {5_000: m.start, 6_000: m.migrate_keys, 15_000: m.finish}

    def progress(imported: int, skipped: int) -> None:
        for at in sorted(steps):
            if imported >= at:
                steps.pop(at)()  # while batches are in flight

    with streamctl.connect(cluster.url) as sc:
        result = sc.import_(key, str(path), keep_ids=True, on_progress=progress)
        assert not steps, "the migration did not happen during the import"
        assert (result.imported, result.skipped) == (total, 0)
        again = sc.import_(key, str(path), keep_ids=True)
        assert (again.imported, again.skipped) == (0, total)
    entries = m.new_owner().xrange(key)
    assert [e[0].decode() for e in entries] == [f"{1000 + n}-0" for n in range(total)]
    assert [int(f[b"n"]) for _, f in entries] == list(range(total))
    assert m.keys_left() == 0


def test_redrive_across_slots_while_the_target_then_the_dlq_move(cluster, rc, migration):
    from streamctl.core.pending import dlq_marks_key

    dlq, target = "rdx-dlq", "rdx-orders"
    assert rc.keyslot(dlq) != rc.keyslot(target)
    total = 20_000
    rc.xadd(target, {"n": -1})
    fill(rc, dlq, total, dlq_stream=target, dlq_group="g", dlq_id="1-0")
    to, home = migration(target), migration(dlq)  # the marks hash moves with the target
    assert rc.keyslot(dlq_marks_key(target)) == rc.keyslot(target)
    t, result = in_thread(["-u", cluster.url, "redrive", dlq, "--rate", "8000", "-o", "json"])
    wait_len(rc, target, 4_000, t)
    to.whole()
    wait_len(rc, target, 12_000, t)
    home.whole()
    t.join(60)
    res = result["res"]
    assert res.exit_code == 0, res.stderr
    assert (res.json()["redriven"], res.json()["per_stream"]) == (total, {target: total})
    assert redriven(to.new_owner(), target) == [-1, *range(total)]
    assert home.new_owner().xlen(dlq) == 0
    assert rc.hlen(dlq_marks_key(target)) == 0


def delivered_twice(rc: Any, key: str, group: str, count: int) -> list[str]:
    """`count` entries in `key`, each delivered twice to consumer c1 of `group` (pending)."""
    fill(rc, key, count)
    rc.xgroup_create(key, group, id="0")
    rc.xreadgroup(group, "c1", {key: ">"}, count=count)
    [[_, entries]] = rc.xreadgroup(group, "c1", {key: "0"}, count=count)
    return [eid.decode() for eid, _ in entries]


def test_dead_letter_across_slots_while_the_dlq_then_the_stream_move(cluster, rc, migration):
    import streamctl
    from streamctl.core.pending import dlq_marks_key

    stream, dlq = "dlx-orders", "dlx-dlq"
    assert rc.keyslot(stream) != rc.keyslot(dlq)
    ids = delivered_twice(rc, stream, "g", 500)
    to, home = migration(dlq), migration(stream)
    steps = {1: to.whole, 3: home.whole}  # after the 1st and the 3rd batch of 100
    batches = 0

    def between_batches() -> bool:
        nonlocal batches
        batches += 1
        if batches in steps:
            steps.pop(batches)()
        return False

    with streamctl.connect(cluster.url) as sc:
        result = sc.dead_letter(stream, "g", dlq, max_deliveries=2, should_stop=between_batches)
    assert not steps, "the migrations did not happen during the run"
    assert [d.id for d in result.moved] == ids
    assert all(d.deliveries == 2 and d.consumer == "c1" for d in result.moved)
    copies = to.new_owner().xrange(dlq)
    assert [f[b"dlq_id"].decode() for _, f in copies] == ids  # each once, in order
    assert [e[0].decode() for e in copies] == [d.dlq_id for d in result.moved]
    assert home.new_owner().xpending(stream, "g")["pending"] == 0
    assert rc.hlen(dlq_marks_key(dlq)) == 0


def test_dead_letter_into_a_new_dlq_of_the_same_slot_waits_for_the_migration_to_end(
    cluster, rc, migration
):
    stream, dlq = "{ds}orders", "{ds}dlq"
    ids = delivered_twice(rc, stream, "g", 200)
    m = migration(stream)
    m.start()
    m.migrate_keys()  # the stream is on the target, the DLQ nowhere yet: TRYAGAIN until the end
    ender = when_tried_again(cluster, try_again_replies(cluster), m.finish)
    res = invoke(
        ["-u", cluster.url, "pending", stream, "g", "--dead-letter", dlq]
        + ["--max-deliveries", "2", "-o", "json"]
    )
    ender.join(20)
    assert res.exit_code == 0, res.stderr
    assert [d["id"] for d in res.json()["moved"]] == ids
    owner = m.new_owner()
    assert [f[b"dlq_id"].decode() for _, f in owner.xrange(dlq)] == ids
    assert owner.xpending(stream, "g")["pending"] == 0


def test_tail_group_across_a_migration_writes_and_acks_each_entry_once(cluster, rc, migration):
    key = "tg-1"
    for n in range(3):
        rc.xadd(key, {"n": n})
    m = migration(key)
    t, result = in_thread(
        ["-u", cluster.url, "tail", key, "--group", "g", "--create-group", "--from", "0"]
        + ["--consumer", "c1", "-n", "7", "-o", "ndjson", "--timeout", "20s"]
    )
    wait_blocked(cluster, 1)  # the 3 entries written and acked, the group's read blocked
    m.start()
    m.migrate_keys()  # the blocked read's key leaves the source
    rc.xadd(key, {"n": 3})  # on the target (ASK)
    time.sleep(0.2)
    m.finish()
    for n in range(4, 7):
        m.new_owner().xadd(key, {"n": n})
    t.join(30)
    res = result["res"]
    assert res.exit_code == 0, res.stderr
    assert [e["fields"]["n"] for e in res.ndjson()] == [str(n) for n in range(7)]
    owner = m.new_owner()
    [group] = owner.xinfo_groups(key)
    last = owner.xrevrange(key, count=1)[0][0]
    assert (group["name"], group["pending"], group["last-delivered-id"]) == (b"g", 0, last)
    assert (group["entries-read"], group["lag"]) == (7, 0)
    assert owner.xpending(key, "g")["pending"] == 0
    assert m.keys_left() == 0


def test_tail_group_blocked_on_hash_tagged_streams_while_one_of_them_moves(cluster, rc, migration):
    a, b, other = "{tgh}a", "{tgh}b", "tgh-other"
    assert rc.keyslot(a) != rc.keyslot(other)
    for name in (a, b, other):
        rc.xadd(name, {"n": f"{name}-0"})
    m = migration(a)
    t, result = in_thread(
        ["-u", cluster.url, "tail", a, b, other, "--group", "g", "--create-group"]
        + ["--from", "0", "--consumer", "c1", "-n", "6", "-o", "ndjson", "--timeout", "20s"]
    )
    wait_blocked(cluster, 2)  # one read per slot: (a, b) and other
    mover = when_tried_again(cluster, try_again_replies(cluster), lambda: m.migrate(b))
    m.start()
    m.migrate(a)  # the blocked read of a and b wakes up with its keys split: TRYAGAIN
    mover.join(20)
    m.finish()
    for name in (a, b, other):
        rc.xadd(name, {"n": f"{name}-1"})
    t.join(30)
    res = result["res"]
    assert res.exit_code == 0, res.stderr
    assert sorted(e["fields"]["n"] for e in res.ndjson()) == sorted(
        f"{name}-{n}" for name in (a, b, other) for n in range(2)
    )
    for name in (a, b, other):
        assert rc.xpending(name, "g")["pending"] == 0
        [group] = rc.xinfo_groups(name)
        assert (group["entries-read"], group["lag"]) == (2, 0)
