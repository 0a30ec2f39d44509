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
