"""The root command: help, version, global options, error mapping, start-up imports, layering."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_process
from tests.servers import ServerProcess, server_binary

PACKAGE = Path(__file__).resolve().parents[2] / "streamctl"


def all_commands() -> list[tuple[str, object]]:
    import typer

    from streamctl.cli._click import click
    from streamctl.cli.app import app

    root = typer.main.get_command(app)
    out = []

    def walk(prefix: str, cmd: Any) -> None:
        if hasattr(cmd, "list_commands"):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(f"{prefix} {name}".strip(), cmd.get_command(ctx, name))
        else:
            out.append((prefix, cmd))

    walk("", root)
    return out


def test_every_command_module_is_in_the_table():
    """A module of streamctl.cli that defines `register` is a command: COMMANDS must list it
    (the one place to add one), and nothing else."""
    from streamctl.cli.app import COMMANDS

    registering = set()
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in tree.body):
            registering.add(path.stem)
    assert registering, "no command module found"
    assert sorted(set(COMMANDS.values())) == sorted(registering)
    for name, module in COMMANDS.items():
        assert name == module.rstrip("_"), f"{name!r} -> {module!r}"


def test_command_modules_keep_real_annotations():
    """typer reads each invoked command's signature (and the root callback's): string
    annotations (`from __future__ import annotations`) make it compile every one with eval,
    about a third of what a one-shot command adds to `import typer, redis`."""
    for path in sorted((PACKAGE / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        commands = any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in tree.body)
        if commands or path.stem == "app":
            future = [
                n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"
            ]
            assert not future, f"{path.name} turns its annotations into strings"


LOADED_COMMANDS_PROBE = """
import runpy, sys
sys.argv = ["streamctl", *sys.argv[1:]]
try:
    runpy.run_module("streamctl", run_name="__main__")
except SystemExit:
    pass
from streamctl.cli.app import COMMANDS
loaded = sorted(m for m in COMMANDS.values() if f"streamctl.cli.{m}" in sys.modules)
sys.stderr.write("LOADED=" + ",".join(loaded) + "\\n")
"""


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["range", "--help"], "range"),
        (["import", "--help"], "import_"),
        (["group", "ls", "--help"], "group"),
        (["-u", "redis://127.0.0.1:1/0", "ls"], "ls"),
    ],
)
def test_a_run_imports_only_the_command_it_invokes(args, loaded):
    proc = subprocess.run(
        [sys.executable, "-c", LOADED_COMMANDS_PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"LOADED={loaded}\n" in proc.stderr, proc.stderr


def test_usage_lines_show_arguments_conventionally(run_cli):
    """`STREAM [START] [END]`, `STREAMS...`: upper case, optional ones in brackets."""
    usage = {
        ("range",): "Usage: streamctl range [OPTIONS] STREAM [START] [END]",
        ("tail",): "Usage: streamctl tail [OPTIONS] STREAMS...",
        ("group", "setid"): "Usage: streamctl group setid [OPTIONS] STREAM GROUP",
    }
    for command, line in usage.items():
        res = run_cli([*command, "--help"])
        assert res.stdout.splitlines()[0] == line
    res = run_cli(["range", "--help"])
    assert "\n  STREAM  The stream to read.  [required]\n" in res.stdout


def test_a_mistyped_command_gets_a_suggestion(run_cli):
    res = run_cli(["pubish"])
    assert res.exit_code == 2
    assert res.stderr == (
        "error: No such command 'pubish'. Did you mean 'publish'? (see 'streamctl --help')\n"
    )


def test_every_command_has_help_with_an_example(run_cli):
    commands = all_commands()
    assert {"publish", "range", "ls", "info", "server"} <= {name for name, _ in commands}
    for name, _ in commands:
        res = run_cli([*name.split(), "--help"])
        assert res.exit_code == 0, name
        assert "Example" in res.stdout, f"'{name} --help' has no example"
        assert f"streamctl {name}" in res.stdout, f"'{name} --help' example does not run {name}"


def test_version(run_cli):
    from streamctl import __version__

    res = run_cli(["--version"])
    assert (res.exit_code, res.stdout) == (0, f"streamctl {__version__}\n")


IMPORT_PROBE = """
import runpy, sys
sys.argv = ["streamctl", *sys.argv[1:]]
try:
    runpy.run_module("streamctl", run_name="__main__")
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"redis", "rich", "yaml", "hiredis"})
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["publish", "--help"], []])
def test_help_and_version_import_neither_redis_nor_rich(args):
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *args], capture_output=True, text=True, timeout=60
    )
    assert "HEAVY=\n" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["publish", "s", "k=v"],
        ["check", "--max-lag", "10"],
        ["metrics"],
        ["-o", "json", "ls"],
        ["-o", "json", "info", "s"],
        ["-o", "json", "group", "ls", "s"],
        ["-o", "json", "doctor"],
    ],
)
def test_machine_output_loads_no_rich(one_server, r1, args):
    """Commands whose output goes to a pipe (JSON, NDJSON, the exposition) do not load rich:
    tens of milliseconds of every run of a script or a CI job."""
    r1.xadd("s", {"k": "v"})
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, "-u", one_server.url, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "HEAVY=hiredis,redis\n" in proc.stderr, proc.stderr


def test_no_arguments_shows_help(run_cli):
    res = run_cli([])
    assert res.exit_code == 2
    assert "Commands:" in res.stdout


def test_unknown_option_is_one_line(run_cli):
    res = run_cli(["--frobnicate", "ls"])
    assert res.exit_code == 2
    assert res.stderr == "error: No such option: --frobnicate (see 'streamctl --help')\n"
    res = run_cli(["range"])
    assert res.exit_code == 2
    assert res.stderr == "error: Missing argument 'stream'. (see 'streamctl range --help')\n"


