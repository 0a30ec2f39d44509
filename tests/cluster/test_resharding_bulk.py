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

import threading
import time
from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import Migration, numbers, try_again_replies
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
