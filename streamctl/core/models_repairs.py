"""The models of the repair commands (`trace`, `group prune`, `redrive`): frozen dataclasses
made by core.trace, core.prune and core.redrive, shown by render.repairs. Redis-free."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamctl.core.models import Entry

# A group's view of one entry (trace)
NOT_DELIVERED = "not-delivered"  # after the group's last-delivered id
PENDING = "pending"  # delivered, not acknowledged
ACKED = "acked"  # delivered and no longer pending
DELETED_WHILE_PENDING = "deleted-while-pending"  # gone from the stream, still in the PEL
GONE = "gone"  # gone from the stream and from the PEL: the group holds nothing of it


@dataclass(frozen=True)
class GroupTrace:
    group: str
    state: str
    last_delivered_id: str
    consumer: str | None = None
    deliveries: int | None = None
    idle_ms: int | None = None


@dataclass(frozen=True)
class DeadLetterCopy:
    """A copy of the traced entry in a dead-letter stream (found by dlq_stream and dlq_id)."""

    dlq: str
    id: str
    group: str | None
    consumer: str | None
    deliveries: int | None


@dataclass(frozen=True)
class TraceReport:
    stream: str
    id: str
    stream_exists: bool
    entry: Entry | None  # None: the entry is not (or no longer) in the stream
    groups: tuple[GroupTrace, ...]
    dead_letters: tuple[DeadLetterCopy, ...]
    dlqs: tuple[str, ...]  # the dead-letter streams searched

    @property
    def found(self) -> bool:
        """True when the stream, a group's PEL or a dead-letter stream knows the entry."""
        return (
            self.entry is not None
            or bool(self.dead_letters)
            or any(g.state == DELETED_WHILE_PENDING for g in self.groups)
        )


# ---- group prune ----


@dataclass(frozen=True)
class PruneDecision:
    """One consumer of the group: whether it goes (`prune`) and why."""

    consumer: str
    pending: int
    idle_ms: int
    inactive_ms: int | None
    measured_ms: int  # the figure compared with the threshold (inactive or idle)
    prune: bool
    reason: str
    reassigned: tuple[str, ...] = ()  # with reassign_to, executed: ids claimed for it
    deleted_while_pending: tuple[str, ...] = ()
    deleted: bool = False  # executed and gone


@dataclass(frozen=True)
class PrunePlan:
    stream: str
    group: str
    idle_ms: int
    measure: str  # "inactive" (the server reports it, 7.2+) or "idle"
    reassign_to: str | None
    executed: bool
    consumers: tuple[PruneDecision, ...]

    @property
    def pruned(self) -> list[str]:
        return [d.consumer for d in self.consumers if d.prune]


# ---- redrive ----


@dataclass(frozen=True)
class Unusable:
    """A DLQ entry that cannot go back (left in place) and why."""

    id: str
    reason: str


@dataclass
class RedriveResult:
    dlq: str
    into: str | None
    dry_run: bool
    keep: bool
    scanned: int = 0  # DLQ entries read in the range
    redriven: int = 0  # published (or, dry run, would be)
    per_stream: dict[str, int] = field(default_factory=dict)
    unusable: list[Unusable] = field(default_factory=list)  # the first 1000 of them
    unusable_count: int = 0  # left in place: no usable dlq_stream
    gone: int = 0  # listed, then deleted from the DLQ by someone else before its step
    first_id: str | None = None  # first DLQ id handled
    last_id: str | None = None  # last DLQ id handled (a rerun continues after it)
    last_new_id: str | None = None
    seconds: float = 0.0
    stopped: bool = False
