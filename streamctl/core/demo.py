"""The broker story of `streamctl demo`, step by step; each step returns what it did.

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

from streamctl.config import Settings
from streamctl.core.connection import Client, connect, node_client, translate_error
from streamctl.core.groups import list_groups
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
from streamctl.core.wire import raw_command, text
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


def probe(settings: Settings, timeout: float = PROBE_TIMEOUT) -> Client | None:
    """A client for the server at `settings` if it answers PING within `timeout`; None when
    nothing answers there. A server that answers but refuses us (auth) is an error."""
    quick = dataclasses.replace(settings, timeout=min(settings.timeout, timeout))
    try:
        client = connect(quick)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - mapped below; anything else is re-raised
        mapped = translate_error(exc, settings)
        if isinstance(mapped, ConnectionFailed) and "authentication" not in mapped.message:
            return None
        if mapped is not None:
            raise mapped from None
        raise
    client.close()
    return connect(settings)


def reset(client: Client) -> bool:
    """Remove what an interrupted earlier run left behind; True when there was something."""
    return bool(node_client(client, DEMO_STREAM).delete(DEMO_STREAM))


def create_group(client: Client) -> GroupsStep:
    """The billing service's group, reading only new events ($); MKSTREAM creates the stream."""
    raw_command(client, "XGROUP", "CREATE", DEMO_STREAM, DEMO_GROUP, "$", "MKSTREAM")
    return GroupsStep(DEMO_STREAM, tuple(list_groups(client, DEMO_STREAM)))


def publish_orders(client: Client) -> PublishStep:
    """The orders service publishes one `created` event per order."""
    entries = []
    for order_id, customer, amount in ORDERS:
        fields = (
            (b"order_id", order_id.encode()),
            (b"customer", customer.encode()),
            (b"amount", amount.encode()),
            (b"status", b"created"),
        )
        args: list[object] = ["XADD", DEMO_STREAM, "*"]
        for name, value in fields:
            args += [name, value]
        entry_id = text(raw_command(client, *args))
        entries.append(Entry(DEMO_STREAM, entry_id, fields))
    return PublishStep(DEMO_STREAM, tuple(entries))


def _summary(flat: list[bytes]) -> str:
    fields = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}
    return (
        f"#{fields.get('order_id', '?')} {fields.get('customer', '?')} {fields.get('amount', '?')}"
    )


def _read(client: Client, consumer: str, count: int) -> list[tuple[str, str]]:
    reply = raw_command(
        client,
        "XREADGROUP", "GROUP", DEMO_GROUP, consumer, "COUNT", count, "STREAMS", DEMO_STREAM, ">",
    )  # fmt: skip
    if not reply:
        return []
    return [(text(eid), _summary(flat)) for eid, flat in reply[0][1]]


def share_work(client: Client) -> ConsumeStep:
    """Two consumers take turns reading; billing-1 acknowledges what it processed, billing-2
    crashes before acknowledging anything."""
    deliveries: list[Delivery] = []
    turn = 0
    while True:
        consumer = (WORKER, CRASHER)[turn % 2]
        got = _read(client, consumer, 1)
        if not got:
            break
        for entry_id, summary in got:
            acked = consumer == WORKER
            if acked:
                raw_command(client, "XACK", DEMO_STREAM, DEMO_GROUP, entry_id)
            deliveries.append(Delivery(consumer, entry_id, summary, acked))
        turn += 1
    return ConsumeStep(DEMO_GROUP, tuple(deliveries))


def pending(client: Client) -> PendingStep:
    """The group's pending entries: delivered, never acknowledged."""
    reply = raw_command(client, "XPENDING", DEMO_STREAM, DEMO_GROUP, "-", "+", 100)
    items = tuple(
        PendingItem(text(eid), text(consumer), int(idle), int(count))
        for eid, consumer, idle, count in reply
    )
    return PendingStep(DEMO_GROUP, items)


def claim_and_ack(
    client: Client,
    *,
    consumer: str = WORKER,
    min_idle_ms: int = CLAIM_MIN_IDLE_MS,
    sleep: Callable[[float], None] = time.sleep,
) -> ClaimStep:
    """Wait until the stuck entries have been idle `min_idle_ms`, then claim them all
    (XAUTOCLAIM, following its cursor) for `consumer` and acknowledge them."""
    owners = {p.id: p.consumer for p in pending(client).entries}
    if owners:
        oldest_idle = min(p.idle_ms for p in pending(client).entries)
        if oldest_idle < min_idle_ms:
            sleep((min_idle_ms - oldest_idle) / 1000 + 0.01)
    claimed: list[Claimed] = []
    cursor = "0-0"
    for _ in range(1000):  # each call scans at most 10 x COUNT entries of the PEL
        reply = raw_command(
            client,
            "XAUTOCLAIM", DEMO_STREAM, DEMO_GROUP, consumer, min_idle_ms, cursor, "COUNT", 100,
        )  # fmt: skip
        cursor = text(reply[0])
        for eid, _flat in reply[1]:
            entry_id = text(eid)
            claimed.append(Claimed(entry_id, owners.get(entry_id, "?")))
        if cursor == "0-0":
            break
    acked = 0
    if claimed:
        acked = int(raw_command(client, "XACK", DEMO_STREAM, DEMO_GROUP, *[c.id for c in claimed]))
    return ClaimStep(consumer, min_idle_ms, tuple(claimed), acked)


def groups(client: Client) -> GroupsStep:
    return GroupsStep(DEMO_STREAM, tuple(list_groups(client, DEMO_STREAM)))


def cleanup(client: Client) -> CleanupStep:
    return CleanupStep(DEMO_STREAM, bool(node_client(client, DEMO_STREAM).delete(DEMO_STREAM)))


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
