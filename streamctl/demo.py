"""The broker story of `streamctl demo`, step by step, told with the library's Client (each
step is the command it narrates); each step returns what it did.

An `orders` service publishes events; two consumers of the group `billing` share them; one dies
holding messages; they show up as pending; a survivor claims (XAUTOCLAIM) and acknowledges them;
the group's lag and pending are back to zero. The demo works in its own stream (DEMO_STREAM),
which `cleanup` removes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from streamctl.client import Client
from streamctl.config import Settings
from streamctl.core.models import Entry
from streamctl.core.models_demo import (
    Claimed,
    ClaimStep,
    ConsumeStep,
    Delivery,
    GroupsStep,
    PendingItem,
    PendingStep,
    PublishStep,
)
from streamctl.errors import ConnectionFailed

DEMO_STREAM = "streamctl-demo:orders"
DEMO_GROUP = "billing"
WORKER = "billing-1"  # survives
CRASHER = "billing-2"  # dies holding messages
PROBE_TIMEOUT = 0.5  # seconds to wait for PING before falling back to an embedded server
CLAIM_MIN_IDLE_MS = 100  # in production: minutes; here long enough to be "stuck"

ORDERS = (
    ("1001", "alice", "19.90"),
    ("1002", "bob", "5.00"),
    ("1003", "carol", "42.50"),
    ("1004", "dave", "12.00"),
    ("1005", "erin", "7.25"),
    ("1006", "frank", "99.99"),
)


@dataclass(frozen=True)
class CleanupStep:
    stream: str
    deleted: bool


def probe(
    settings: Settings, timeout: float = PROBE_TIMEOUT, *, wording: str = "arguments"
) -> Client | None:
    """A Client for the server at `settings` if it answers PING within `timeout`; None when
    nothing answers there. A server that answers but refuses us (auth) is an error."""
    quick = Client(dataclasses.replace(settings, timeout=min(settings.timeout, timeout)))
    try:
        quick.ping()
    except ConnectionFailed as exc:
        if "authentication" in exc.message:
            raise
        return None
    finally:
        quick.close()
    return Client(settings, wording=wording)


def reset(sc: Client) -> bool:
    """Remove what an interrupted earlier run left behind; True when there was something."""
    return sc.delete_stream(DEMO_STREAM)


def create_group(sc: Client) -> GroupsStep:
    """The billing service's group, reading only new events ($); it creates the stream."""
    sc.create_group(DEMO_STREAM, DEMO_GROUP, start="$")
    return groups(sc)


def publish_orders(sc: Client) -> PublishStep:
    """The orders service publishes one `created` event per order."""
    entries = []
    for order_id, customer, amount in ORDERS:
        fields = (
            (b"order_id", order_id.encode()),
            (b"customer", customer.encode()),
            (b"amount", amount.encode()),
            (b"status", b"created"),
        )
        entries.append(Entry(DEMO_STREAM, sc.publish(DEMO_STREAM, fields), fields))
    return PublishStep(DEMO_STREAM, tuple(entries))


def _summary(entry: Entry) -> str:
    fields = entry.fields
    return (
        f"#{fields.get('order_id', '?')} {fields.get('customer', '?')} {fields.get('amount', '?')}"
    )


def share_work(sc: Client) -> ConsumeStep:
    """Two consumers take turns reading one entry each (`tail --group --count 1`); billing-1
    acknowledges what it processed, billing-2 crashes before acknowledging anything."""
    deliveries: list[Delivery] = []
    turn = 0
    while True:
        consumer = (WORKER, CRASHER)[turn % 2]
        acks = consumer == WORKER
        got = list(
            sc.tail(
                DEMO_STREAM, group=DEMO_GROUP, consumer=consumer, count=1, follow=False, ack=acks
            )
        )
        if not got:
            break
        deliveries += [Delivery(consumer, e.id, _summary(e), acks) for e in got]
        turn += 1
    return ConsumeStep(DEMO_GROUP, tuple(deliveries))


def pending(sc: Client) -> PendingStep:
    """The group's pending entries: delivered, never acknowledged."""
    items = tuple(
        PendingItem(p.id, p.consumer, p.idle_ms, p.deliveries)
        for p in sc.pending_entries(DEMO_STREAM, DEMO_GROUP, count=100)
    )
    return PendingStep(DEMO_GROUP, items)


def claim_and_ack(
    sc: Client,
    *,
    consumer: str = WORKER,
    min_idle_ms: int = CLAIM_MIN_IDLE_MS,
    sleep: Callable[[float], None] = time.sleep,
) -> ClaimStep:
    """Wait until the stuck entries have been idle `min_idle_ms`, then claim them all for
    `consumer` (`pending --claim`) and acknowledge them (`ack`)."""
    stuck = pending(sc).entries
    owners = {p.id: p.consumer for p in stuck}
    if stuck:
        oldest_idle = min(p.idle_ms for p in stuck)
        if oldest_idle < min_idle_ms:
            sleep((min_idle_ms - oldest_idle) / 1000 + 0.01)
    result = sc.claim(DEMO_STREAM, DEMO_GROUP, to=consumer, min_idle=f"{min_idle_ms}ms")
    claimed = tuple(Claimed(i, owners.get(i, "?")) for i in result.claimed)
    acked = sc.ack(DEMO_STREAM, DEMO_GROUP, list(result.claimed)).acked if claimed else 0
    return ClaimStep(consumer, min_idle_ms, claimed, acked)


def groups(sc: Client) -> GroupsStep:
    return GroupsStep(DEMO_STREAM, tuple(sc.groups(DEMO_STREAM)))


def cleanup(sc: Client) -> CleanupStep:
    return CleanupStep(DEMO_STREAM, sc.delete_stream(DEMO_STREAM))


def next_commands(url: str | None, *, need_server: bool = False) -> list[str]:
    """What to try next: `url` to point at (None: the default), `need_server` when the demo ran
    on an embedded server that is gone now."""
    prefix = f"streamctl -u {url} " if url else "streamctl "
    lines = ["streamctl server    # in another terminal: a local server"] if need_server else []
    lines += [
        f"{prefix}group create orders billing --from 0",
        f"{prefix}publish orders order_id=42 status=created",
        f"{prefix}tail orders --group billing --consumer worker-1 --count 1",
        f"{prefix}group ls orders",
        f"{prefix}pending orders billing",
        f"{prefix}pending orders billing --claim --to worker-2 --min-idle 1m",
        f"{prefix}check orders --group billing --max-lag 100 --max-idle 5m",
        f"{prefix}top",
    ]
    return lines
