"""core.replay, core.export and core.import_ on the three real servers: replay into a stream,
rewind a group, export and import (byte for byte, resumable, malformed input, groups' state)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from streamctl.core import export, import_, replay
from streamctl.core.filters import compile_filter
from streamctl.core.models_transfer import ImportResult
from streamctl.core.wire import raw_command
from streamctl.errors import BadInput, NotFound, PartialFailure, ServerRefused
from streamctl.inputs import EntryBlock, read_envelope_blocks, read_envelopes
from streamctl.render.serialize import ndjson_lines
from streamctl.render.transfer import group_state_lines

BINARY_FIELDS = [
    b"order_id",
    b"42",
    b"\xff\xfe-name",  # a field name that is not UTF-8
    b"\x00\x01\x80\xff",  # a value that is not UTF-8
    b"text",
    "h\u00e9llo \u2603".encode(),
    b"dup",
    b"1",
    b"dup",  # a repeated field name
    b"2",
    b"empty",
    b"",
]


def raw_entries(r: redis.Redis, stream: str) -> list[Any]:
    return [[e[0], list(e[1])] for e in raw_command(r, "XRANGE", stream, "-", "+")]


def fill(r: redis.Redis, stream: str, n: int, start_ms: int = 1) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(
            stream, {"i": str(i), "kind": "even" if i % 2 == 0 else "odd"}, id=f"{start_ms + i}-0"
        )
    pipe.execute()


def values(r: redis.Redis, stream: str, name: bytes = b"i") -> list[bytes]:
    return [f[name] for _, f in r.xrange(stream)]


# ---- replay --into ----


def test_replay_copies_fields_byte_for_byte_with_new_ids(r):
    r.execute_command("XADD", "src", "5-0", *BINARY_FIELDS)
    fill(r, "src", 3, start_ms=10)
    result = replay.replay_into(r, "src", r, "dst", start="-")
    assert (result.copied, result.scanned, result.first_id, result.last_id) == (4, 4, "5-0", "12-0")
    src, dst = raw_entries(r, "src"), raw_entries(r, "dst")
    assert [e[1] for e in dst] == [e[1] for e in src]
    assert [e[0].decode() for e in dst] == [
        result.first_new_id,
        *[e[0].decode() for e in dst[1:-1]],
        result.last_new_id,
    ]
    assert all(int(e[0].split(b"-")[0]) > 1000 for e in dst)  # new ids (*), not the old ones


def test_replay_range_match_and_count(r):
    fill(r, "src", 20)
    result = replay.replay_into(
        r, "src", r, "dst", start="(3-0", end="15", filter=compile_filter(["kind=ev*"])
    )
    # 4..15 inclusive, even i: ids 5, 7, ..., 15 -> i = 4, 6, ..., 14
    assert values(r, "dst") == [str(i).encode() for i in range(4, 15, 2)]
    assert (result.scanned, result.copied, result.first_id, result.last_id) == (
        12,
        6,
        "5-0",
        "15-0",
    )
    r.delete("dst")
    result = replay.replay_into(r, "src", r, "dst", start="-", count=3)
    assert values(r, "dst") == [b"0", b"1", b"2"]
    assert result.resume_after == "3-0"


def test_replay_into_itself_does_not_chase_its_own_tail(r):
    fill(r, "s", 50)
    result = replay.replay_into(r, "s", r, "s", start="-", batch_size=7)
    assert result.copied == 50
    assert r.xlen("s") == 100


def test_replay_stop_and_continue_gives_the_range_exactly_once(r):
    fill(r, "src", 95)
    seen = {"copied": 0}

    def progress(copied: int, scanned: int) -> None:
        seen["copied"] = copied

    result = replay.replay_into(
        r,
        "src",
        r,
        "dst",
        start="-",
        batch_size=10,
        on_progress=progress,
        should_stop=lambda: seen["copied"] >= 25,
    )
    assert result.stopped
    assert (result.copied, result.last_id, result.resume_after) == (30, "30-0", "30-0")
    rest = replay.replay_into(r, "src", r, "dst", start=f"({result.resume_after}")
    assert (rest.copied, rest.stopped) == (65, False)
    assert values(r, "dst") == values(r, "src")


def test_replay_stop_with_match_resumes_after_the_last_id_read(r):
    fill(r, "src", 40)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    m = compile_filter(["kind=odd"])
    first = replay.replay_into(
        r, "src", r, "dst", start="-", filter=m, batch_size=10, should_stop=stop
    )
    assert first.stopped
    rest = replay.replay_into(r, "src", r, "dst", start=f"({first.resume_after}", filter=m)
    assert values(r, "dst") == [str(i).encode() for i in range(1, 40, 2)]
    assert first.copied + rest.copied == 20


def test_replay_rate_limits(r):
    fill(r, "src", 30)
    started = time.monotonic()
    result = replay.replay_into(r, "src", r, "dst", start="-", rate=100)
    elapsed = time.monotonic() - started
    assert result.copied == 30
    assert 0.29 <= elapsed < 3  # 30 entries at 100/s, in chunks of 10: the last is due at 0.3 s


def test_replay_dry_run_writes_nothing(r):
    fill(r, "src", 10)
    result = replay.replay_into(r, "src", r, "dst", start="5", dry_run=True)
    assert (result.copied, result.first_id, result.last_id, result.dry_run) == (
        6,
        "5-0",
        "10-0",
        True,
    )
    assert not r.exists("dst")


def test_replay_errors(r):
    with pytest.raises(NotFound):
        replay.replay_into(r, "nope", r, "dst", start="-")
    fill(r, "src", 3)
    r.set("str", "x")
    with pytest.raises(ServerRefused, match="WRONGTYPE: key 'str' holds a string"):
        replay.replay_into(r, "src", r, "str", start="-")
    for kw in ({"count": 0}, {"rate": 0}):
        with pytest.raises(BadInput):
            replay.replay_into(r, "src", r, "dst", start="-", **kw)
    with pytest.raises(BadInput):
        replay.replay_into(r, "src", r, "dst", start="yesterday")
    with pytest.raises(BadInput):
        compile_filter(["nofield"])
    assert not r.exists("dst")


def test_replay_of_an_empty_range(r):
    fill(r, "src", 3)
    result = replay.replay_into(r, "src", r, "dst", start="100")
    assert (result.copied, result.resume_after) == (0, None)
    assert not r.exists("dst")


# ---- replay --group: rewind ----


def test_rewind_group_redelivers_from_start(r):
    fill(r, "s", 10)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "c", {"s": ">"})
    result = replay.rewind_group(r, "s", "g", "4-0")
    assert (result.previous_id, result.new_id, result.redeliver, result.skip) == (
        "10-0",
        "3-0",
        7,
        0,
    )
    assert result.entries_read == 3
    [info] = r.xinfo_groups("s")
    assert (info["last-delivered-id"], info["entries-read"], info["lag"]) == (b"3-0", 3, 7)
    again = r.xreadgroup("g", "c", {"s": ">"})
    assert [e[0] for e in again[0][1]] == [f"{i}-0".encode() for i in range(4, 11)]


def test_rewind_forward_skips_and_dry_run_changes_nothing(r):
    fill(r, "s", 10)
    r.xgroup_create("s", "g", id="0")
    plan = replay.rewind_group(r, "s", "g", "(7-0", dry_run=True)
    assert (plan.new_id, plan.redeliver, plan.skip, plan.dry_run) == ("7-0", 0, 7, True)
    assert r.xinfo_groups("s")[0]["last-delivered-id"] == b"0-0"
    replay.rewind_group(r, "s", "g", "-")
    assert r.xinfo_groups("s")[0]["last-delivered-id"] == b"0-0"


def test_rewind_missing_group(r):
    fill(r, "s", 2)
    with pytest.raises(NotFound, match="group 'nope' does not exist on stream 's'"):
        replay.rewind_group(r, "s", "nope", "-")


# ---- export / import ----


def export_text(r: redis.Redis, stream: str, *, with_groups: bool = False, **kw: Any) -> str:
    out: list[str] = []
    export.export_stream(
        r,
        stream,
        lambda name, entries: out.append(ndjson_lines(name, entries)),
        write_groups=(lambda name, gs: out.append(group_state_lines(name, gs)))
        if with_groups
        else None,
        **kw,
    )
    return "".join(out)


def import_file(r: redis.Redis, stream: str, path: Path, **kw: Any) -> ImportResult:
    """What `import` runs: the envelopes read a block at a time where the lines allow it."""
    return import_.import_entries(r, stream, read_envelope_blocks(str(path)), **kw)


def test_export_import_round_trip_byte_for_byte(r, tmp_path):
    r.execute_command("XADD", "src", "5-0", *BINARY_FIELDS)
    r.execute_command("XADD", "src", "5-1", b"\xc3", b"\xa9")  # half a UTF-8 character each
    fill(r, "src", 100, start_ms=10)
    path = tmp_path / "src.ndjson"
    path.write_text(export_text(r, "src"))
    result = import_file(r, "copy", path, keep_ids=True)
    assert (result.imported, result.skipped, result.first_id, result.last_id) == (
        102,
        0,
        "5-0",
        "109-0",
    )
    assert raw_entries(r, "copy") == raw_entries(r, "src")
    # without --keep-ids: the same fields in the same order, new ids
    result = import_file(r, "fresh", path)
    assert result.imported == 102
    assert [e[1] for e in raw_entries(r, "fresh")] == [e[1] for e in raw_entries(r, "src")]


def test_import_keep_ids_skips_what_is_there(r, tmp_path):
    fill(r, "src", 50)
    lines = export_text(r, "src").splitlines(keepends=True)
    half = tmp_path / "half.ndjson"
    half.write_text("".join(lines[:20]))
    full = tmp_path / "full.ndjson"
    full.write_text("".join(lines))
    assert import_file(r, "copy", half, keep_ids=True).imported == 20
    again = import_file(r, "copy", full, keep_ids=True, batch_size=7)
    assert (again.imported, again.skipped) == (30, 20)
    assert raw_entries(r, "copy") == raw_entries(r, "src")
    assert import_file(r, "copy", full, keep_ids=True).imported == 0


@pytest.mark.parametrize("reader", [read_envelopes, read_envelope_blocks])
def test_import_keep_ids_rerun_in_batches_across_blocks(r, tmp_path, reader):
    """The block reader (entries packed column by column) and the line reader write the same:
    a rerun skips what is there, batches cut blocks anywhere, nothing lost or repeated."""
    fill(r, "src", 2500)
    lines = export_text(r, "src").splitlines(keepends=True)
    part = tmp_path / "part.ndjson"
    part.write_text("".join(lines[:1234]))
    full = tmp_path / "full.ndjson"
    full.write_text("".join(lines))
    if reader is read_envelope_blocks:
        assert {type(b) for b in reader(str(full))} == {EntryBlock}

    def run(path: Path, **kw: Any) -> ImportResult:
        return import_.import_entries(r, "copy", reader(str(path)), keep_ids=True, **kw)

    assert run(part, batch_size=300).imported == 1234
    again = run(full, batch_size=1000)
    assert (again.imported, again.skipped, again.last_source_id) == (1266, 1234, "2500-0")
    assert raw_entries(r, "copy") == raw_entries(r, "src")
    assert (run(full).imported, r.xlen("copy")) == (0, 2500)
    fresh = import_.import_entries(r, "fresh", reader(str(full)), batch_size=333)
    assert fresh.imported == 2500
    assert [e[1] for e in raw_entries(r, "fresh")] == [e[1] for e in raw_entries(r, "src")]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("{not json", "line 4: invalid JSON"),
        ('{"id": "9-0"}', "line 4: no 'fields'"),
        ('{"fields": {"a": "1"}}', "line 4: no 'id'"),
        ('{"id": "banana", "fields": {"a": "1"}}', "line 4: bad id 'banana'"),
        ('{"id": "9-0", "fields": {"a": 1}}', "line 4: a field name or value must be a string"),
        ('{"id": "9-0", "fields": {}}', "line 4: 'fields' is empty"),
        ('["9-0"]', "line 4: expected a JSON object"),
        ('{"id": "2-0", "fields": {"a": "1"}}', "line 4: id 2-0 is not after the previous id 3-0"),
    ],
)
def test_malformed_line_stops_after_the_lines_before_it(r, tmp_path, bad_line, message):
    fill(r, "src", 6)
    lines = export_text(r, "src").splitlines(keepends=True)
    path = tmp_path / "in.ndjson"
    path.write_text("".join(lines[:3]) + bad_line + "\n" + "".join(lines[3:]))
    with pytest.raises(PartialFailure) as exc:
        import_file(r, "copy", path, keep_ids=True)
    assert message in str(exc.value)
    assert str(exc.value).endswith("; 3 entries before it were imported")
    assert (exc.value.exit_code, exc.value.done) == (2, 3)
    assert [i.decode() for i, _ in r.xrange("copy")] == ["1-0", "2-0", "3-0"]


def test_malformed_line_in_a_later_batch(r, tmp_path):
    fill(r, "src", 30)
    lines = export_text(r, "src").splitlines(keepends=True)
    path = tmp_path / "in.ndjson"
    path.write_text("".join(lines[:25]) + "oops\n" + "".join(lines[25:]))
    with pytest.raises(PartialFailure, match="line 26: invalid JSON"):
        import_file(r, "copy", path, batch_size=10)
    assert r.xlen("copy") == 25


def test_import_blank_lines_and_id_zero(r, tmp_path):
    path = tmp_path / "in.ndjson"
    path.write_text('\n{"id": "1-0", "fields": {"a": "1"}}\n\n')
    assert import_file(r, "s", path, keep_ids=True).imported == 1
    path.write_text('{"id": "0-0", "fields": {"a": "1"}}\n')
    with pytest.raises(PartialFailure, match="line 1: id 0-0 cannot be written"):
        import_file(r, "t", path, keep_ids=True)


def test_import_dry_run_writes_nothing(r, tmp_path):
    fill(r, "src", 10)
    path = tmp_path / "in.ndjson"
    path.write_text(export_text(r, "src", with_groups=False))
    result = import_file(r, "copy", path, keep_ids=True, dry_run=True)
    assert (result.imported, result.first_id, result.last_id) == (10, "1-0", "10-0")
    assert not r.exists("copy")


def test_import_into_a_key_of_another_type(r, tmp_path):
    r.set("k", "v")
    path = tmp_path / "in.ndjson"
    path.write_text('{"id": "1-0", "fields": {"a": "1"}}\n')
    with pytest.raises(ServerRefused, match="WRONGTYPE"):
        import_file(r, "k", path)


@pytest.fixture
def with_groups(r: redis.Redis) -> redis.Redis:
    """src: ten entries; group g read 1..5 as alice and bob (acked 1, 2, 4; 3 pending for
    alice, 5 for bob), consumer carol idle with nothing pending; group h at 7-0."""
    fill(r, "src", 10)
    r.xgroup_create("src", "g", id="0")
    r.xreadgroup("g", "alice", {"src": ">"}, count=3)
    r.xreadgroup("g", "bob", {"src": ">"}, count=2)
    r.xclaim("src", "g", "alice", 0, ["3-0"])  # deliveries 2
    r.xack("src", "g", "1-0", "2-0", "4-0")
    r.xgroup_createconsumer("src", "g", "carol")
    r.xgroup_create("src", "h", id="7-0")
    return r


def pel(r: redis.Redis, stream: str, group: str) -> list[tuple[bytes, bytes, int]]:
    return [
        (p["message_id"], p["consumer"], p["times_delivered"])
        for p in r.xpending_range(stream, group, "-", "+", 100)
    ]


def test_groups_state_round_trip_keep_ids(with_groups, tmp_path):
    r = with_groups
    text = export_text(r, "src", with_groups=True)
    first = text.splitlines()[0]
    assert first.startswith('{"stream":"src","group":{"name":"g","last_delivered_id":"5-0"')
    path = tmp_path / "in.ndjson"
    path.write_text(text)
    result = import_file(r, "copy", path, keep_ids=True)
    assert [(g.name, g.action, g.last_delivered_id, g.pending_restored) for g in result.groups] == [
        (b"g", "created", "5-0", 2),
        (b"h", "created", "7-0", 0),
    ]
    assert raw_entries(r, "copy") == raw_entries(r, "src")
    for group in ("g", "h"):
        assert pel(r, "copy", group) == pel(r, "src", group)
    src_groups = {g["name"]: g for g in r.xinfo_groups("src")}
    for g in r.xinfo_groups("copy"):
        s = src_groups[g["name"]]
        assert (g["last-delivered-id"], g["pending"], g["consumers"]) == (
            s["last-delivered-id"],
            s["pending"],
            s["consumers"],
        )
    assert {c["name"] for c in r.xinfo_consumers("copy", "g")} == {b"alice", b"bob", b"carol"}
    lags = {g["name"]: g["lag"] for g in r.xinfo_groups("copy")}
    assert lags == {b"g": 5, b"h": 3}
    # a rerun finds the groups and leaves them as they are
    again = import_file(r, "copy", path, keep_ids=True)
    assert [g.action for g in again.groups] == ["exists", "exists"]
    assert again.imported == 0


def test_groups_state_mapped_onto_new_ids(with_groups, tmp_path):
    r = with_groups
    path = tmp_path / "in.ndjson"
    path.write_text(export_text(r, "src", with_groups=True))
    fill(r, "fresh", 2, start_ms=1)  # entries already there before the import
    result = import_file(r, "fresh", path)
    new_ids = [i for i, _ in r.xrange("fresh")][2:]
    by_name = {g.name: g for g in result.groups}
    assert by_name[b"g"].last_delivered_id == new_ids[4].decode()
    assert by_name[b"h"].last_delivered_id == new_ids[6].decode()
    assert pel(r, "fresh", "g") == [(new_ids[2], b"alice", 2), (new_ids[4], b"bob", 1)]
    assert r.xreadgroup("g", "x", {"fresh": ">"}, count=1)[0][1][0][0] == new_ids[5]


def test_groups_line_after_entries_is_rejected(with_groups, tmp_path):
    r = with_groups
    lines = export_text(r, "src", with_groups=True).splitlines(keepends=True)
    path = tmp_path / "in.ndjson"
    path.write_text("".join(lines[2:5]) + lines[0])
    with pytest.raises(PartialFailure, match="line 4: the groups' state must come before"):
        import_file(r, "copy", path, keep_ids=True)
    assert r.xlen("copy") == 3


def test_pending_entry_deleted_before_export_is_dropped(with_groups, tmp_path):
    r = with_groups
    r.xdel("src", "3-0")
    path = tmp_path / "in.ndjson"
    path.write_text(export_text(r, "src", with_groups=True))
    result = import_file(r, "copy", path, keep_ids=True)
    g = result.groups[0]
    assert (g.pending_restored, g.pending_dropped) == (1, 1)
    assert pel(r, "copy", "g") == [(b"5-0", b"bob", 1)]


def test_export_range_count_and_stop(r):
    fill(r, "src", 30)
    text = export_text(r, "src", start="(5-0", end="20", count=10)
    assert [line.split('"id":"')[1].split('"')[0] for line in text.splitlines()] == [
        f"{i}-0" for i in range(6, 16)
    ]
    out: list[str] = []
    result = export.export_stream(
        r,
        "src",
        lambda name, entries: out.append(ndjson_lines(name, entries)),
        batch_size=8,
        should_stop=lambda: True,
    )
    assert (result.stopped, result.count, result.last_id) == (True, 8, "8-0")


# ---- each client's errors name its own server; a group is restored whole ----


@pytest.fixture
def own_server() -> Any:
    """A Redis 8.2 of the test's own, which the test may kill."""
    from tests.servers import server_binary, start_server

    if server_binary("redis8.2") is None:
        pytest.skip("redis8.2 server not available")
    srv = start_server("redis8.2")
    yield srv
    srv.stop()


