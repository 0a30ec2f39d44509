"""The models of pending entries (summary, claim, dead-letter, ack): frozen dataclasses from
core.pending, shown by render.groups.

Redis-free, like every core.models* module: render imports models from these and from no other
core module. The models are spread over a few modules for start-up time: defining a frozen
dataclass costs about half a millisecond on import, so a command loads only the models of the
core and render modules it uses (core.models: entries and streams).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PendingEntry:
    id: str
    consumer: str
    idle_ms: int
    deliveries: int


@dataclass(frozen=True)
class PendingSummary:
    """XPENDING's summary form: the whole group, whatever filters the listing uses."""

    stream: str
    group: str
    count: int
    oldest_id: str | None
    newest_id: str | None
    consumers: tuple[tuple[str, int], ...]
    now_ms: int  # the server's clock, for ages


@dataclass(frozen=True)
class ClaimResult:
    """What a claim did (or, with dry_run, would do).

    `deleted`: ids that were pending but whose entry was deleted (XDEL/trim) meanwhile; the
    server drops them from the PEL when they are claimed. `skipped`: pending when selected but
    not claimed (no longer idle enough, or acknowledged/claimed by someone else meanwhile).
    `not_pending`: explicit ids (--id) that were not pending in the group at all."""

    stream: str
    group: str
    consumer: str
    method: str  # "xautoclaim" | "xclaim"
    dry_run: bool
    claimed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_pending: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    consumer: str
    deliveries: int
    dlq_id: str | None = None  # the copy's id in the DLQ (None in a dry run or when deleted)


@dataclass(frozen=True)
class DeadLetterResult:
    stream: str
    group: str
    dlq: str
    max_deliveries: int
    dry_run: bool
    moved: list[DeadLetter] = field(default_factory=list)
    deleted: list[DeadLetter] = field(default_factory=list)  # acked, nothing to copy
    skipped: list[str] = field(default_factory=list)  # no longer eligible when moved


@dataclass(frozen=True)
class AckResult:
    stream: str
    group: str
    requested: int
    acked: int

    @property
    def not_pending(self) -> int:
        return self.requested - self.acked
