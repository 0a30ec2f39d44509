"""The views: models in, text out (no server needed). Tables are rendered on a fixed-width
console without color; plain data is what -o json writes."""

from __future__ import annotations

import json
import subprocess
import sys

from rich.console import Console

from streamctl.core.models import Entry, GroupInfo
from streamctl.core.models_health import CheckReport, CheckResult, Thresholds
from streamctl.core.models_pending import PendingSummary
from streamctl.render import serialize
from streamctl.render.groups import summary_view
from streamctl.render.health import check_table, check_value
from streamctl.render.tables import entries_table, groups_table

T0 = 1795773600000  # 2026-11-27T10:00:00Z


def text_of(renderable: object, width: int = 120) -> str:
    console = Console(width=width, no_color=True, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_entries_table_shows_time_and_odd_bytes() -> None:
    entry = Entry("orders", f"{T0}-0", ((b"status", b"created"), (b"blob", b"\xff\x00")))
    out = text_of(entries_table([entry]))
    assert f"{T0}-0" in out
    assert "2026-11-27T10:00:00.000Z" in out
    assert "status=created" in out
    assert "\\xff" in out  # bytes that are not UTF-8 are shown escaped, never as mojibake


def test_groups_table_marks_a_computed_lag() -> None:
    groups = [
        GroupInfo("orders", "billing", 2, 3, f"{T0}-0", 10, 4, lag_computed=True, behind_ms=90_000),
        GroupInfo("orders", "audit", 0, 0, "0-0", None, None),
    ]
    out = text_of(groups_table(groups))
    billing = next(line for line in out.splitlines() if "billing" in line)
    assert billing.split() == [
        "billing", "2", "3", f"{T0}-0", "2026-11-27T10:00:00.000Z", "10", "4", "(computed)",
        "1m30s",
    ]  # fmt: skip
    audit = next(line for line in out.splitlines() if "audit" in line)
    assert audit.split() == ["audit", "0", "0", "0-0", "-", "-", "-", "-"]  # unknown, not 0


def test_check_table_says_what_breached() -> None:
    report = CheckReport(
        results=(
            CheckResult("orders", "billing", "lag", 1500, 1000, "breached"),
            CheckResult("orders", "billing", "idle_ms", 30_000, 600_000, "ok"),
        ),
        thresholds=Thresholds(max_lag=1000, max_idle_ms=600_000),
    )
    out = text_of(check_table(report))
    assert "BREACHED" in out
    assert "1 of 2 checks breached" in out
    assert check_value("idle_ms", 30_000) in out
    data = serialize.to_data(report)
    assert data["status"] == "breached"


def test_pending_summary_view_and_data() -> None:
    summary = PendingSummary(
        "orders", "billing", 3, f"{T0}-0", f"{T0 + 5000}-0", (("w1", 2), ("w2", 1)), T0 + 65_000
    )
    out = text_of(summary_view(summary))
    assert "3" in out and "w1" in out and "w2" in out
    data = serialize.to_data(summary)
    assert data["count"] == 3
    assert json.dumps(data)  # plain data, writable as JSON


def test_every_converter_in_the_table_exists() -> None:
    import importlib

    for model, (module, function) in serialize.CONVERTERS.items():
        core_module, cls_name = model.rsplit(".", 1)
        cls = getattr(importlib.import_module(f"streamctl.core.{core_module}"), cls_name)
        converter = getattr(importlib.import_module(f"streamctl.render.{module}"), function)
        assert serialize.converter_of(cls) is converter


def test_a_model_gets_its_shape_whichever_modules_are_loaded() -> None:
    """No registration by the side effect of an import: in a fresh interpreter that never
    imported render.health, a CheckReport still gets check_data's shape."""
    code = (
        "import json, sys\n"
        "from streamctl.core.models_health import CheckReport, Thresholds\n"
        "from streamctl.render.serialize import to_data\n"
        "assert 'streamctl.render.health' not in sys.modules\n"
        "print(json.dumps(to_data(CheckReport(results=(), thresholds=Thresholds()))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    from streamctl.render.health import check_data

    assert json.loads(out.stdout) == check_data(CheckReport(results=(), thresholds=Thresholds()))
