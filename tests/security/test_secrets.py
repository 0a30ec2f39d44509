"""A password never appears in any output: stdout, stderr, error lines, the STREAMCTL_DEBUG=1
traceback, or `profile show`/`profile ls`, whichever way it was given (URL, STREAMCTL_URL,
REDIS_URL, a profile's password_env or literal password) and whichever way the command ends.

Every run is a fresh process: in process, secrets remembered by an earlier test could hide a leak.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from tests.conftest import run_process
from tests.servers import ServerProcess, free_port

URL_PASSWORD = "Url-Secret-5e1f0a"
SPECIAL_PASSWORD = "p@ss:w/rd%Sp3c#?"
ENV_PASSWORD = "Env-Secret-77c2d9"
INLINE_PASSWORD = "Inline-Secret-4b8e"
WRONG_PASSWORD = "Wrong-Secret-0a9d"
ALL_SECRETS = (URL_PASSWORD, SPECIAL_PASSWORD, ENV_PASSWORD, INLINE_PASSWORD, WRONG_PASSWORD)


@dataclass
class Case:
    name: str
    args: list[str | bytes]
    exit_code: int | tuple[int, ...]
    env: dict[str, str] = field(default_factory=dict)


def forms(secret: str) -> set[bytes]:
    """The ways a secret could be printed: as is, URL-quoted, or inside a repr."""
    return {
        secret.encode(),
        quote(secret, safe="").encode(),
        quote(secret).encode(),
        repr(secret)[1:-1].encode(),
    }


def assert_no_secret(case: Case, proc: subprocess.CompletedProcess[bytes], debug: bool) -> None:
    where = f"{case.name} (STREAMCTL_DEBUG={int(debug)})"
    codes = case.exit_code if isinstance(case.exit_code, tuple) else (case.exit_code,)
    assert proc.returncode in codes, f"{where}: {proc.stderr.decode(errors='replace')}"
    output = proc.stdout + proc.stderr
    for secret in ALL_SECRETS:
        for form in forms(secret):
            assert form not in output, f"{where} printed a password: {output!r}"
    if proc.returncode != 0:
        last = proc.stderr.decode(errors="replace").splitlines()[-1]
        assert last.startswith("error: "), where
        if debug:
            assert b"Traceback (most recent call last)" in proc.stderr, where
        else:
            assert len(proc.stderr.splitlines()) == 1, where
            assert b"Traceback" not in proc.stderr, where


def run_cases(cases: list[Case], *, debug_modes: tuple[bool, ...] = (True,)) -> None:
    """Each case in a fresh process. The debug output holds the one-line error and more, so
    STREAMCTL_DEBUG=1 alone covers both unless the one-line form itself is under test."""
    jobs = [(case, debug) for case in cases for debug in debug_modes]

    def run(job: tuple[Case, bool]) -> subprocess.CompletedProcess[bytes]:
        case, debug = job
        env = {**case.env, "STREAMCTL_DEBUG": "1" if debug else "0"}
        return run_process(case.args, env=env, timeout=60)  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, jobs))
    for (case, debug), proc in zip(jobs, results, strict=True):
        assert_no_secret(case, proc, debug)


@pytest.fixture
def alice(one_server: ServerProcess, r1: redis.Redis) -> Iterator[str]:
    """A user with every test password, limited to keys orders*."""
    name = f"alice{uuid.uuid4().hex[:6]}"
    passwords = [f">{p}" for p in (URL_PASSWORD, SPECIAL_PASSWORD, ENV_PASSWORD, INLINE_PASSWORD)]
    r1.execute_command("ACL", "SETUSER", name, "on", *passwords, "~orders*", "+@all")
    r1.xadd("orders", {"a": "1"})
    r1.xadd("secret", {"a": "1"})
    yield name
    r1.execute_command("ACL", "DELUSER", name)


def url(user: str, password: str, port: int, scheme: str = "redis") -> str:
    return f"{scheme}://{user}:{quote(password, safe='')}@127.0.0.1:{port}/0"


def test_password_in_the_url_never_printed(
    alice: str, one_server: ServerProcess, r1: redis.Redis, tmp_path: Path
) -> None:
    port = one_server.port
    good = url(alice, URL_PASSWORD, port)
    events = tmp_path / "events.ndjson"
    events.write_text("".join(f'{{"n": {i}}}\n' for i in range(10)) + "{not json\n")
    cases = [
        Case("ls", ["-u", good, "ls"], 0),
        Case("range", ["-u", good, "range", "orders"], 0),
        Case("info", ["-u", good, "info", "orders", "-o", "yaml"], 0),
        Case("publish", ["-u", good, "publish", "orders", "a=1"], 0),
        Case("tail", ["-u", good, "tail", "orders", "--from", "0", "--no-follow"], 0),
        Case("bulk publish, bad line", ["-u", good, "publish", "orders", "-f", str(events)], 2),
        Case("NOPERM", ["-u", good, "range", "secret"], 1),
        Case("not found", ["-u", good, "info", "orders-missing"], 4),
        Case("bad id", ["-u", good, "range", "orders", "banana"], 2),
        # command-line bytes that are not UTF-8 are published as they are
        Case("non-UTF-8 field", ["-u", good, "publish", "orders", b"\xff\xfe=1"], 0),
        Case("wrong password", ["-u", url(alice, WRONG_PASSWORD, port), "ls"], 3),
        Case("closed port", ["-u", url(alice, URL_PASSWORD, free_port()), "ls"], 3),
        Case("bad port", ["-u", good.replace(f":{port}/", ":notaport/"), "ls"], 2),
        Case("bad scheme", ["-u", good.replace("redis://", "http://"), "ls"], 2),
        Case("TLS to a plain port",
             ["-u", url(alice, URL_PASSWORD, port, "rediss"), "--timeout", "1", "ls"], 3),
        Case("missing CA file",
             ["-u", url(alice, URL_PASSWORD, port, "rediss"), "--tls-ca", "/nope.pem", "ls"], 2),
        Case("bad timeout", ["-u", good, "--timeout", "nan", "ls"], 2),
    ]  # fmt: skip
    run_cases(cases, debug_modes=(False, True))


def test_password_from_the_environment_never_printed(
    alice: str, one_server: ServerProcess, r1: redis.Redis
) -> None:
    port = one_server.port
    cases = []
    for var in ("STREAMCTL_URL", "REDIS_URL"):
        for password, code in ((URL_PASSWORD, 0), (SPECIAL_PASSWORD, 0), (WRONG_PASSWORD, 3)):
            cases.append(Case(f"{var} ls", ["ls"], code, {var: url(alice, password, port)}))
        env = {var: url(alice, URL_PASSWORD, port)}
        cases.append(Case(f"{var} NOPERM", ["range", "secret"], 1, env))
        cases.append(Case(f"{var} not found", ["info", "orders-missing"], 4, env))
    run_cases(cases)


def write_config(tmp_path: Path, user: str, port: int) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(
        "default: viaenv\n"
        "profiles:\n"
        "  viaenv:\n"
        f'    url: "redis://127.0.0.1:{port}/0"\n'
        f"    username: {user}\n"
        "    password_env: SECRETS_TEST_PASSWORD\n"
        "  inline:\n"
        f'    url: "redis://127.0.0.1:{port}/0"\n'
        f"    username: {user}\n"
        f'    password: "{INLINE_PASSWORD}"\n'
        "  inurl:\n"
        f'    url: "{url(user, URL_PASSWORD, port)}"\n'
        "  wrong:\n"
        f'    url: "{url(user, WRONG_PASSWORD, port)}"\n'
        "  closed:\n"
        f'    url: "{url(user, URL_PASSWORD, free_port())}"\n'
    )
    return str(path)


def test_password_from_a_profile_never_printed(
    alice: str, one_server: ServerProcess, r1: redis.Redis, tmp_path: Path
) -> None:
    config = write_config(tmp_path, alice, one_server.port)
    env = {"STREAMCTL_CONFIG": config, "SECRETS_TEST_PASSWORD": ENV_PASSWORD}
    cases = []
    for profile, code in (("viaenv", 0), ("inline", 0), ("inurl", 0), ("wrong", 3), ("closed", 3)):
        cases.append(Case(f"{profile} ls", ["-P", profile, "ls"], code, env))
    for profile in ("viaenv", "inline", "inurl"):
        cases.append(Case(f"{profile} NOPERM", ["-P", profile, "range", "secret"], 1, env))
        cases.append(Case(f"{profile} bad id", ["-P", profile, "range", "orders", "x"], 2, env))
    wrong_env = {**env, "SECRETS_TEST_PASSWORD": WRONG_PASSWORD}
    cases.append(Case("password_env wrong", ["-P", "viaenv", "ls"], 3, wrong_env))
    run_cases(cases)


def test_profile_show_and_ls_mask_every_password(
    alice: str, one_server: ServerProcess, tmp_path: Path
) -> None:
    config = write_config(tmp_path, alice, one_server.port)
    env = {"STREAMCTL_CONFIG": config, "SECRETS_TEST_PASSWORD": ENV_PASSWORD}
    cases = []
    for profile in ("viaenv", "inline", "inurl", "wrong"):
        for fmt in ("json", "yaml", "table"):
            cases.append(
                Case(f"show {profile} {fmt}", ["profile", "show", profile, "-o", fmt], 0, env)
            )
    for fmt in ("json", "yaml", "table"):
        cases.append(Case(f"profile ls {fmt}", ["profile", "ls", "-o", fmt], 0, env))
    run_cases(cases, debug_modes=(True,))
    shown = run_process(["profile", "show", "inline", "-o", "json"], env=env)
    assert b"***" in shown.stdout  # masked, not dropped: the user sees one is set
    shown = run_process(["profile", "show", "inurl", "-o", "json"], env=env)
    assert f"redis://{alice}:***@127.0.0.1:".encode() in shown.stdout
