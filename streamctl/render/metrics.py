"""The Prometheus text exposition (format 0.0.4) of a metrics snapshot, and the collector that
`metrics --listen` serves with prometheus_client: it takes a fresh snapshot on every scrape.

The families are built once (`families`); a one-shot `metrics` writes them itself, byte for
byte what prometheus_client's generate_latest writes for them (tests/cli/test_metrics.py
compares the two), without importing prometheus_client; `--listen` hands them to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from streamctl.core.models_monitoring import MetricsSnapshot

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import CollectorRegistry

S = ("stream",)
SG = ("stream", "group")
SGC = ("stream", "group", "consumer")


def _seconds(ms: int) -> float:
    return ms / 1000.0


Family = tuple[str, str, str, tuple[str, ...], list[tuple[tuple[str, ...], float]]]
"""(name, type, help, label names, samples as (label values, value)): a family before it is
written (exposition) or handed to prometheus_client (metric_families, for --listen)."""


def _family(name: str, kind: str, help_text: str, labels: tuple[str, ...] = ()) -> Family:
    return (name, kind, help_text, labels, [])


def families(snap: MetricsSnapshot) -> list[Family]:
    """The families of the SPEC, each with HELP and TYPE; families without a sample are left
    out. A snapshot of a server that did not answer is `streamctl_up 0` and nothing else."""
    up = _family(
        "streamctl_up", "gauge", "1 if the server answered this scrape, else 0 (and nothing else)."
    )
    up[4].append(((), 1 if snap.up else 0))
    if not snap.up:
        return [up]

    length = _family("streamctl_stream_length", "gauge", "Entries in the stream (XLEN).", S)
    added = _family(
        "streamctl_stream_entries_added", "counter", "Entries ever added to the stream.", S
    )
    oldest = _family(
        "streamctl_stream_oldest_entry_age_seconds",
        "gauge",
        "Age of the stream's oldest entry, by the server's clock.",
        S,
    )
    newest = _family(
        "streamctl_stream_newest_entry_age_seconds",
        "gauge",
        "Age of the stream's newest entry, by the server's clock.",
        S,
    )
    lag = _family(
        "streamctl_group_lag",
        "gauge",
        "Entries not yet delivered to the group (computed where the server reports none).",
        SG,
    )
    pending = _family(
        "streamctl_group_pending",
        "gauge",
        "Entries delivered to the group, not acknowledged.",
        SG,
    )
    group_consumers = _family("streamctl_group_consumers", "gauge", "Consumers in the group.", SG)
    entries_read = _family(
        "streamctl_group_entries_read",
        "counter",
        "Entries the group has read (entries-read).",
        SG,
    )
    pending_idle = _family(
        "streamctl_group_oldest_pending_idle_seconds",
        "gauge",
        "Time since the oldest pending entry of the group was last delivered (0 with nothing "
        "pending).",
        SG,
    )
    behind = _family(
        "streamctl_group_behind_seconds",
        "gauge",
        "Time from the group's last delivered entry to the stream's newest entry.",
        SG,
    )
    consumer_pending = _family(
        "streamctl_consumer_pending", "gauge", "Entries pending for the consumer.", SGC
    )
    consumer_idle = _family(
        "streamctl_consumer_idle_seconds",
        "gauge",
        "Time since the consumer's last attempted interaction.",
        SGC,
    )
    for s in snap.streams:
        key = (s.name,)
        length[4].append((key, s.length))
        if s.entries_added is not None:
            added[4].append((key, s.entries_added))
        if s.oldest_entry_age_ms is not None:
            oldest[4].append((key, _seconds(s.oldest_entry_age_ms)))
        if s.newest_entry_age_ms is not None:
            newest[4].append((key, _seconds(s.newest_entry_age_ms)))
        for g in s.groups:
            labels = (s.name, g.name)
            if g.lag is not None:
                lag[4].append((labels, g.lag))
            pending[4].append((labels, g.pending))
            group_consumers[4].append((labels, g.consumers))
            if g.entries_read is not None:
                entries_read[4].append((labels, g.entries_read))
            pending_idle[4].append((labels, _seconds(g.oldest_pending_idle_ms)))
            if g.behind_ms is not None:
                behind[4].append((labels, _seconds(g.behind_ms)))
            for c in g.consumer_list or ():
                consumer_pending[4].append(((*labels, c.name), c.pending))
                consumer_idle[4].append(((*labels, c.name), _seconds(c.idle_ms)))

    duration = _family("streamctl_scrape_duration_seconds", "gauge", "How long this scrape took.")
    duration[4].append(((), snap.duration_s))
    count = _family("streamctl_streams", "gauge", "How many streams this scrape covered.")
    count[4].append(((), len(snap.streams)))
    truncated = _family(
        "streamctl_streams_truncated",
        "gauge",
        "1 when more streams matched than the scrape covers (--max-streams), else 0.",
    )
    truncated[4].append(((), 1 if snap.truncated else 0))
    every = [
        up,
        length,
        added,
        oldest,
        newest,
        lag,
        pending,
        group_consumers,
        entries_read,
        pending_idle,
        behind,
        consumer_pending,
        consumer_idle,
        duration,
        count,
        truncated,
    ]
    return [f for f in every if f[4]]


def metric_families(snap: MetricsSnapshot) -> list[Metric]:
    """The families as prometheus_client metrics (what `metrics --listen` serves)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    out: list[Metric] = []
    for name, kind, help_text, label_names, samples in families(snap):
        cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        metric = cls(name, help_text, labels=label_names)
        for values, value in samples:
            metric.add_metric(list(values), value)
        out.append(metric)
    return out


def _go_float(d: float) -> str:
    """A sample value as prometheus_client writes it (its utils.floatToGoString)."""
    if type(d) is int and -(10**15) < d < 1_000_000:
        return f"{d}.0"  # repr(float(d)), without the float
    d = float(d)
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _label_value(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def exposition(snap: MetricsSnapshot) -> bytes:
    """The text exposition (format 0.0.4) of one snapshot, the bytes prometheus_client's
    generate_latest writes for metric_families (a test compares them), written here: on 20,000
    streams generate_latest took longer than reading the server."""
    out: list[str] = []
    # the label set of a sample, written once: a stream's or a group's appears in many families
    label_sets: dict[tuple[str, ...], dict[tuple[str, ...], str]] = {}
    for name, kind, help_text, label_names, samples in families(snap):
        sample_name = name + "_total" if kind == "counter" else name
        help_line = help_text.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {sample_name} {help_line}\n# TYPE {sample_name} {kind}\n")
        written = label_sets.setdefault(label_names, {})
        # labels in the order of their names, as generate_latest sorts them
        order = sorted(range(len(label_names)), key=lambda i: label_names[i])
        lines: list[str] = []
        append = lines.append
        for values, value in samples:
            labels = written.get(values)
            if labels is None:
                labels = written[values] = (
                    "{"
                    + ",".join(f'{label_names[i]}="{_label_value(values[i])}"' for i in order)
                    + "}"
                    if values
                    else ""
                )
            if type(value) is int and -(10**15) < value < 1_000_000:
                append(f"{sample_name}{labels} {value}.0\n")  # _go_float's first case, inline
            else:
                append(f"{sample_name}{labels} {_go_float(value)}\n")
        out.append("".join(lines))
    return "".join(out).encode("utf-8")


def registry_for(read: Callable[[], MetricsSnapshot]) -> CollectorRegistry:
    """A registry holding only a collector that reads the server on every scrape (no process
    or platform metrics)."""
    from prometheus_client.registry import Collector, CollectorRegistry

    class SnapshotCollector(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from metric_families(read())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector())
    return registry
