"""The Prometheus text exposition (format 0.0.4) of a metrics snapshot, and the collector that
`metrics --listen` serves with prometheus_client: it takes a fresh snapshot on every scrape.

The families are defined once (SPECS: name, type, help, level and the value of a member);
`--listen` hands them to prometheus_client (`families`), and a one-shot `metrics` writes them
itself (`exposition`), byte for byte what prometheus_client's generate_latest writes
(tests/cli/test_metrics.py compares the two), without importing prometheus_client.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from streamctl.core.models_monitoring import MetricsSnapshot

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import CollectorRegistry

S = ("stream",)
SG = ("stream", "group")
SGC = ("stream", "group", "consumer")


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


Family = tuple[str, str, str, tuple[str, ...], list[tuple[tuple[str, ...], float]]]
"""(name, type, help, label names, samples as (label values, value)): a family before it is
handed to prometheus_client (metric_families, for --listen)."""

Level = Literal["scrape", "stream", "group", "consumer"]
LABELS: dict[Level, tuple[str, ...]] = {"scrape": (), "stream": S, "group": SG, "consumer": SGC}


class Spec(NamedTuple):
    """A family of the SPEC: a sample for each member of its level (the scrape, each stream,
    each group, each consumer) whose `value` is not None."""

    name: str
    kind: str  # gauge | counter
    help: str
    level: Level
    value: Callable[[Any], float | None]


# The families in the order they are written; a family without a sample is left out.
SPECS: tuple[Spec, ...] = (
    Spec(
        "streamctl_up",
        "gauge",
        "1 if the server answered this scrape, else 0 (and nothing else).",
        "scrape",
        lambda snap: 1 if snap.up else 0,
    ),
    Spec(
        "streamctl_stream_length",
        "gauge",
        "Entries in the stream (XLEN).",
        "stream",
        attrgetter("length"),
    ),
    Spec(
        "streamctl_stream_entries_added",
        "counter",
        "Entries ever added to the stream.",
        "stream",
        attrgetter("entries_added"),
    ),
    Spec(
        "streamctl_stream_oldest_entry_age_seconds",
        "gauge",
        "Age of the stream's oldest entry, by the server's clock.",
        "stream",
        lambda s: _seconds(s.oldest_entry_age_ms),
    ),
    Spec(
        "streamctl_stream_newest_entry_age_seconds",
        "gauge",
        "Age of the stream's newest entry, by the server's clock.",
        "stream",
        lambda s: _seconds(s.newest_entry_age_ms),
    ),
    Spec(
        "streamctl_group_lag",
        "gauge",
        "Entries not yet delivered to the group (computed where the server reports none).",
        "group",
        attrgetter("lag"),
    ),
    Spec(
        "streamctl_group_pending",
        "gauge",
        "Entries delivered to the group, not acknowledged.",
        "group",
        attrgetter("pending"),
    ),
    Spec(
        "streamctl_group_consumers",
        "gauge",
        "Consumers in the group.",
        "group",
        attrgetter("consumers"),
    ),
    Spec(
        "streamctl_group_entries_read",
        "counter",
        "Entries the group has read (entries-read).",
        "group",
        attrgetter("entries_read"),
    ),
    Spec(
        "streamctl_group_oldest_pending_idle_seconds",
        "gauge",
        "Time since the oldest pending entry of the group was last delivered (0 with nothing "
        "pending).",
        "group",
        lambda g: _seconds(g.oldest_pending_idle_ms),
    ),
    Spec(
        "streamctl_group_behind_seconds",
        "gauge",
        "Time from the group's last delivered entry to the stream's newest entry.",
        "group",
        lambda g: _seconds(g.behind_ms),
    ),
    Spec(
        "streamctl_consumer_pending",
        "gauge",
        "Entries pending for the consumer.",
        "consumer",
        attrgetter("pending"),
    ),
    Spec(
        "streamctl_consumer_idle_seconds",
        "gauge",
        "Time since the consumer's last attempted interaction.",
        "consumer",
        lambda c: _seconds(c.idle_ms),
    ),
    Spec(
        "streamctl_scrape_duration_seconds",
        "gauge",
        "How long this scrape took.",
        "scrape",
        attrgetter("duration_s"),
    ),
    Spec(
        "streamctl_streams",
        "gauge",
        "How many streams this scrape covered.",
        "scrape",
        lambda snap: len(snap.streams),
    ),
    Spec(
        "streamctl_streams_truncated",
        "gauge",
        "1 when more streams matched than the scrape covers (--max-streams), else 0.",
        "scrape",
        lambda snap: 1 if snap.truncated else 0,
    ),
)


Member = tuple[tuple[str, ...], str, Any]
"""(label values, the label set as the exposition writes it, the scrape/stream/group/consumer)"""


def _members(snap: MetricsSnapshot) -> dict[Level, list[Member]]:
    """The members of each level with their labels. A snapshot of a server that did not answer
    has only the scrape (only `streamctl_up` is written for it). Label sets are written in the
    order of the label names (consumer, group, stream), as generate_latest sorts them."""
    scrape: list[Member] = [((), "", snap)]
    streams: list[Member] = []
    groups: list[Member] = []
    consumers: list[Member] = []
    if snap.up:
        for s in snap.streams:
            sv = _label_value(s.name)
            streams.append(((s.name,), f'{{stream="{sv}"}}', s))
            for g in s.groups:
                gv = _label_value(g.name)
                groups.append(((s.name, g.name), f'{{group="{gv}",stream="{sv}"}}', g))
                for c in g.consumer_list or ():
                    cv = _label_value(c.name)
                    consumers.append(
                        (
                            (s.name, g.name, c.name),
                            f'{{consumer="{cv}",group="{gv}",stream="{sv}"}}',
                            c,
                        )
                    )
    return {"scrape": scrape, "stream": streams, "group": groups, "consumer": consumers}


def _specs(snap: MetricsSnapshot) -> tuple[Spec, ...]:
    return SPECS if snap.up else SPECS[:1]


def families(snap: MetricsSnapshot) -> list[Family]:
    """The families of the SPEC with their samples, each with HELP and TYPE; families without
    a sample are left out. A server that did not answer is `streamctl_up 0` and nothing else."""
    members = _members(snap)
    out: list[Family] = []
    for spec in _specs(snap):
        get = spec.value
        samples = [(values, v) for values, _, m in members[spec.level] if (v := get(m)) is not None]
        if samples:
            out.append((spec.name, spec.kind, spec.help, LABELS[spec.level], samples))
    return out


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
    streams generate_latest took longer than reading the server. Each member's label set is
    written once (`_members`) and reused by every family of its level."""
    out: list[str] = []
    members = _members(snap)
    for spec in _specs(snap):
        sample_name = spec.name + "_total" if spec.kind == "counter" else spec.name
        get = spec.value
        lines = [
            # _go_float's common cases inline: small counts, and seconds below 1e6 (repr)
            f"{sample_name}{labels} {v}.0\n"
            if type(v) is int and -(10**15) < v < 1_000_000
            else f"{sample_name}{labels} {v!r}\n"
            if type(v) is float and -1e300 < v < 1e6
            else f"{sample_name}{labels} {_go_float(v)}\n"
            for _, labels, member in members[spec.level]
            if (v := get(member)) is not None
        ]
        if lines:
            help_line = spec.help.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {sample_name} {help_line}\n# TYPE {sample_name} {spec.kind}\n")
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
