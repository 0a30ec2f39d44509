"""The models of trim, replay, export and import: frozen dataclasses from core.trim, core.replay,
core.export and core.import_, shown by render.transfer.

Redis-free, like every core.models* module: render imports models from these and from no other
core module. The models are spread over a few modules for start-up time: defining a frozen
dataclass costs about half a millisecond on import, so a command loads only the models of the
core and render modules it uses (core.models: entries and streams).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streamctl.ids import StreamId

# ---- trim ----

Strategy = Literal["maxlen", "minid"]


@dataclass(frozen=True)
class GroupHold:
    """What a group still needs of the entries a trim would remove."""

    group: str
    last_delivered_id: str
    undelivered: int  # removed entries after the group's last-delivered id
    pending: int  # removed entries still in the group's PEL (delivered, not acknowledged)

    @property
    def blocks(self) -> bool:
        return self.undelivered > 0 or self.pending > 0


@dataclass(frozen=True)
class TrimPlan:
    stream: str
    strategy: Strategy
    threshold: str  # N for --maxlen; the MINID for --minid / --older-than
    approx: bool
    acked_only: bool
    length: int  # entries before the trim
    count: int  # entries in the range the trim removes (with --approx: at most this many)
    first_id: str | None  # the range removed, inclusive
    last_id: str | None
    holds: tuple[GroupHold, ...]
    acked_count: int | None  # with --acked-only: entries of the range every group has acked
    now_ms: int  # the server's clock when planned
    older_than_ms: int | None = None

    @property
    def blocking(self) -> tuple[GroupHold, ...]:
        return tuple(h for h in self.holds if h.blocks)

    @property
    def trim_minid(self) -> str | None:
        """The MINID that removes exactly the planned range (None: nothing to remove)."""
        if self.last_id is None or self.count == 0:
            return None
        return str(StreamId.parse(self.last_id).next())


@dataclass(frozen=True)
class TrimResult:
    plan: TrimPlan
    dry_run: bool
    forced: bool = False
    removed: int | None = None  # None on a dry run
    length_after: int | None = None


# ---- replay, export, import ----


@dataclass(frozen=True)
class ReplayResult:
    stream: str
    target: str
    target_server: str | None  # the other server (masked URL), None for this one
    start: str  # the range replayed, inclusive ids
    end: str
    dry_run: bool
    scanned: int  # entries read from the range
    copied: int  # entries published into the target (matching, within --count)
    first_id: str | None  # first and last source id copied
    last_id: str | None
    resume_after: str | None  # last source id processed: continue with --from "(ID"
    first_new_id: str | None
    last_new_id: str | None
    seconds: float
    stopped: bool = False  # interrupted by a signal after the batch in flight


@dataclass(frozen=True)
class RewindResult:
    stream: str
    group: str
    previous_id: str  # last-delivered id before
    new_id: str  # last-delivered id after: just before --from
    entries_read: int | None  # ENTRIESREAD set with it (lag stays known)
    redeliver: int  # entries the group will be delivered again
    skip: int  # entries it skips (when --from is after its position)
    dry_run: bool


@dataclass(frozen=True)
class PendingState:
    id: str
    consumer: bytes
    deliveries: int
    idle_ms: int


@dataclass(frozen=True)
class GroupState:
    """A group as export writes it and import recreates it."""

    name: bytes
    last_delivered_id: str
    entries_read: int | None
    consumers: tuple[bytes, ...]
    pending: tuple[PendingState, ...]


@dataclass(frozen=True)
class GroupImport:
    name: bytes
    action: str  # created | exists (left as it was) | would create
    last_delivered_id: str
    entries_read: int | None
    consumers: int
    pending_restored: int
    pending_dropped: int  # pending ids whose entries are not in the stream


@dataclass(frozen=True)
class ImportResult:
    stream: str
    keep_ids: bool
    dry_run: bool
    imported: int
    skipped: int  # --keep-ids: ids at or below the stream's last id (already there)
    first_id: str | None  # ids written (new ids without --keep-ids)
    last_id: str | None
    last_source_id: str | None  # the last envelope id handled (imported or skipped)
    groups: tuple[GroupImport, ...]
    seconds: float
    stopped: bool = False


# ---- export ----


@dataclass(frozen=True)
class ExportResult:
    """What export wrote: how many entries, the first and last id, how many groups."""

    stream: str
    count: int
    first_id: str | None
    last_id: str | None
    groups: int
    seconds: float
    stopped: bool = False
