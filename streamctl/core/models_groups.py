"""The models of consumer groups and consumers: frozen dataclasses from core.groups, shown by
render.groups.

Redis-free, like every core.models* module: render imports models from these and from no other
core module. The models are spread over a few modules for start-up time: defining a frozen
dataclass costs about half a millisecond on import, so a command loads only the models of the
core and render modules it uses (core.models: entries and streams).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Consumer:
    """One consumer of a group (XINFO CONSUMERS). `inactive_ms` is None where the server does
    not report it (Redis < 7.2)."""

    stream: str
    group: str
    name: str
    pending: int
    idle_ms: int
    inactive_ms: int | None


@dataclass(frozen=True)
class GroupCreateResult:
    stream: str
    group: str
    created: bool  # False: it existed and --exist-ok made that a success
    stream_created: bool
    last_delivered_id: str
    entries_read: int | None


@dataclass(frozen=True)
class GroupDestroyResult:
    stream: str
    group: str
    pending_dropped: int  # pending entries that were discarded with the group (--force)


@dataclass(frozen=True)
class SetIdPlan:
    """Where a group is and where `setid` puts it, like kafka-consumer-groups' plan.

    `redeliver`: entries the group will be delivered again (moving back); `skip`: entries it
    will never be delivered (moving forward). `next_id` is the first entry delivered next.
    `entries_read` is the ENTRIESREAD sent with the new id, None when it cannot be known
    (`entries_read_note` says why): the server then reports lag as nil until the group reads
    to the end, and streamctl computes it.
    """

    stream: str
    group: str
    current_id: str
    current_entries_read: int | None
    current_lag: int | None
    new_id: str
    entries_read: int | None
    entries_read_note: str | None
    new_lag: int
    next_id: str | None
    redeliver: int
    skip: int
    pending: int
    executed: bool


@dataclass(frozen=True)
class DelConsumerResult:
    stream: str
    group: str
    consumer: str
    reassigned_to: str | None
    reassigned: list[str]
    deleted_while_pending: list[str]
    pending_dropped: int  # entries still pending when it was deleted (--force): now unowned
