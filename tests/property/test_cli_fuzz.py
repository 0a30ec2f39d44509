"""Fuzz the global options and FIELD=VALUE pairs through the CLI (in process, real server).

Whatever is typed, streamctl ends with an exit code from the SPEC's table; an error is ONE line
`error: ...` on stderr that is not an "unexpected" error (an exception no code path expected);
there is never a traceback. A publish that succeeds stores exactly the pairs typed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Run, invoke
from tests.servers import ServerProcess, free_port

SPEC_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 130}
FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Targets:
    """Everything a fuzzed option may point at; none of it is another engineer's server."""

    good: str
    closed: str
    dir: Path

    @property
    def config(self) -> str:
        return str(self.dir / "config.yaml")


@pytest.fixture(scope="module")
def targets(one_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Targets:
    d = tmp_path_factory.mktemp("fuzz")
    t = Targets(one_server.url, f"redis://127.0.0.1:{free_port()}/0", d)
    (d / "config.yaml").write_text(
        "default: good\n"
        "profiles:\n"
        f'  good: {{url: "{t.good}"}}\n'
        f'  closed: {{url: "{t.closed}", timeout: 1}}\n'
        '  badurl: {url: "http://nowhere"}\n'
        "  nourl: {username: x}\n"
        f'  unknownkey: {{url: "{t.good}", colour: blue}}\n'
        '  needsenv: {url: "redis://127.0.0.1:1/0", password_env: FUZZ_UNSET_PASSWORD}\n'
        '  tls: {url: "rediss://127.0.0.1:1/0", ca_cert: /nonexistent/ca.pem}\n'
    )
    (d / "junk.yaml").write_text("profiles: [1, 2\n")
    (d / "list.yaml").write_text("- a\n- b\n")
    (d / "not-a-ca.pem").write_text("hello\n")
    (d / "subdir").mkdir()
    return t


@pytest.fixture
def fuzz_client(one_server: ServerProcess) -> Iterator[redis.Redis]:
    client = one_server.client()
    client.flushall()
    yield client
    client.close()


def raw_xrange(client: redis.Redis, stream: str) -> list[list[bytes]]:
    """Each entry's flat [field, value, ...] as the server sends it (repeated names kept)."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command("XRANGE", stream, "-", "+")
        return [flat for _, flat in conn.read_response()]
    finally:
        client.connection_pool.release(conn)


def url_value(kind: str, t: Targets, text: str) -> str:
    port = t.good.rsplit(":", 1)[1].split("/")[0]
    return {
        "good": t.good,
        "good-db1": t.good[:-1] + "1",
        "closed": t.closed,
        "closed-tls": t.closed.replace("redis://", "rediss://"),
        "wrong-user": f"redis://nobody:Fuzz-Pass-1@127.0.0.1:{port}/0",
        "db-99": t.good[:-1] + "99",
        "db-text": t.good[:-1] + "abc",
        "bad-port": f"redis://127.0.0.1:{port}0000/0",
        "port-text": "redis://127.0.0.1:port/0",
        "query": t.good + "?protocol=3",
        "unix-missing": "unix:///nonexistent/redis.sock",
        "no-scheme": f"127.0.0.1:{port}",
        "http": f"http://u:p@127.0.0.1:{port}/",
        "ipv6-broken": "redis://[::1",
        "empty": "",
        # random text never forms redis://host: no DNS lookups, no stranger's server
        "text": text,
    }[kind]


def config_value(kind: str, t: Targets) -> str:
    return {
        "good": t.config,
        "missing": str(t.dir / "missing.yaml"),
        "junk": str(t.dir / "junk.yaml"),
        "list": str(t.dir / "list.yaml"),
        "dir": str(t.dir / "subdir"),
    }[kind]


def ca_value(kind: str, t: Targets) -> str:
    return {
        "missing": str(t.dir / "missing.pem"),
        "not-a-ca": str(t.dir / "not-a-ca.pem"),
        "dir": str(t.dir / "subdir"),
        "empty": "",
    }[kind]


URL_KINDS = ["good", "good-db1", "closed", "closed-tls", "wrong-user", "db-99", "db-text",
             "bad-port", "port-text", "query", "unix-missing", "no-scheme", "http",
             "ipv6-broken", "empty", "text"]  # fmt: skip
timeouts = st.one_of(
    st.sampled_from(["0", "-1", "1e-9", "0.5", "5", "nan", "inf", "-inf", "1e400", "1e12", "abc"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=5),
)
option = st.one_of(
    st.tuples(st.just("url"), st.sampled_from(URL_KINDS), st.text(max_size=12)),
    st.tuples(st.just("profile"), st.one_of(
        st.sampled_from(["good", "closed", "badurl", "nourl", "unknownkey", "needsenv", "tls"]),
        st.text(max_size=6))),
    st.tuples(st.just("config"), st.sampled_from(["good", "missing", "junk", "list", "dir"])),
    st.tuples(st.just("flag"), st.sampled_from(["--cluster", "--no-cluster", "--no-color", "-q"])),
    st.tuples(st.just("output"), st.one_of(
        st.sampled_from(["auto", "table", "json", "ndjson", "yaml", "JSON", ""]),
        st.text(max_size=5))),
    st.tuples(st.just("timeout"), timeouts),
    st.tuples(st.just("tls-ca"), st.sampled_from(["missing", "not-a-ca", "dir", "empty"])),
)  # fmt: skip
commands = st.sampled_from(
    [["ls"], ["range", "fuzz"], ["info", "fuzz"], ["publish", "fuzz", "a=1"],
     ["range", "fuzz", "-", "+", "-o", "json"], ["tail", "fuzz", "--from", "0", "--no-follow"]]
)  # fmt: skip


def render(opt: tuple[str, ...], t: Targets) -> list[str]:
    kind = opt[0]
    if kind == "url":
        return ["-u", url_value(opt[1], t, opt[2])]
    if kind == "profile":
        return ["-P", opt[1]]
    if kind == "config":
        return ["--config", config_value(opt[1], t)]
    if kind == "flag":
        return [opt[1]]
    if kind == "output":
        return ["-o", opt[1]]
    if kind == "timeout":
        return ["--timeout", opt[1]]
    return ["--tls-ca", ca_value(opt[1], t)]


def check_run(res: Run, args: list[str]) -> None:
    where = f"streamctl {' '.join(args)!r}"
    assert res.exit_code in SPEC_EXIT_CODES, (where, res.exit_code, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, where
    if res.exit_code != 0:
        lines = res.stderr.splitlines()
        assert len(lines) == 1, (where, res.stderr)
        assert lines[0].startswith("error: "), (where, res.stderr)
        assert not lines[0].startswith("error: unexpected"), (where, res.stderr)


@FUZZ
@given(st.booleans(), st.lists(option, max_size=4), commands)
def test_global_options_never_crash(
    targets: Targets,
    fuzz_client: redis.Redis,
    via_profile: bool,
    options: list[tuple[str, ...]],
    command: list[str],
) -> None:
    # A known-good base first (a fuzzed option later overrides it); STREAMCTL_URL points at a
    # closed port so the default localhost:6379 (maybe someone's real server) is never used.
    if command[0] == "tail" and any(huge_timeout(o) for o in options):
        command = ["ls"]  # pinned by test_tail_with_an_infinite_timeout (a known bug)
    base = ["--config", targets.config, "-P", "good"] if via_profile else ["-u", targets.good]
    args = base + [a for opt in options for a in render(opt, targets)] + command
    res = invoke(args, env={"STREAMCTL_URL": targets.closed})
    check_run(res, args)


def huge_timeout(opt: tuple[str, ...]) -> bool:
    if opt[0] != "timeout":
        return False
    try:
        return float(opt[1]) >= 1e9  # inf too (nan compares False)
    except ValueError:
        return False


@pytest.mark.parametrize("timeout", ["inf", "1e12"])
def test_tail_with_an_infinite_timeout(
    targets: Targets, fuzz_client: redis.Redis, timeout: str
) -> None:
    fuzz_client.xadd("fuzz", {"a": "1"})
    args = ["-u", targets.good, "--timeout", timeout, "tail", "fuzz", "--from", "0", "--no-follow"]
    check_run(invoke(args), args)


def test_every_url_kind_once(targets: Targets, fuzz_client: redis.Redis) -> None:
    """Each URL kind deterministically, so none depends on the fuzzer's luck."""
    for kind in URL_KINDS:
        args = ["-u", url_value(kind, targets, "x"), "--timeout", "2", "ls"]
        check_run(invoke(args), args)


# ---- FIELD=VALUE pairs ----

pair_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@FUZZ
@given(st.lists(st.tuples(pair_text, st.sampled_from(["=", "", "=="]), pair_text), max_size=5),
       st.booleans())  # fmt: skip
def test_field_value_pairs(
    targets: Targets,
    fuzz_client: redis.Redis,
    pairs: list[tuple[str, str, str]],
    separator: bool,
) -> None:
    fuzz_client.delete("pairs")
    typed = [name + sep + value for name, sep, value in pairs]
    args = ["-u", targets.good, "publish", "pairs"] + (["--"] if separator else []) + typed
    res = invoke(args)
    check_run(res, args)
    if res.exit_code != 0:
        assert not fuzz_client.exists("pairs")
        return
    [(eid, _)] = fuzz_client.xrange("pairs")
    assert res.stdout == eid.decode() + "\n"
    expected = [tuple(p.encode() for p in t.split("=", 1)) for t in typed]
    [stored] = raw_xrange(fuzz_client, "pairs")
    assert list(zip(stored[0::2], stored[1::2], strict=True)) == expected


def test_pairs_with_newlines_and_equals(targets: Targets, fuzz_client: redis.Redis) -> None:
    res = invoke(["-u", targets.good, "publish", "p", "--", "a=x\ny", "b=\t", "c==", "=d"])
    check_run(res, [])
    assert res.exit_code == 2  # "=d": the name before '=' is empty
    res = invoke(["-u", targets.good, "publish", "p", "--", "a=x\ny", "b=\t", "c=="])
    assert res.exit_code == 0, res.stderr
    assert raw_xrange(fuzz_client, "p") == [[b"a", b"x\ny", b"b", b"\t", b"c", b"="]]


def test_no_stray_environment() -> None:
    # the fuzz relies on conftest's isolation: no URL or profile from the developer's shell
    assert "STREAMCTL_URL" not in os.environ and "STREAMCTL_PROFILE" not in os.environ
