"""--wait-aof across a resharding: the commands of a batch sent again to their slot's new node
(MOVED/ASK) are followed by the batch's WAITAOF there too, so the wait covers every event of the
batch wherever it was written. Seen through a node without an AOF: WAITAOF refuses there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from streamctl.config import Settings
from streamctl.core import connection
from streamctl.core.durability import Durability
from streamctl.core.streams import publish_many
from streamctl.errors import PartialFailure
from tests.cluster.conftest import Migration, numbers


def _set_aof(node: Any, on: bool) -> None:
    import time

    node.config_set("appendfsync", "always" if on else "everysec")
    node.config_set("appendonly", "yes" if on else "no")
    for _ in range(200):  # the AOF is rewritten in the background when switched on
        if node.info("persistence")["aof_rewrite_in_progress"] == 0:
            return
        time.sleep(0.05)


@pytest.fixture
def aof_off_after(cluster: Any) -> Iterator[None]:
    yield
    for node in cluster.nodes:
        _set_aof(node.client(), False)


def _publish_across(m: Migration, key: str, total: int) -> Any:
    client = connection.connect(Settings(url=m.cluster.url))
    steps = {3_000: m.start, 3_500: m.migrate_keys, 6_000: m.finish}

    def events() -> Iterator[dict[str, str]]:
        for n in range(total):
            if n in steps:  # while batches are in flight
                steps[n]()
            yield {"n": str(n)}

    try:
        return publish_many(client, key, events(), batch_size=500, durability=Durability(aof=True))
    finally:
        client.close()


def test_wait_aof_covers_events_sent_again_on_the_new_node(
    cluster,
    rc,
    migration,  # noqa: F811 - the fixture
    aof_off_after,
) -> None:
    key = "reshard-wait-1"
    m = migration(key)
    for port in (m.source, m.target):
        _set_aof(m.node(port), True)
    assert _publish_across(m, key, 10_000) == 10_000
    assert numbers(m.new_owner(), key) == list(range(10_000))


def test_wait_aof_is_asked_of_the_new_node(
    cluster,
    rc,
    migration,  # noqa: F811 - the fixture
    aof_off_after,
) -> None:
    key = "reshard-wait-2"
    m = migration(key)
    _set_aof(m.node(m.source), True)  # the new owner has no AOF: its WAITAOF refuses
    with pytest.raises(PartialFailure, match=r"no AOF \(appendonly no\)") as refused:
        _publish_across(m, key, 10_000)
    assert 3_000 <= refused.value.done < 10_000  # it stopped at the first batch sent again
    m.migrate_keys()  # the run stopped half-way through the migration: it is completed
    m.finish()
