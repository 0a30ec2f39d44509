"""The server SIGKILLed and restarted (AOF on, appendfsync always) during `import --keep-ids` and
`replay --into`, with the streams compared entry by entry, byte for byte, afterwards.

The guarantees, checked exactly:
- import --keep-ids: the command fails with exit 3 and one line naming how many entries the
  server acknowledged (N) and the lines of the batch in flight; after the restart the target is
  a prefix of the source of length L with N <= L <= N + that batch (every acknowledged entry
  survived); the same command run again skips the L ids already there and the target is then
  exactly the source: every id and field once, the same bytes (exactly-once per id).
- replay --into (same server, or --target-url another one): the replay writes NEW ids (`*`), so
  it cannot tell an entry it wrote from one it did not. The one-line failure says how many
  entries were acknowledged (N), that up to one batch more may have been applied, and
  `--from '(ID'` with ID the source id of the N-th entry. The rerun with that `--from` loses
  nothing, but the entries of the batch in flight that the server applied without its reply
  arriving (L - N of them, at most one batch: 1000) are in the target twice. That is the
  documented guarantee (nothing lost, duplicates at most one batch), asserted as such: the
  target ends as source[:L] + source[N:].
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import ISOLATED_ENV_DROP, start_or_skip
from tests.servers import ServerProcess, server_binary, start_server

TOTAL = 150_000
KILL_AT = 20_000
BATCH = 1000  # core.import_.BATCH, core.replay.BATCH: the import batch, the replay chunk
BASE_MS = 1795773600000

IMPORT_FAILED = re.compile(
    r"error: (?P<why>.+); (?P<n>[\d,]+) (?:entry was|entries were) imported before it, and up to "
    r"(?P<up>[\d,]+) more \(lines (?P<first>\d+)-(?P<last>\d+)\) may have been; "
    r"rerun the same command to continue"
)
REPLAY_FAILED = re.compile(
    r"error: (?P<why>.+); (?P<n>[\d,]+) (?:entry was|entries were) copied before it"
    r"(?:, and up to (?P<up>[\d,]+) more may have been)?"
    r"; continue with --from '\((?P<after>\d+-\d+)'"
)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV_DROP}


def streamctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamctl", *args]


def number(text: str) -> int:
    return int(text.replace(",", ""))


def raw_client(srv: ServerProcess) -> redis.Redis:
    """A client whose XRANGE replies are left as the server sent them: [id, [f, v, f, v...]]
    (redis-py's own reply is a dict: repeated field names collapse and order is not checked)."""
    client = srv.client()
    client.set_response_callback("XRANGE", lambda reply, **kw: reply)
    return client


Entry = tuple[bytes, tuple[bytes, ...]]


def raw_entries(client: redis.Redis, stream: str, page: int = 20_000) -> list[Entry]:
    out: list[Entry] = []
    start = "-"
    while True:
        reply = client.execute_command("XRANGE", stream, start, "+", "COUNT", page)
        out.extend((eid, tuple(flat)) for eid, flat in reply)
        if len(reply) < page:
            return out
        start = "(" + reply[-1][0].decode()


def source_fields(i: int) -> list[bytes]:
    """Entry i of the source: a unique n first, then what a round trip can get wrong (binary
    values that export writes as base64, repeated field names, empty values, non-ASCII text)."""
    n = str(i).encode()
    if i % 7 == 0:
        return [b"n", n, b"tag", b"", b"tag", b"again"]
    if i % 7 == 1:
        return [b"n", n, b"bin", bytes([i % 256, 0xFF, 0xFE, 0x00])]
    return [b"n", n, b"text", "caf\u00e9 \u2713 \U0001f600".encode(), b"pad", b"x" * (i % 40)]


def source_id(i: int) -> str:
    return f"{BASE_MS + i // 4}-{i % 4}"  # several entries per millisecond


@pytest.fixture(scope="module")
def source() -> Iterator[tuple[ServerProcess, list[Entry]]]:
    """A server of its own (never killed) holding `src`, and its entries as the server has them."""
    if server_binary("redis8.2") is None:
        pytest.skip("redis8.2 server not available")
    srv = start_server("redis8.2")
    try:
        client = raw_client(srv)
        pipe = client.pipeline(transaction=False)
        for i in range(TOTAL):
            pipe.execute_command("XADD", "src", source_id(i), *source_fields(i))
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        entries = raw_entries(client, "src")
        assert len(entries) == TOTAL
        yield srv, entries
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def export_file(
    source: tuple[ServerProcess, list[Entry]], tmp_path_factory: pytest.TempPathFactory
) -> str:
    path = tmp_path_factory.mktemp("transfer") / "src.ndjson"
    done = subprocess.run(
        streamctl("-u", source[0].url, "-q", "export", "src", "--file", str(path)),
        capture_output=True, timeout=120, env=env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(path)


def spawn(args: list[str], tmp_path: Path) -> subprocess.Popen[bytes]:
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        return subprocess.Popen(streamctl(*args), stdout=out, stderr=err, env=env())


def kill_when(
    srv: ServerProcess, stream: str, at_least: int, proc: subprocess.Popen[bytes], tmp_path: Path
) -> tuple[int, str, str]:
    """SIGKILL `srv` once `stream` on it holds `at_least` entries; the command must then fail
    promptly. Returns (exit code, stdout, stderr)."""
    client = srv.client()
    deadline = time.monotonic() + 60
    try:
        while True:
            if client.xlen(stream) >= at_least:
                break
            if proc.poll() is not None:
                err = (tmp_path / "err").read_text()
                pytest.fail(f"the command ended (exit {proc.returncode}) before the kill: {err}")
            if time.monotonic() > deadline:
                pytest.fail(f"{stream} never reached {at_least} entries")
            time.sleep(0.002)
        srv.kill()
        killed = time.monotonic()
        proc.wait(30)
        assert time.monotonic() - killed < 10, "the command hung after the server died"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, (tmp_path / "out").read_text(), (tmp_path / "err").read_text()


# ---- import --keep-ids ----


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_server_killed_during_import_keep_ids_rerun_gives_exactly_the_source(
    aof_server: ServerProcess,
    source: tuple[ServerProcess, list[Entry]],
    export_file: str,
    tmp_path: Path,
) -> None:
    _, src = source
    command = ["-u", aof_server.url, "import", "dst", export_file, "--keep-ids", "-o", "json"]
    code, out, err = kill_when(aof_server, "dst", KILL_AT, spawn(command, tmp_path), tmp_path)

    assert code == 3, err
    assert out == ""
    assert "Traceback" not in err
    [line] = err.splitlines()
    match = IMPORT_FAILED.fullmatch(line)
    assert match, line
    acked = number(match["n"])
    in_flight = number(match["up"])
    # import keeps two batches in flight: the entries whose fate is unknown are one or two
    assert KILL_AT - 2 * BATCH <= acked < TOTAL
    assert in_flight in (BATCH, 2 * BATCH) or acked + in_flight == TOTAL
    # the lines of the batches in flight: the export file has one entry per line from line 1
    assert (int(match["first"]), int(match["last"])) == (acked + 1, acked + in_flight)

    aof_server.start()  # same port and dir: the AOF is replayed
    client = raw_client(aof_server)
    persisted = raw_entries(client, "dst")
    length = len(persisted)
    print(f"{aof_server.kind}: acknowledged {acked}, persisted {length}")
    assert acked <= length <= acked + in_flight
    assert persisted == src[:length]  # every acknowledged entry, byte for byte, in order

    rerun = subprocess.run(streamctl(*command), capture_output=True, timeout=120, env=env())
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr == b""
    report = json.loads(rerun.stdout)
    assert (report["skipped"], report["imported"]) == (length, TOTAL - length)
    assert report["last_source_id"] == source_id(TOTAL - 1)
    assert report["first_id"] == (source_id(length) if length < TOTAL else None)

    assert raw_entries(client, "dst") == src  # every id and field once, the same bytes
    info = client.xinfo_stream("dst")
    assert info["last-generated-id"] == src[-1][0]
    if "entries-added" in info:  # Redis >= 7.0: nothing was added and then removed
        assert info["entries-added"] == TOTAL


# ---- replay --into ----


def check_replay_failure(line: str, src: list[Entry], target_label: str | None) -> tuple[int, int]:
    """(acknowledged N, the batch in flight: 0 when the failure was reading the source)."""
    match = REPLAY_FAILED.fullmatch(line)
    assert match, line
    if target_label is not None:
        assert match["why"].startswith(f"target {target_label}: "), line
    acked = number(match["n"])
    in_flight = number(match["up"]) if match["up"] else 0
    assert KILL_AT - BATCH <= acked < TOTAL
    assert in_flight in (0, BATCH)
    # how far it got: the id to continue after is the source id of the last entry acknowledged
    assert match["after"] == src[acked - 1][0].decode()
    return acked, in_flight


def check_rerun_target(
    client: redis.Redis, src: list[Entry], acked: int, length: int, in_flight: int
) -> None:
    target = [fields for _, fields in raw_entries(client, "copy")]
    fields = [f for _, f in src]
    # nothing lost; the entries the server applied without a reply are there twice, once
    assert target == fields[:length] + fields[acked:]
    duplicates = len(target) - TOTAL
    assert duplicates == length - acked <= in_flight <= BATCH
    numbers = [int(f[1]) for f in target]
    assert set(numbers) == set(range(TOTAL))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_target_server_killed_during_replay_target_url(
    aof_server: ServerProcess, source: tuple[ServerProcess, list[Entry]], tmp_path: Path
) -> None:
    src_server, src = source
    client = raw_client(aof_server)
    command = ["-u", src_server.url, "replay", "src", "--into", "copy",
               "--target-url", aof_server.url, "-o", "json"]  # fmt: skip
    proc = spawn([*command, "--from", "-"], tmp_path)
    code, out, err = kill_when(aof_server, "copy", KILL_AT, proc, tmp_path)

    assert code == 3, err
    assert out == ""
    assert "Traceback" not in err
    [line] = err.splitlines()
    acked, in_flight = check_replay_failure(line, src, aof_server.url)
    assert in_flight == BATCH  # the source never failed: the target's replies did

    aof_server.start()
    copied = [fields for _, fields in raw_entries(client, "copy")]
    length = len(copied)
    print(f"{aof_server.kind}: acknowledged {acked}, persisted {length}")
    assert acked <= length <= acked + in_flight
    assert copied == [f for _, f in src[:length]]  # fields in order, new ids

    after = src[acked - 1][0].decode()
    rerun = subprocess.run(
        streamctl(*command, "--from", f"({after}"), capture_output=True, timeout=120, env=env()
    )
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert (report["copied"], report["first_id"]) == (TOTAL - acked, src[acked][0].decode())
    check_rerun_target(client, src, acked, length, in_flight)
    assert raw_entries(raw_client(src_server), "src") == src  # the source is untouched


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_server_killed_during_replay_on_the_same_server(
    aof_server: ServerProcess,
    source: tuple[ServerProcess, list[Entry]],
    export_file: str,
    tmp_path: Path,
) -> None:
    """Source and target on the server that dies: the failure may come from reading the source
    (then every batch sent was acknowledged) or from the target's replies."""
    _, src = source
    client = raw_client(aof_server)
    loaded = subprocess.run(
        streamctl("-u", aof_server.url, "-q", "import", "src", export_file, "--keep-ids"),
        capture_output=True, timeout=120, env=env(),
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    command = ["-u", aof_server.url, "replay", "src", "--into", "copy", "-o", "json"]
    proc = spawn([*command, "--from", "-"], tmp_path)
    code, out, err = kill_when(aof_server, "copy", KILL_AT, proc, tmp_path)

    assert code == 3, err
    assert out == ""
    assert "Traceback" not in err
    [line] = err.splitlines()
    acked, in_flight = check_replay_failure(line, src, None)

    aof_server.start()
    assert raw_entries(client, "src") == src  # the source survived the kill as it was
    copied = [fields for _, fields in raw_entries(client, "copy")]
    length = len(copied)
    print(f"{aof_server.kind}: acknowledged {acked}, persisted {length}, in flight {in_flight}")
    assert acked <= length <= acked + in_flight
    assert copied == [f for _, f in src[:length]]

    after = src[acked - 1][0].decode()
    rerun = subprocess.run(
        streamctl(*command, "--from", f"({after}"), capture_output=True, timeout=120, env=env()
    )
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["copied"] == TOTAL - acked
    check_rerun_target(client, src, acked, length, in_flight)


# ---- the source server killed during replay --target-url ----


@pytest.fixture
def killable_source(
    source: tuple[ServerProcess, list[Entry]], export_file: str
) -> Iterator[ServerProcess]:
    """A Redis 8.2 with AOF holding a copy of `src`: the replay's source, killed by the test."""
    srv = start_or_skip("redis8.2", aof=True)
    try:
        loaded = subprocess.run(
            streamctl("-u", srv.url, "-q", "import", "src", export_file, "--keep-ids"),
            capture_output=True, timeout=120, env=env(),
        )  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def plain_target() -> Iterator[ServerProcess]:
    srv = start_or_skip("redis8.2", aof=True)
    yield srv
    srv.stop()


def replay_until_source_dies(
    src_server: ServerProcess, target: ServerProcess, tmp_path: Path
) -> tuple[list[str], str]:
    command = ["-u", src_server.url, "replay", "src", "--into", "copy",
               "--target-url", target.url, "-o", "json"]  # fmt: skip
    proc = spawn([*command, "--from", "-"], tmp_path)
    # the copy grows on the target; the source dies under it
    client = target.client()
    deadline = time.monotonic() + 60
    try:
        while client.xlen("copy") < KILL_AT:
            assert proc.poll() is None, (tmp_path / "err").read_text()
            assert time.monotonic() < deadline, "the replay never got going"
            time.sleep(0.002)
        src_server.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = (tmp_path / "err").read_text()
    assert proc.returncode == 3, err
    assert (tmp_path / "out").read_text() == ""
    assert "Traceback" not in err
    [line] = err.splitlines()
    return command, line


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_source_server_killed_during_replay_target_url_rerun_is_exact(
    killable_source: ServerProcess,
    plain_target: ServerProcess,
    source: tuple[ServerProcess, list[Entry]],
    tmp_path: Path,
) -> None:
    """Reading the source failed: every batch sent to the target was acknowledged, so the rerun
    with the printed --from gives exactly the source (no entry twice)."""
    _, src = source
    command, line = replay_until_source_dies(killable_source, plain_target, tmp_path)
    acked, in_flight = check_replay_failure(line, src, None)
    assert in_flight == 0  # the failure was reading the source, not a target reply
    client = raw_client(plain_target)
    assert [f for _, f in raw_entries(client, "copy")] == [f for _, f in src[:acked]]

    killable_source.start()
    after = src[acked - 1][0].decode()
    rerun = subprocess.run(
        streamctl(*command, "--from", f"({after}"), capture_output=True, timeout=120, env=env()
    )
    assert rerun.returncode == 0, rerun.stderr
    assert [f for _, f in raw_entries(client, "copy")] == [f for _, f in src]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_source_failure_during_replay_target_url_names_the_source(
    killable_source: ServerProcess,
    plain_target: ServerProcess,
    source: tuple[ServerProcess, list[Entry]],
    tmp_path: Path,
) -> None:
    """Each client carries its own settings: the source's failure names the source (the target
    was connected last, and used to be named), as a connection lost mid-run (not "cannot
    connect", and no TLS hint: the connection had been answering)."""
    _, line = replay_until_source_dies(killable_source, plain_target, tmp_path)
    assert f"127.0.0.1:{plain_target.port}" not in line, line  # the target did not fail
    assert line.startswith(f"error: lost the connection to {killable_source.url}: "), line
    assert "rediss://" not in line, line


# ---- import --keep-ids of groups' state (export --with-groups) ----

GROUP_PEL = 60_000
Pending = list[tuple[bytes, bytes, int]]


def pending_of(client: redis.Redis, group: str) -> Pending:
    return [
        (p["message_id"], p["consumer"], p["times_delivered"])
        for p in client.xpending_range("jobs", group, "-", "+", GROUP_PEL)
    ]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_server_killed_while_import_restores_a_group_rerun_restores_its_pending(
    plain_target: ServerProcess, tmp_path: Path
) -> None:
    """Two groups of 60,000 pending entries each, restored one after the other; the server is
    killed as soon as the first group exists, so the second one is being restored. A group is
    restored whole (one script): after the restart each group is absent or complete, never
    there without its pending entries; the rerun creates the missing one, and every group is
    then exactly the original (ids, consumers, delivery counts)."""
    if server_binary("redis8.2") is None:
        pytest.skip("redis8.2 server not available")
    origin = start_server("redis8.2")
    try:
        oc = origin.client()
        pipe = oc.pipeline(transaction=False)
        for i in range(GROUP_PEL):
            pipe.execute_command("XADD", "jobs", f"{BASE_MS}-{i + 1}", "n", str(i))
        pipe.execute()
        oc.xgroup_create("jobs", "audit", id="0")  # exported (and restored) first
        oc.xgroup_create("jobs", "workers", id="0")
        readers = [("audit", "a1", GROUP_PEL), ("workers", "c1", GROUP_PEL // 2)]
        readers.append(("workers", "c2", GROUP_PEL // 2))
        for group, consumer, count in readers:
            oc.execute_command(
                "XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", "jobs", ">"
            )
        oc.xclaim("jobs", "workers", "c2", 0, [f"{BASE_MS}-7"])  # delivered twice
        expected = {group: pending_of(oc, group) for group in ("audit", "workers")}
        path = tmp_path / "jobs.ndjson"
        exported = subprocess.run(
            streamctl("-u", origin.url, "-q", "export", "jobs", "--with-groups",
                      "--file", str(path)),
            capture_output=True, timeout=120, env=env(),
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
    finally:
        origin.stop()
    assert [len(p) for p in expected.values()] == [GROUP_PEL, GROUP_PEL]

    command = ["-u", plain_target.url, "import", "jobs", str(path), "--keep-ids", "-o", "json"]
    proc = spawn(command, tmp_path)
    client = plain_target.client()
    deadline = time.monotonic() + 60
    try:
        while True:  # killed as soon as a group exists: the next one is being restored
            if client.exists("jobs") and client.xinfo_groups("jobs"):
                break
            if proc.poll() is not None:
                pytest.skip("the import finished before a group appeared: kill too late")
            assert time.monotonic() < deadline
            time.sleep(0.001)
        plain_target.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = (tmp_path / "err").read_text()
    if proc.returncode == 0:
        pytest.skip("the import finished between the first group and the kill: kill too late")
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith(f"error: lost the connection to {plain_target.url}: "), line
    assert line.endswith("; rerun the same command to continue"), line

    plain_target.start()
    client = plain_target.client()
    groups = {g["name"].decode(): g["pending"] for g in client.xinfo_groups("jobs")}
    print(f"after the kill: {groups}")
    assert groups, "the first group was seen, so it was persisted (appendfsync always)"
    for group, pending in groups.items():  # whole or absent, never a group without its PEL
        assert pending == GROUP_PEL, (group, pending)
        assert pending_of(client, group) == expected[group]

    rerun = subprocess.run(streamctl(*command), capture_output=True, timeout=120, env=env())
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["skipped"] == GROUP_PEL and report["imported"] == 0
    actions = {g["group"]: g["action"] for g in report["groups"]}
    assert actions == {g: "exists" if g in groups else "created" for g in expected}
    for group, pel in expected.items():
        assert pending_of(client, group) == pel
    consumers = {g: {c["name"] for c in client.xinfo_consumers("jobs", g)} for g in expected}
    assert consumers == {"audit": {b"a1"}, "workers": {b"c1", b"c2"}}
