"""Presentation of check, top, bench, profile and demo: plain data for json/yaml, Rich tables, and
sparklines.

The models come from core.models_health and core.models_demo (redis-free); the plain-data shapes
of the reports are registered with render.serialize when this module is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamctl.core.models_health import (
    BenchResult,
    CheckReport,
    CheckResult,
    ProfileView,
    TopReport,
)
from streamctl.ids import format_duration, format_time, id_ms
from streamctl.render.serialize import time_of
from streamctl.wording import count_noun

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

    # the demo's steps have no registered shape: typing only, so that check, top and profile
    # do not pay for defining them
    from streamctl.core.models_demo import ClaimStep, ConsumeStep, GroupsStep, PendingStep

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int | None = None) -> str:
    """One block per value, scaled to the largest value shown (all zero: the lowest block)."""
    if width is not None:
        values = values[-width:] if width > 0 else []
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return SPARK_BLOCKS[0] * len(values)
    last = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[max(0, min(last, round(v / top * last)))] for v in values)


def _table(title: str | None = None) -> Table:
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _rate_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _ms(value: int | None) -> str:
    return "-" if value is None else format_duration(value)


# ---------------------------------------------------------------- check


def check_result_data(r: CheckResult) -> dict[str, Any]:
    return {
        "stream": r.stream,
        "group": r.group,
        "check": r.check,
        "value": r.value,
        "max": r.max,
        "status": r.status,
    }


def check_data(report: CheckReport) -> dict[str, Any]:
    return {
        "status": report.status,
        "breached": report.breached,
        "checks": [check_result_data(r) for r in report.results],
    }


def check_value(check: str, value: int | None) -> str:
    """A check's value or limit as shown: a duration for *_ms checks, a count otherwise."""
    if value is None:
        return "-"
    return format_duration(value) if check.endswith("_ms") else f"{value:,}"


CHECK_LABELS = {
    "length": "length",
    "lag": "lag",
    "pending": "pending",
    "idle_ms": "idle",
    "behind_ms": "behind",
}


def check_table(report: CheckReport) -> RenderableType:
    from rich.text import Text

    if not report.results:
        return Text("nothing to check: no streams (or groups) matched", style="dim")
    table = _table()
    table.add_column("stream")
    table.add_column("group")
    table.add_column("check")
    table.add_column("value", justify="right")
    table.add_column("max", justify="right")
    table.add_column("status")
    approximate = set(report.approximate)
    for r in report.results:
        value = check_value(r.check, r.value)
        if r.check == "idle_ms" and f"{r.stream}/{r.group}" in approximate:
            value = "≥ " + value
        status = Text("BREACHED", style="bold red") if r.breached else Text(r.status, style="green")
        table.add_row(
            r.stream,
            r.group or "-",
            CHECK_LABELS.get(r.check, r.check),
            value,
            "-" if r.max is None else check_value(r.check, r.max),
            status,
        )
    n = len(report.results)
    if report.breached:
        table.caption = (
            f"{report.breached} of {count_noun(n, 'check', 'checks', grouped=False)} breached"
        )
    elif report.thresholds.any:
        table.caption = f"all {n} checks ok"
    else:
        table.caption = "no thresholds given: values only (see --max-lag, --max-pending, ...)"
    table.caption_justify = "left"
    return table


# ---------------------------------------------------------------- top


def top_data(report: TopReport) -> dict[str, Any]:
    return {
        "time": format_time(report.time_ms),
        "interval_ms": report.interval_ms,
        "streams": [
            {
                "stream": s.name,
                "length": s.length,
                "entries_added": s.entries_added,
                "in_rate": _rate(s.in_rate),
                "groups": [
                    {
                        "group": g.name,
                        "consumers": g.consumers,
                        "lag": g.lag,
                        "lag_computed": g.lag_computed,
                        "pending": g.pending,
                        "entries_read": g.entries_read,
                        "out_rate": _rate(g.out_rate),
                        "oldest_pending_id": g.oldest_pending_id,
                        "oldest_pending_time": time_of(g.oldest_pending_id),
                        "oldest_pending_age_ms": g.oldest_pending_age_ms,
                        "oldest_pending_idle_ms": g.oldest_pending_idle_ms,
                    }
                    for g in s.groups
                ],
            }
            for s in report.streams
        ],
    }