def test_unknown_command(run_cli):
    res = run_cli(["frobnicate"])
    assert res.exit_code == 2
    assert len(res.stderr.splitlines()) == 1


def test_output_flag_before_or_after_the_command_and_env(cli, r):
    r.xadd("s", {"a": 1})
    assert cli("-o", "yaml", "ls").stdout.startswith("- name: s")
    assert cli("ls", "-o", "yaml").stdout.startswith("- name: s")
    assert cli("ls", env={"STREAMCTL_OUTPUT": "yaml"}).stdout.startswith("- name: s")
    # the flag after the command wins over the global one
    assert cli("-o", "yaml", "ls", "-o", "json").stdout.startswith("[")
    bad = cli("-o", "xml", "ls")
    assert bad.exit_code == 2


def test_url_from_environment(one_server, r1, run_cli):
    r1.xadd("s", {"a": 1})
    res = run_cli(["ls", "-o", "json"], env={"REDIS_URL": one_server.url})
    assert [s["name"] for s in res.json()] == ["s"]
    res = run_cli(
        ["ls", "-o", "json"],
        env={"REDIS_URL": "redis://127.0.0.1:1/0", "STREAMCTL_URL": one_server.url},
    )
    assert res.exit_code == 0


def test_profile_from_the_config_file(one_server, r1, run_cli, tmp_path):
    r1.xadd("s", {"a": 1})
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "default: dead\nprofiles:\n  dead: {url: 'redis://127.0.0.1:1/0'}\n"
        f"  live: {{url: '{one_server.url}'}}\n"
    )
    assert run_cli(["--config", str(cfg), "ls"]).exit_code == 3
    assert run_cli(["--config", str(cfg), "-P", "live", "ls"]).exit_code == 0
    assert run_cli(["-P", "live", "ls"], env={"STREAMCTL_CONFIG": str(cfg)}).exit_code == 0
    res = run_cli(["--config", str(cfg), "-P", "nope", "ls"])
    assert res.exit_code == 2
    assert "no profile 'nope'" in res.stderr


def test_auth_failure_is_exit_3_and_masked(one_server, run_cli):
    url = one_server.url.replace("redis://", "redis://someone:topsecret@")
    res = run_cli(["-u", url, "ls"])
    assert res.exit_code == 3
    assert "topsecret" not in res.stderr
    assert "***" in res.stderr
    assert len(res.stderr.splitlines()) == 1


def test_debug_shows_a_traceback_without_secrets(run_cli):
    res = run_cli(["-u", "redis://u:hunter22@127.0.0.1:1/0", "ls"], env={"STREAMCTL_DEBUG": "1"})
    assert res.exit_code == 3
    assert "Traceback" in res.stderr
    assert "hunter22" not in res.stderr


def test_timeout_must_be_positive(run_cli):
    res = run_cli(["--timeout", "0", "ls"])
    assert res.exit_code == 2
    assert "--timeout" in res.stderr


def test_unix_socket(tmp_path):
    binary = server_binary("valkey9.1")
    if binary is None:
        pytest.skip("valkey not available")
    sock = tmp_path / "v.sock"
    srv = ServerProcess("valkey9.1", binary, extra=["--unixsocket", str(sock)]).start()
    try:
        proc = run_process(["-u", f"unix://{sock}", "publish", "s", "a=1"])
        assert proc.returncode == 0, proc.stderr
        proc = run_process(["-u", f"unix://{sock}", "range", "s"])
        assert b'"fields":{"a":"1"}' in proc.stdout
    finally:
        srv.stop()


# ---- layering (DESIGN.md) ----

FORBIDDEN = {
    "cli": {"redis", "hiredis"},
    "core": {"typer", "rich", "click"},
    "render": {"redis", "typer", "click", "hiredis"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layering(layer):
    offenders = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        bad = imported_roots(path) & FORBIDDEN[layer]
        if bad:
            offenders.append(f"{path.relative_to(PACKAGE)} imports {', '.join(sorted(bad))}")
    assert offenders == []


# render takes its models from the redis-free model modules only: core.models and its siblings
# core.models_<topic> (kept apart for start-up time), never from a core module that uses redis
MODEL_MODULE = re.compile(r"streamctl\.core\.models(_[a-z]+)?")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (typing-only and function-local imports included), with
    `from streamctl.core import x` counted as streamctl.core.x and relative imports resolved."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if base == "streamctl.core"}
    return found


def test_render_imports_only_the_model_modules_from_core():
    offenders = []
    for path in sorted((PACKAGE / "render").rglob("*.py")):
        for name in sorted(imported_modules(path)):
            inside_core = name.startswith("streamctl.core.")
            if inside_core and not MODEL_MODULE.fullmatch(name):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


def redis_free_modules() -> list[str]:
    models = sorted(p.stem for p in (PACKAGE / "core").glob("models*.py"))
    render = sorted(p.stem for p in (PACKAGE / "render").glob("*.py") if p.stem != "__init__")
    assert "models" in models and "serialize" in render
    return [f"streamctl.core.{m}" for m in models] + [f"streamctl.render.{m}" for m in render]


LOADED_PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
print(" ".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("module", redis_free_modules())
def test_model_and_render_modules_load_without_redis(module):
    proc = subprocess.run(
        [sys.executable, "-c", LOADED_PROBE, module], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in ("redis", "hiredis")]
    core = [m for m in loaded if m.startswith("streamctl.core.")]
    assert [m for m in core if not MODEL_MODULE.fullmatch(m)] == []


def test_project_never_reads_shared():
    for path in PACKAGE.rglob("*.py"):
        assert "../shared" not in path.read_text(), path
