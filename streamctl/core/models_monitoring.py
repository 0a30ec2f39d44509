"""The models of `metrics` and `doctor`: frozen dataclasses from core.metrics and core.doctor,
shown by render.monitoring. Redis-free, like every core.models* module."""

from __future__ import annotations

from dataclasses import dataclass

from streamctl.core.models import Endpoint

# ---- metrics ----


@dataclass(frozen=True)
class ConsumerMetrics:
    name: str
    pending: int
    idle_ms: int


@dataclass(frozen=True)
class GroupMetrics:
    name: str
    consumers: int
    pending: int
    lag: int | None  # None: it cannot be known (the family leaves the group out)
    lag_computed: bool  # the server reported none: counted from the stream
    entries_read: int | None  # None: the server does not report it
    oldest_pending_idle_ms: int  # 0 with nothing pending
    behind_ms: int | None
    consumer_list: tuple[ConsumerMetrics, ...] | None = None  # None: not asked for


@dataclass(frozen=True)
class StreamMetrics:
    name: str
    length: int
    entries_added: int | None  # None: the server (< 7.0) does not track it
    oldest_entry_age_ms: int | None  # None: the stream is empty
    newest_entry_age_ms: int | None
    groups: tuple[GroupMetrics, ...] = ()


@dataclass(frozen=True)
class MetricsSnapshot:
    """One scrape. `up` False: the server did not answer, and nothing else is known (`error`
    says why)."""

    up: bool
    streams: tuple[StreamMetrics, ...] = ()
    truncated: bool = False
    duration_s: float = 0.0
    error: str | None = None


# ---- doctor ----

ERROR = "error"
WARNING = "warning"
OK = "ok"
UNKNOWN = "unknown"
LEVELS = (ERROR, WARNING, UNKNOWN, OK)  # the order findings are listed in


@dataclass(frozen=True)
class Finding:
    check: str  # what was looked at: maxmemory-policy, persistence, replication, acl, ...
    level: str  # error | warning | ok | unknown
    message: str  # what was found
    action: str = ""  # what to do about it (empty when nothing is to be done)


@dataclass(frozen=True)
class Capability:
    name: str
    available: bool | None  # None: the server would not say (COMMAND refused)
    detail: str  # the commands or arguments it was detected by


@dataclass(frozen=True)
class Topology:
    mode: str  # standalone | sentinel (a Sentinel-managed primary) | replica | cluster | unknown
    primaries: tuple[str, ...] = ()  # host:port (cluster)
    replicas: tuple[str, ...] = ()  # host:port of the replicas (of every primary)
    slots_served: bool | None = None  # cluster: every one of the 16384 slots is served
    detail: str = ""


@dataclass(frozen=True)
class DoctorReport:
    url: str
    server: str  # redis | valkey | unknown
    version: str  # e.g. 8.2.3, or unknown
    topology: Topology
    capabilities: tuple[Capability, ...]
    findings: tuple[Finding, ...]
    endpoint: Endpoint | None = None  # where doctor is connected (a cluster: the first node)

    @property
    def failed(self) -> bool:
        """Something is at error level (the command exits 5)."""
        return any(f.level == ERROR for f in self.findings)