def top_table(
    report: TopReport,
    *,
    title: str | None = None,
    spark_width: int = 30,
) -> RenderableType:
    """The dashboard: a row per stream (incoming) and, under it, a row per group (outgoing)."""
    from rich import box
    from rich.console import Group as RichGroup
    from rich.table import Table
    from rich.text import Text

    caption = f"server time {format_time(report.time_ms)}"
    if report.interval_ms:
        caption += f", every {format_duration(report.interval_ms)}"
    caption += f"; rates per second, trend over {format_duration(report.window_ms)}"
    if not report.streams:
        return RichGroup(
            Text(title or "", style="bold"), Text("no streams match", style="dim"), Text(caption)
        )
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        caption=caption,
        caption_justify="left",
    )
    table.add_column("stream / group", no_wrap=True)
    table.add_column("length", justify="right")
    table.add_column("in/s", justify="right")
    table.add_column("lag", justify="right")
    table.add_column("pending", justify="right")
    table.add_column("out/s", justify="right")
    table.add_column("oldest pending", justify="right")
    table.add_column("trend", no_wrap=True)
    for s in report.streams:
        table.add_row(
            Text(s.name, style="bold"),
            _count(s.length),
            _rate_text(s.in_rate),
            "",
            "",
            "",
            "",
            Text(sparkline(s.history, spark_width), style="cyan"),
        )
        for i, g in enumerate(s.groups):
            branch = "└" if i == len(s.groups) - 1 else "├"
            lag = _count(g.lag) + ("*" if g.lag_computed else "")
            pending_style = "yellow" if g.pending else ""
            table.add_row(
                f" {branch} {g.name}",
                "",
                "",
                lag,
                Text(_count(g.pending), style=pending_style),
                _rate_text(g.out_rate),
                _ms(g.oldest_pending_age_ms),
                Text(sparkline(g.history, spark_width), style="magenta"),
            )
    return table


# ---------------------------------------------------------------- bench


def bench_data(result: BenchResult) -> dict[str, Any]:
    return {
        "stream": result.stream,
        "events": result.events,
        "size": result.size,
        "producers": result.producers,
        "consumers": result.consumers,
        "batch": result.batch,
        "publish": {
            "events": result.published,
            "seconds": round(result.publish_seconds, 4),
            "events_per_second": round(result.publish_rate, 1),
            "mb_per_second": round(result.publish_rate * result.size / 1e6, 2),
        },
        "consume": (
            {
                "events": result.consumed,
                "seconds": round(result.consume_seconds, 4),
                "events_per_second": round(result.consume_rate, 1),
                "mb_per_second": round(result.consume_rate * result.size / 1e6, 2),
            }
            if result.consumers
            else None
        ),
        "latency_ms": (
            {k: round(v, 3) for k, v in result.latency_ms.items()} if result.latency_ms else None
        ),
    }


