"""The Prometheus text exposition (format 0.0.4) of a metrics snapshot, written by
prometheus_client (escaping, HELP/TYPE, the `_total` suffix of counters), and the collector
that `metrics --listen` serves: it takes a fresh snapshot on every scrape.

prometheus_client is imported here only, and this module only by the `metrics` command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from streamctl.core.models_monitoring import MetricsSnapshot

S = ("stream",)
SG = ("stream", "group")
SGC = ("stream", "group", "consumer")


def _seconds(ms: int) -> float:
    return ms / 1000.0


def metric_families(snap: MetricsSnapshot) -> list[Metric]:
    """The families of the SPEC, each with HELP and TYPE; families without a sample are left
    out. A snapshot of a server that did not answer is `streamctl_up 0` and nothing else."""
    up = GaugeMetricFamily(
        "streamctl_up", "1 if the server answered this scrape, else 0 (and nothing else)."
    )
    up.add_metric([], 1 if snap.up else 0)
    if not snap.up:
        return [up]

    length = GaugeMetricFamily("streamctl_stream_length", "Entries in the stream (XLEN).", labels=S)
    added = CounterMetricFamily(
        "streamctl_stream_entries_added", "Entries ever added to the stream.", labels=S
    )
    oldest = GaugeMetricFamily(
        "streamctl_stream_oldest_entry_age_seconds",
        "Age of the stream's oldest entry, by the server's clock.",
        labels=S,
    )
    newest = GaugeMetricFamily(
        "streamctl_stream_newest_entry_age_seconds",
        "Age of the stream's newest entry, by the server's clock.",
        labels=S,
    )
    lag = GaugeMetricFamily(
        "streamctl_group_lag",
        "Entries not yet delivered to the group (computed where the server reports none).",
        labels=SG,
    )
    pending = GaugeMetricFamily(
        "streamctl_group_pending", "Entries delivered to the group, not acknowledged.", labels=SG
    )
    group_consumers = GaugeMetricFamily(
        "streamctl_group_consumers", "Consumers in the group.", labels=SG
    )
    entries_read = CounterMetricFamily(
        "streamctl_group_entries_read", "Entries the group has read (entries-read).", labels=SG
    )
    pending_idle = GaugeMetricFamily(
        "streamctl_group_oldest_pending_idle_seconds",
        "Time since the oldest pending entry of the group was last delivered (0 with nothing "
        "pending).",
        labels=SG,
    )
    behind = GaugeMetricFamily(
        "streamctl_group_behind_seconds",
        "Time from the group's last delivered entry to the stream's newest entry.",
        labels=SG,
    )
    consumer_pending = GaugeMetricFamily(
        "streamctl_consumer_pending", "Entries pending for the consumer.", labels=SGC
    )
    consumer_idle = GaugeMetricFamily(
        "streamctl_consumer_idle_seconds",
        "Time since the consumer's last attempted interaction.",
        labels=SGC,
    )
    for s in snap.streams:
        length.add_metric([s.name], s.length)
        if s.entries_added is not None:
            added.add_metric([s.name], s.entries_added)
        if s.oldest_entry_age_ms is not None:
            oldest.add_metric([s.name], _seconds(s.oldest_entry_age_ms))
        if s.newest_entry_age_ms is not None:
            newest.add_metric([s.name], _seconds(s.newest_entry_age_ms))
        for g in s.groups:
            labels = [s.name, g.name]
            if g.lag is not None:
                lag.add_metric(labels, g.lag)
            pending.add_metric(labels, g.pending)
            group_consumers.add_metric(labels, g.consumers)
            if g.entries_read is not None:
                entries_read.add_metric(labels, g.entries_read)
            pending_idle.add_metric(labels, _seconds(g.oldest_pending_idle_ms))
            if g.behind_ms is not None:
                behind.add_metric(labels, _seconds(g.behind_ms))
            for c in g.consumer_list or ():
                consumer_pending.add_metric([*labels, c.name], c.pending)
                consumer_idle.add_metric([*labels, c.name], _seconds(c.idle_ms))

    duration = GaugeMetricFamily("streamctl_scrape_duration_seconds", "How long this scrape took.")
    duration.add_metric([], snap.duration_s)
    count = GaugeMetricFamily("streamctl_streams", "How many streams this scrape covered.")
    count.add_metric([], len(snap.streams))
    truncated = GaugeMetricFamily(
        "streamctl_streams_truncated",
        "1 when more streams matched than the scrape covers (--max-streams), else 0.",
    )
    truncated.add_metric([], 1 if snap.truncated else 0)
    families = [
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
    return [f for f in families if f.samples]


class SnapshotCollector(Collector):
    """A prometheus_client collector that reads the server on every scrape."""

    def __init__(self, read: Callable[[], MetricsSnapshot]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self._read())


def registry_for(read: Callable[[], MetricsSnapshot]) -> CollectorRegistry:
    """A registry holding only the snapshot collector (no process or platform metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(read))
    return registry


def exposition(snap: MetricsSnapshot) -> bytes:
    """The text exposition of one snapshot."""
    from prometheus_client.exposition import generate_latest

    return generate_latest(registry_for(lambda: snap))