def test_replay_source_lost_mid_run_names_the_source_not_the_target(own_server, one_server, r1):
    """The target is connected last; the source dies after the first chunk: the failure names
    the source's URL, as a lost connection (it had answered), with no TLS hint."""
    from streamctl.config import resolve_settings
    from streamctl.core.connection import connect, settings_of

    fill(own_server.client(), "src", 50)
    source = connect(resolve_settings(url=own_server.url, timeout=2))
    target = connect(resolve_settings(url=one_server.url, timeout=2))
    assert settings_of(source).url == own_server.url  # type: ignore[union-attr]
    assert settings_of(target).url == one_server.url  # type: ignore[union-attr]

    def kill_source(copied: int, scanned: int) -> None:
        if own_server.proc is not None and own_server.proc.poll() is None:
            own_server.kill()

    with pytest.raises(PartialFailure) as failed:
        replay.replay_into(
            source, "src", target, "copy", start="-", batch_size=10, on_progress=kill_source
        )
    message = failed.value.message
    assert message.startswith(f"lost the connection to {own_server.url}: "), message
    assert one_server.url not in message and "rediss://" not in message
    copied = failed.value.done  # every chunk sent was acknowledged: reading failed
    assert 10 <= copied < 50
    assert message.endswith(
        f"; {copied} entries were copied before it; continue with --from '({copied}-0'"
    ), message
    assert failed.value.exit_code == 3
    assert values(r1, "copy") == [str(i).encode() for i in range(copied)]


