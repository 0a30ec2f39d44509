"""Presentation of `doctor`: plain data for json/yaml (registered with render.serialize when this
module is imported) and the Rich report: server, topology, capabilities, findings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamctl.core.models_monitoring import DoctorReport
from streamctl.render.serialize import endpoint_data, endpoint_text
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

LEVEL_STYLES = {"error": "bold red", "warning": "yellow", "unknown": "magenta", "ok": "green"}


def doctor_data(r: DoctorReport) -> dict[str, Any]:
    t = r.topology
    return {
        "url": r.url,
        "server": r.server,
        "version": r.version,
        "topology": {
            "mode": t.mode,
            "primaries": list(t.primaries),
            "replicas": list(t.replicas),
            "slots_served": t.slots_served,
            "detail": t.detail,
        },
        "capabilities": [
            {"name": c.name, "available": c.available, "detected_by": c.detail}
            for c in r.capabilities
        ],
        "findings": [
            {"check": f.check, "level": f.level, "message": f.message, "action": f.action}
            for f in r.findings
        ],
        "failed": r.failed,
        "connected": endpoint_data(r.endpoint),
    }


def _yes_no(value: bool | None) -> Text:
    from rich.text import Text

    if value is None:
        return Text("unknown", style="magenta")
    return Text("yes", style="green") if value else Text("no", style="dim")


def doctor_view(r: DoctorReport) -> RenderableType:
    from rich import box
    from rich.console import Group as RichGroup
    from rich.table import Table
    from rich.text import Text

    t = r.topology
    head = Table(box=None, show_header=False, pad_edge=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("server", f"{r.server} {r.version} at {r.url}")
    shape = t.mode
    if t.mode == "cluster":
        served = {True: "every slot served", False: "NOT every slot served", None: "slots unknown"}
        shape += f": {count_noun(len(t.primaries), 'primary', 'primaries', grouped=False)}, "
        shape += f"{count_noun(len(t.replicas), 'replica', 'replicas', grouped=False)}, "
        shape += served[t.slots_served]
    elif t.replicas:
        shape += f" with {count_noun(len(t.replicas), 'replica', 'replicas', grouped=False)}: "
        shape += ", ".join(t.replicas)
    elif t.detail:
        shape += f" ({t.detail})"
    head.add_row("topology", shape)
    if r.endpoint is not None:
        head.add_row("connected", endpoint_text(r.endpoint))

    caps = Table(title="capabilities", box=box.SIMPLE_HEAD, title_justify="left")
    caps.add_column("capability")
    caps.add_column("available")
    caps.add_column("detected by", style="dim")
    for c in r.capabilities:
        caps.add_row(c.name, _yes_no(c.available), c.detail)

    found = Table(title="findings", box=box.SIMPLE_HEAD, title_justify="left")
    found.add_column("level", no_wrap=True)
    found.add_column("check", no_wrap=True)
    found.add_column("finding", overflow="fold")
    found.add_column("what to do", overflow="fold")
    for f in r.findings:
        found.add_row(
            Text(f.level, style=LEVEL_STYLES.get(f.level, "")), f.check, f.message, f.action
        )
    return RichGroup(head, Text(""), caps, found)
