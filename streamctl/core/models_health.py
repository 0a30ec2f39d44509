"""The models of check, top, bench and profile: frozen dataclasses from core.health, core.bench
and core.profiles, shown by render.health (which registers their plain-data shapes).

Redis-free, like every core.models* module: render imports models from these and from no other
core module. The models are spread over a few modules for start-up time: defining a frozen
dataclass costs about half a millisecond on import, so a command loads only the models of the
core and render modules it uses (core.models: entries and streams).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ---- check and top ----

OK = "ok"
BREACHED = "breached"

# the order results are listed in, per stream then per group
STREAM_CHECKS = ("length",)
GROUP_CHECKS = ("lag", "pending", "idle_ms", "behind_ms")


@dataclass(frozen=True)
class Thresholds:
    """The maximum allowed per metric; None: not checked."""

    max_length: int | None = None
    max_lag: int | None = None
    max_pending: int | None = None
    max_idle_ms: int | None = None
    max_behind_ms: int | None = None

    def limit(self, check: str) -> int | None:
        return {
            "length": self.max_length,
            "lag": self.max_lag,
            "pending": self.max_pending,
            "idle_ms": self.max_idle_ms,
            "behind_ms": self.max_behind_ms,
        }[check]

    @property
    def any(self) -> bool:
        return any(self.limit(c) is not None for c in STREAM_CHECKS + GROUP_CHECKS)

    def wanted(self, check: str) -> bool:
        """Report this metric: it has a threshold, or no threshold was given at all."""
        return not self.any or self.limit(check) is not None


@dataclass(frozen=True)
class CheckResult:
    stream: str
    group: str | None  # None: a check of the stream itself
    check: str  # length | lag | pending | idle_ms | behind_ms
    value: int | None  # None: nothing to measure (no pending entry for idle_ms)
    max: int | None  # the threshold; None: reported only
    status: str  # ok | breached

    @property
    def breached(self) -> bool:
        return self.status == BREACHED


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)
    approximate: tuple[str, ...] = ()  # "stream/group" whose idle_ms is a lower bound

    @property
    def breached(self) -> int:
        return sum(1 for r in self.results if r.breached)

    @property
    def status(self) -> str:
        return BREACHED if self.breached else OK


@dataclass(frozen=True)
class GroupRates:
    name: str
    consumers: int
    pending: int
    lag: int | None
    lag_computed: bool
    entries_read: int | None
    out_rate: float | None  # entries read per second; None on the first sample
    oldest_pending_id: str | None
    oldest_pending_age_ms: int | None  # now minus the oldest pending entry's id time
    oldest_pending_idle_ms: int | None
    history: tuple[float, ...] = ()  # out rates over the last window, oldest first


@dataclass(frozen=True)
class StreamRates:
    name: str
    length: int
    entries_added: int | None
    in_rate: float | None  # entries added per second; None on the first sample
    groups: tuple[GroupRates, ...]
    history: tuple[float, ...] = ()  # in rates over the last window, oldest first


@dataclass(frozen=True)
class TopReport:
    time_ms: int
    interval_ms: int | None  # server time between the two samples; None on the first
    streams: tuple[StreamRates, ...]
    window_ms: int = 60_000


# ---- bench ----


@dataclass(frozen=True)
class BenchResult:
    stream: str
    events: int
    size: int
    producers: int
    consumers: int
    batch: int
    published: int
    publish_seconds: float
    consumed: int
    consume_seconds: float
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50, p90, p99, max

    @property
    def publish_rate(self) -> float:
        return self.published / self.publish_seconds if self.publish_seconds > 0 else 0.0

    @property
    def consume_rate(self) -> float:
        return self.consumed / self.consume_seconds if self.consume_seconds > 0 else 0.0


# ---- profiles ----


@dataclass(frozen=True)
class ProfileView:
    """A profile as shown to a user: the URL's password and a literal password are masked."""

    name: str
    default: bool
    url: str
    username: str | None = None
    password: str | None = None  # MASK when the file holds a literal password
    password_env: str | None = None
    password_env_set: bool = False
    ca_cert: str | None = None
    cluster: bool | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class RemovedProfile:
    name: str
    was_default: bool
