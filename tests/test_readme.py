"""The README's command reference is generated from --help: this fails when it is stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_updater():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "update_readme", ROOT / "scripts/update_readme.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_reference_is_current():
    updater = load_updater()
    current = (ROOT / "README.md").read_text()
    assert updater.START in current and updater.END in current
    assert current == updater.updated_readme(), "run: python scripts/update_readme.py"


def test_quick_start_is_two_commands():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    block = quick.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["./dev demo", "./dev test"]


def python_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```python\n")[1:]]
    assert len(blocks) >= 2
    return blocks


def test_python_examples_run_as_written(one_server, r1, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    """Each example of "Use from Python" runs, in order, against a real server, and prints what
    its comments say."""
    monkeypatch.setenv("STREAMCTL_URL", one_server.url)
    for block in python_examples():
        exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})  # noqa: S102
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in out[:2]] == ["created", "shipped"]
    assert out[2:4] == ["billing 42", "billing 43"]
    assert out[4] == "stream 'no-such-stream' does not exist 4"
    assert out[5] == "healthy"
    assert r1.xinfo_groups("payments") == []
