"""The steps of `streamctl demo`: frozen dataclasses from streamctl.demo, shown by render.health.

Redis-free, like every core.models* module: render imports models from these and from no other
core module. The models are spread over a few modules for start-up time: defining a frozen
dataclass costs about half a millisecond on import, so a command loads only the models of the
core and render modules it uses (core.models: entries and streams).
"""

from __future__ import annotations

from dataclasses import dataclass

from streamctl.core.models import Entry, GroupInfo


@dataclass(frozen=True)
class PublishStep:
    stream: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class GroupsStep:
    stream: str
    groups: tuple[GroupInfo, ...]


@dataclass(frozen=True)
class Delivery:
    consumer: str
    id: str
    summary: str
    acked: bool


@dataclass(frozen=True)
class ConsumeStep:
    group: str
    deliveries: tuple[Delivery, ...]


@dataclass(frozen=True)
class PendingItem:
    id: str
    consumer: str
    idle_ms: int
    deliveries: int


@dataclass(frozen=True)
class PendingStep:
    group: str
    entries: tuple[PendingItem, ...]


@dataclass(frozen=True)
class Claimed:
    id: str
    previous_consumer: str


@dataclass(frozen=True)
class ClaimStep:
    consumer: str
    min_idle_ms: int
    claimed: tuple[Claimed, ...]
    acked: int
