"""The domain's values: frozen dataclasses handed from core to render.

Field names and values stay bytes (streams are binary-safe); render decides how to show them.
This module holds entries and streams; the other commands' models are in core.models_groups,
core.models_pending, core.models_transfer, core.models_health and core.models_demo (apart for
start-up time: see there). All of them are redis-free: render imports models from them and from
no other core module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from streamctl.ids import id_ms

# An entry as the server sends it in RESP2: (id, [field, value, field, value, ...]).
# Bulk paths (range, export, replay) pass these along without building objects per entry.
RawEntry = tuple[bytes, list[bytes]]
FieldPairs = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: `stream`, `id`, `time` (from the id), `fields` (text) and `pairs`.

    `pairs` is the entry exactly as the server holds it: (name, value) bytes in order, repeated
    names kept. `fields` is the convenient view: a dict of text, where a repeated name gives its
    last value and bytes that are not UTF-8 read as U+FFFD (the rule `--where` uses too).
    """

    stream: str
    id: str
    pairs: FieldPairs

    @property
    def time_ms(self) -> int:
        """Milliseconds since the epoch, from the id."""
        return id_ms(self.id)

    @property
    def time(self) -> datetime:
        """The entry's time (from its id), in UTC."""
        return datetime.fromtimestamp(self.time_ms / 1000, tz=timezone.utc)

    @property
    def fields(self) -> dict[str, str]:
        """The fields as text: a repeated name gives its last value."""
        return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in self.pairs}

    @classmethod
    def from_raw(cls, stream: str, raw: RawEntry | list[object]) -> Entry:
        """An entry from the server's reply shape (id, [name, value, ...])."""
        eid, flat = raw[0], raw[1]
        assert isinstance(eid, bytes)
        items = list(flat) if isinstance(flat, list) else []
        pairs = tuple(zip(items[0::2], items[1::2], strict=True))
        return cls(stream, eid.decode(), pairs)

    def field(self, name: str | bytes) -> bytes | None:
        """The value of field `name` as bytes (its last value when repeated), or None."""
        key = name.encode() if isinstance(name, str) else name
        found = None
        for k, v in self.pairs:
            if k == key:
                found = v
        return found


@dataclass(frozen=True, slots=True)
class EntryBatch:
    """Consecutive entries of one stream, as read in one round trip."""

    stream: str
    entries: list[RawEntry]


@dataclass(frozen=True)
class Endpoint:
    """Where a command ran: the server's address (host:port, or a socket path), its role
    (primary, replica, unknown when ROLE is refused) and, through Sentinel, the master name."""

    address: str
    role: str
    master_name: str | None = None


@dataclass(frozen=True)
class StreamSummary:
    """One row of `ls`."""

    name: str
    length: int
    groups: int
    first_id: str | None
    last_id: str | None
    last_generated_id: str
    now_ms: int  # the server's clock when read, for ages
    memory: int | None = None
    endpoint: Endpoint | None = None  # the server (a cluster: the node) the stream is on


@dataclass(frozen=True)
class GroupInfo:
    """A consumer group of a stream (XINFO GROUPS), with lag filled in when the server has none."""

    stream: str
    name: str
    consumers: int
    pending: int
    last_delivered_id: str
    entries_read: int | None
    lag: int | None
    lag_computed: bool = False  # the server reported nil; streamctl counted the entries
    behind_ms: int | None = None  # newest entry's time minus the last delivered entry's time


@dataclass(frozen=True)
class StreamInfo:
    """XINFO STREAM in full."""

    name: str
    length: int
    first_entry: Entry | None
    last_entry: Entry | None
    last_generated_id: str
    entries_added: int | None
    max_deleted_id: str | None
    recorded_first_id: str | None
    radix_tree_keys: int | None
    radix_tree_nodes: int | None
    now_ms: int
    groups: list[GroupInfo] = field(default_factory=list)
    endpoint: Endpoint | None = None  # the server (a cluster: the node) the stream is on