def test_replay_target_lost_mid_run_names_the_target(own_server, one_server, r1):
    from streamctl.config import resolve_settings
    from streamctl.core.connection import connect

    fill(r1, "src", 50)
    target = connect(resolve_settings(url=own_server.url, timeout=2))
    source = connect(resolve_settings(url=one_server.url, timeout=2))  # connected last

    def kill_target(copied: int, scanned: int) -> None:
        if own_server.proc is not None and own_server.proc.poll() is None:
            own_server.kill()

    with pytest.raises(PartialFailure) as failed:
        replay.replay_into(
            source,
            "src",
            target,
            "copy",
            start="-",
            batch_size=10,
            target_server=own_server.url,
            on_progress=kill_target,
        )
    message = failed.value.message
    assert message.startswith(f"target {own_server.url}: lost the connection to {own_server.url}")
    assert one_server.url not in message
    assert failed.value.exit_code == 3


def test_only_a_connection_that_never_answered_cannot_connect(own_server):
    """A connection that had answered and fails (even on reconnecting) is lost; a first
    exchange that fails is "cannot connect"."""
    from streamctl.config import resolve_settings
    from streamctl.core.connection import connect, translate_error

    url = own_server.url
    settings = resolve_settings(url=url, timeout=2)
    answered = connect(settings)
    assert answered.ping()
    own_server.kill()
    fresh = connect(settings)
    with pytest.raises(redis.ConnectionError) as never:
        fresh.ping()
    with pytest.raises(redis.ConnectionError) as lost:
        answered.ping()
    first, later = translate_error(never.value, settings), translate_error(lost.value, settings)
    assert first is not None and later is not None
    assert first.message.startswith(f"cannot connect to {url}: "), first.message
    assert later.message.startswith(f"lost the connection to {url}: "), later.message
    assert (first.exit_code, later.exit_code) == (3, 3)


