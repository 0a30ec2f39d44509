"""`streamctl completion`: the scripts (and that completions/ is not stale), that they load in bash,
and names completed from a live server through the shell protocol, in real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from streamctl.cli._complete import (
    complete_consumer,
    complete_group,
    complete_stream,
    enable_shell_completion,
)
from streamctl.cli.completion import SCRIPT_FILES, SHELLS, completion_script
from streamctl.config import Settings
from streamctl.core.completion import complete_groups, complete_streams, glob_escape
from tests.conftest import run_process
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS = ROOT / "completions"
BIN = Path(sys.executable).parent


def seed(r) -> None:  # type: ignore[no-untyped-def]
    r.xadd("orders", {"n": "1"})
    r.xadd("orders-eu", {"n": "1"})
    r.xadd("payments", {"n": "1"})
    r.xgroup_create("orders", "billing", id="0")
    r.xgroup_create("orders", "audit", id="0")
    r.xgroup_create("payments", "ledger", id="0")
    r.set("order-count", "3")  # not a stream: never offered


@pytest.mark.parametrize("shell", SHELLS)
def test_shipped_scripts_are_current(shell) -> None:  # type: ignore[no-untyped-def]
    shipped = COMPLETIONS / SCRIPT_FILES[shell]
    assert shipped.read_text() == completion_script(shell), (
        f"completions/{SCRIPT_FILES[shell]} is stale: "
        f"regenerate it with: streamctl completion {shell} > completions/{SCRIPT_FILES[shell]}"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_prints_the_script(run_cli, shell) -> None:  # type: ignore[no-untyped-def]
    res = run_cli(["completion", shell])
    assert (res.exit_code, res.stdout, res.stderr) == (0, completion_script(shell), "")


def test_shell_from_the_environment_and_refusals(run_cli) -> None:  # type: ignore[no-untyped-def]
    res = run_cli(["completion"], env={"SHELL": "/usr/bin/zsh"})
    assert (res.exit_code, res.stdout) == (0, completion_script("zsh"))
    res = run_cli(["completion"], env={"SHELL": "/bin/tcsh"})
    assert (res.exit_code, res.stderr) == (
        2,
        "error: give the shell: streamctl completion bash|zsh|fish\n",
    )
    res = run_cli(["completion", "powershell"])
    assert (res.exit_code, res.stderr) == (
        2,
        "error: bad shell 'powershell': accepted bash, zsh, fish\n",
    )
    res = run_cli(["completion", "bash", "-o", "json"])
    assert res.json() == {
        "shell": "bash",
        "file": "streamctl.bash",
        "script": completion_script("bash"),
    }


def test_the_bash_script_loads() -> None:
    proc = subprocess.run(
        ["bash", "-c", "source completions/streamctl.bash && complete -p streamctl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "complete -o default -F _streamctl_completion streamctl\n"
    assert proc.stderr == ""


def bash_complete(line: str, env: dict[str, str] | None = None) -> list[str]:
    """Complete the last word of `line` the way bash does: through the shipped script's function,
    which runs the installed `streamctl` with COMP_WORDS/COMP_CWORD."""
    words = line.split(" ")
    script = (
        "source completions/streamctl.bash\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_streamctl_completion streamctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    full_env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    proc = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, env=full_env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return [w for w in proc.stdout.split("\n") if w]


def complete_in_process(line: str, monkeypatch, env: dict[str, str] | None = None) -> list[str]:  # type: ignore[no-untyped-def]
    """The same protocol, in this process, with the completion classes registered here: tests
    the callbacks whatever the entry point does."""
    from tests.conftest import invoke

    words = line.split(" ")
    variables = {
        "_STREAMCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
        **(env or {}),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    enable_shell_completion()
    res = invoke([])
    assert res.exit_code == 0 and res.stderr == ""
    return [w for w in res.stdout.split("\n") if w]


def test_callbacks_complete_streams_and_groups(one_server, r1, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seed(r1)
    url = one_server.url
    assert complete_in_process(f"streamctl -u {url} check or", monkeypatch) == [
        "orders", "orders-eu",
    ]  # fmt: skip
    assert complete_in_process(f"streamctl -u {url} check orders --group ", monkeypatch) == [
        "audit", "billing",
    ]  # fmt: skip
    assert complete_in_process("streamctl check pay", monkeypatch, env={"STREAMCTL_URL": url}) == [
        "payments"
    ]
    dead = f"redis://127.0.0.1:{free_port()}/0"
    assert complete_in_process(f"streamctl -u {dead} check or", monkeypatch) == []


def test_bash_completes_stream_names_from_a_live_server(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    seed(r1)
    assert bash_complete(f"streamctl -u {one_server.url} check or") == ["orders", "orders-eu"]
    assert bash_complete(f"streamctl -u {one_server.url} check ") == [
        "orders", "orders-eu", "payments",
    ]  # fmt: skip
    # the URL can come from the environment too
    assert bash_complete("streamctl check pay", env={"STREAMCTL_URL": one_server.url}) == [
        "payments"
    ]


def test_bash_completes_group_names_of_the_typed_stream(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    seed(r1)
    assert bash_complete(f"streamctl -u {one_server.url} check orders --group ") == [
        "audit", "billing",
    ]  # fmt: skip
    assert bash_complete(f"streamctl -u {one_server.url} check payments -g l") == ["ledger"]


def test_bash_completes_commands_and_options() -> None:
    assert bash_complete("streamctl che") == ["check"]
    assert "--max-lag" in bash_complete("streamctl check --max-")


def test_nothing_and_quickly_when_no_server_answers() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    assert bash_complete(f"streamctl -u {url} check or") == []
    assert time.monotonic() - started < 10  # a process start; the connection attempt is ~0
    proc = run_process(
        [],
        env={
            "_STREAMCTL_COMPLETE": "complete_bash",
            "COMP_WORDS": f"streamctl -u {url} check orders --group b",
            "COMP_CWORD": "6",
        },
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"\n", b"")


def test_zsh_and_fish_protocols(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    seed(r1)
    zsh = run_process(
        [],
        env={
            "_STREAMCTL_COMPLETE": "complete_zsh",
            "_TYPER_COMPLETE_ARGS": f"streamctl -u {one_server.url} check or",
        },
    )
    assert zsh.returncode == 0
    assert zsh.stdout.decode() == '_arguments \'*: :(("orders"\n"orders-eu"))\'\n'
    fish = run_process(
        [],
        env={
            "_STREAMCTL_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
            "_TYPER_COMPLETE_ARGS": f"streamctl -u {one_server.url} check orders --group ",
        },
    )
    assert fish.returncode == 0
    assert fish.stdout.decode() == "audit\nbilling\n"


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_the_zsh_script_loads() -> None:
    proc = subprocess.run(
        ["zsh", "-c", "autoload -U compinit && compinit -u && source completions/_streamctl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- core.completion


def test_core_names_with_glob_characters(one_server, r1) -> None:  # type: ignore[no-untyped-def]
    r1.xadd("a*b", {"n": "1"})
    r1.xadd("axb", {"n": "1"})
    r1.xadd("a[1]", {"n": "1"})
    r1.xgroup_create("a*b", "g1", id="0")
    settings = Settings(url=one_server.url)
    assert complete_streams(settings, "a*") == ["a*b"]
    assert complete_streams(settings, "a[") == ["a[1]"]
    assert complete_streams(settings, "") == ["a*b", "a[1]", "axb"]
    assert complete_groups(settings, "a*b", "") == ["g1"]
    assert complete_groups(settings, None, "g") == ["g1"]  # no stream typed: any stream's groups
    assert complete_groups(settings, "missing", "") == []
    assert glob_escape("a*?[]\\b") == "a\\*\\?\\[\\]\\\\b"


def test_core_names_without_a_server() -> None:
    settings = Settings(url=f"redis://127.0.0.1:{free_port()}/0")
    assert complete_streams(settings, "") == []
    assert complete_groups(settings, "orders", "") == []


def test_consumer_completion_for_other_commands(one_server, r1, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """complete_stream/complete_group/complete_consumer as another command would use them."""
    seed(r1)
    r1.xreadgroup("billing", "worker-1", {"orders": ">"}, count=1)
    r1.xreadgroup("billing", "worker-2", {"orders": ">"}, count=1)
    r1.xreadgroup("audit", "auditor", {"orders": ">"}, count=1)
    demo = typer.Typer()

    @demo.callback()
    def root(url: Annotated[str, typer.Option("-u")] = "") -> None: ...

    @demo.command()
    def delconsumer(
        stream: Annotated[str, typer.Argument(autocompletion=complete_stream)],
        group: Annotated[str, typer.Argument(autocompletion=complete_group)],
        consumer: Annotated[str, typer.Argument(autocompletion=complete_consumer)],
    ) -> None: ...

    def complete(line: str) -> list[str]:
        monkeypatch.setenv("_DEMO_COMPLETE", "complete_bash")
        monkeypatch.setenv("COMP_WORDS", line)
        monkeypatch.setenv("COMP_CWORD", str(len(line.split(" ")) - 1))
        enable_shell_completion()  # registers the classes once _STREAMCTL_COMPLETE is set
        res = CliRunner().invoke(demo, [], prog_name="demo")
        return [w for w in res.stdout.split("\n") if w]

    monkeypatch.setenv("_STREAMCTL_COMPLETE", "complete_bash")
    url = one_server.url
    assert complete(f"demo -u {url} delconsumer pay") == ["payments"]
    assert complete(f"demo -u {url} delconsumer orders b") == ["billing"]
    assert complete(f"demo -u {url} delconsumer orders billing ") == ["worker-1", "worker-2"]
    assert complete(f"demo -u {url} delconsumer orders audit ") == ["auditor"]
    assert complete(f"demo -u {url} delconsumer orders nope ") == []