def bench_table(result: BenchResult) -> RenderableType:
    from rich.console import Group as RichGroup
    from rich.text import Text

    heading = Text(
        f"{count_noun(result.events, 'event', 'events')} of "
        f"{count_noun(result.size, 'byte', 'bytes')}, "
        f"{count_noun(result.producers, 'producer', 'producers', grouped=False)}, "
        f"{count_noun(result.consumers, 'consumer', 'consumers', grouped=False)}, "
        f"batches of {result.batch}",
        style="bold",
    )
    table = _table()
    table.add_column("")
    table.add_column("events", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("events/s", justify="right")
    table.add_column("MB/s", justify="right")
    table.add_row(
        "publish",
        f"{result.published:,}",
        f"{result.publish_seconds:.3f}",
        f"{result.publish_rate:,.0f}",
        f"{result.publish_rate * result.size / 1e6:,.2f}",
    )
    if result.consumers:
        table.add_row(
            "consume",
            f"{result.consumed:,}",
            f"{result.consume_seconds:.3f}",
            f"{result.consume_rate:,.0f}",
            f"{result.consume_rate * result.size / 1e6:,.2f}",
        )
    if not result.latency_ms:
        return RichGroup(heading, table)
    latency = _table()
    latency.add_column("latency (ms)")
    for name in result.latency_ms:
        latency.add_column(name, justify="right")
    latency.add_row("publish to receipt", *(f"{v:,.3f}" for v in result.latency_ms.values()))
    return RichGroup(heading, table, latency)


# ---------------------------------------------------------------- profiles


def profile_data(p: ProfileView) -> dict[str, Any]:
    data: dict[str, Any] = {"name": p.name, "default": p.default, "url": p.url}
    for key in ("username", "password", "password_env", "ca_cert", "cluster", "timeout"):
        value = getattr(p, key)
        if value is not None:
            data[key] = value
    if p.password_env is not None:
        data["password_env_set"] = p.password_env_set
    return data


def profiles_table(profiles: list[ProfileView]) -> RenderableType:
    from rich.text import Text

    if not profiles:
        return Text("no profiles (add one: streamctl profile add NAME --url ...)", style="dim")
    table = _table()
    table.add_column("", no_wrap=True)
    table.add_column("profile", style="bold")
    table.add_column("url")
    table.add_column("username")
    table.add_column("password")
    table.add_column("cluster")
    for p in profiles:
        table.add_row(
            "*" if p.default else "",
            p.name,
            p.url,
            p.username or "-",
            _password_text(p),
            "yes" if p.cluster else "-",
        )
    return table


def _password_text(p: ProfileView) -> str:
    if p.password_env:
        return f"${p.password_env}" + ("" if p.password_env_set else " (not set)")
    return p.password or "-"


def profile_view(p: ProfileView) -> RenderableType:
    from rich.table import Table

    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("profile", p.name + ("  (default)" if p.default else ""))
    table.add_row("url", p.url)
    table.add_row("username", p.username or "-")
    table.add_row("password", _password_text(p))
    table.add_row("ca_cert", p.ca_cert or "-")
    table.add_row("cluster", "yes" if p.cluster else ("detect" if p.cluster is None else "no"))
    if p.timeout is not None:
        table.add_row("timeout", f"{p.timeout:g}s")
    return table


# ---------------------------------------------------------------- demo


def demo_groups_table(step: GroupsStep) -> RenderableType:
    """A narrow `group ls` for the demo: what the story is about, on an 80-column terminal."""
    table = _table()
    table.add_column("group", style="bold")
    table.add_column("consumers", justify="right")
    table.add_column("pending", justify="right")
    table.add_column("last delivered", no_wrap=True)
    table.add_column("lag", justify="right")
    for g in step.groups:
        table.add_row(
            g.name, str(g.consumers), f"{g.pending:,}", g.last_delivered_id, _count(g.lag)
        )
    return table


def consumed_table(step: ConsumeStep) -> RenderableType:
    from rich.text import Text

    table = _table()
    table.add_column("consumer", style="bold")
    table.add_column("id", no_wrap=True)
    table.add_column("time", style="dim", no_wrap=True)
    table.add_column("order")
    table.add_column("acked")
    for d in step.deliveries:
        table.add_row(
            d.consumer,
            d.id,
            format_time(id_ms(d.id)),
            d.summary,
            Text("yes", style="green") if d.acked else Text("no", style="yellow"),
        )
    return table


def pending_table(step: PendingStep) -> RenderableType:
    table = _table()
    table.add_column("id", no_wrap=True)
    table.add_column("time", style="dim", no_wrap=True)
    table.add_column("consumer", style="bold")
    table.add_column("idle", justify="right")
    table.add_column("deliveries", justify="right")
    for p in step.entries:
        table.add_row(
            p.id,
            format_time(id_ms(p.id)),
            p.consumer,
            format_duration(p.idle_ms),
            str(p.deliveries),
        )
    return table


def claim_table(step: ClaimStep) -> RenderableType:
    from rich.text import Text

    table = _table()
    table.add_column("id", no_wrap=True)
    table.add_column("from", style="dim")
    table.add_column("claimed by", style="bold")
    table.add_column("acked")
    for c in step.claimed:
        table.add_row(c.id, c.previous_consumer, step.consumer, Text("yes", style="green"))
    return table


# ---------------------------------------------------------------- plain-data shapes