def test_restore_group_script_leaves_an_existing_group_untouched(r):
    """The script creates the group or touches nothing: BUSYGROUP, and the group's PEL and
    consumers stay as they were."""
    fill(r, "s", 3)
    r.xgroup_create("s", "g", id="0")
    r.xreadgroup("g", "alice", {"s": ">"}, count=1)
    before = (pel(r, "s", "g"), r.xinfo_groups("s"))
    args = ["g", "3-0", "", 1, "bob", "bob", 0, 1, 2, "2-0", "3-0"]
    with pytest.raises(redis.ResponseError, match="BUSYGROUP"):
        raw_command(r, "EVAL", import_._RESTORE_GROUP_SCRIPT, 1, "s", *args)
    assert (pel(r, "s", "g"), r.xinfo_groups("s")) == before
    assert [c["name"] for c in r.xinfo_consumers("s", "g")] == [b"alice"]


def test_group_with_a_large_pel_is_restored_exactly(r, tmp_path):
    """More pending entries than one XCLAIM run, several consumers and delivery counts: the PEL
    comes back entry for entry, idle times kept."""
    n = import_.CLAIM_RUN * 2 + 500
    fill(r, "src", n)
    r.xgroup_create("src", "g", id="0")
    r.xreadgroup("g", "alice", {"src": ">"}, count=n // 2)
    r.xreadgroup("g", "bob", {"src": ">"}, count=n - n // 2)
    r.xclaim("src", "g", "bob", 0, [f"{i}-0" for i in range(1, n, 7)])  # deliveries 2
    r.xgroup_createconsumer("src", "g", "carol")
    path = tmp_path / "in.ndjson"
    path.write_text(export_text(r, "src", with_groups=True))
    result = import_file(r, "copy", path, keep_ids=True)
    [g] = result.groups
    assert (g.action, g.pending_restored, g.pending_dropped, g.consumers) == ("created", n, 0, 3)

    def full_pel(stream: str) -> list[tuple[bytes, bytes, int]]:
        return [
            (p["message_id"], p["consumer"], p["times_delivered"])
            for p in r.xpending_range(stream, "g", "-", "+", n + 1)
        ]

    assert full_pel("copy") == full_pel("src")
    assert len(full_pel("copy")) == n
    idle = {p["message_id"]: p["time_since_delivered"] for p in r.xpending_range(
        "copy", "g", "-", "+", n)}  # fmt: skip
    for p in r.xpending_range("src", "g", "-", "+", n):
        assert abs(idle[p["message_id"]] - p["time_since_delivered"]) < 2000


def test_claim_runs_group_consecutive_entries():
    from streamctl.core.models_transfer import PendingState

    pending = [
        (PendingState("1-0", b"a", 1, 5), "1-0"),
        (PendingState("2-0", b"a", 1, 5), "2-0"),
        (PendingState("3-0", b"b", 1, 5), "3-0"),
        (PendingState("4-0", b"b", 1, 5), None),  # not imported
        (PendingState("5-0", b"b", 2, 5), "5-0"),
    ]
    args, claimed, unmapped = import_._claim_runs(pending)
    assert (claimed, unmapped) == (4, 1)
    assert args == [b"a", 5, 1, 2, "1-0", "2-0", b"b", 5, 1, 1, "3-0", b"b", 5, 2, 1, "5-0"]


def test_import_keep_ids_failure_says_rerun_the_same_command(own_server, tmp_path):
    from streamctl.config import resolve_settings
    from streamctl.core.connection import connect

    path = tmp_path / "in.ndjson"
    path.write_text("".join(f'{{"id": "{i}-0", "fields": {{"i": "{i}"}}}}\n' for i in range(1, 40)))
    client = connect(resolve_settings(url=own_server.url, timeout=2))

    def kill(imported: int, skipped: int) -> None:
        if own_server.proc is not None and own_server.proc.poll() is None:
            own_server.kill()

    with pytest.raises(PartialFailure) as failed:
        import_file(client, "dst", path, keep_ids=True, batch_size=10, on_progress=kill)
    message = failed.value.message
    assert message.startswith(f"lost the connection to {own_server.url}: "), message
    # two batches are in flight at a time. The server dies at the first progress call, but
    # the first batch's replies may be read from the socket after (it answered before dying),
    # and the next batch may still be written to the closed socket before the failure is seen:
    # the message names exactly the entries sent whose fate is unknown, whichever happened
    found = re.search(
        r"; (\d+) entr(?:y was|ies were) imported before it, and up to (\d+) more "
        r"\(lines (\d+)-(\d+)\) may have been; rerun the same command to continue$",
        message,
    )
    assert found, message
    imported, unknown, first, last = map(int, found.groups())
    assert (imported, first, last) in ((0, 1, 20), (10, 11, 20), (10, 11, 30)), message
    assert unknown == last - first + 1, message
    assert "--keep-ids" not in message


def test_group_restored_after_a_deleted_entry_gets_no_guessed_entries_read(r, tmp_path):
    """An entry after the group's position was deleted: the read counter cannot be known, so
    import gives none (the rule of `group create`) instead of counting the deleted entry."""
    fill(r, "dst", 10)
    r.xdel("dst", "8-0")
    group = (
        '{"stream":"dst","group":{"name":"g","last_delivered_id":"5-0","entries_read":5,'
        '"consumers":[],"pending":[]}}\n'
    )
    path = tmp_path / "in.ndjson"
    path.write_text(group + '{"id":"1-0","fields":{"i":"0"}}\n')
    result = import_file(r, "dst", path, keep_ids=True)
    assert [(g.action, g.last_delivered_id, g.entries_read) for g in result.groups] == [
        ("created", "5-0", None)
    ]
    from streamctl.core.groups import get_group

    info = get_group(r, "dst", "g")
    assert (info.entries_read, info.lag) == (None, 4)  # 6-0, 7-0, 9-0, 10-0 to deliver
