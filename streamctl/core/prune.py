"""group prune: remove the consumers of a group idle for a while that own nothing.

Idleness is the server's `inactive` (time since the consumer's last successful read or claim,
XINFO CONSUMERS on 7.2+) where it reports it, else `idle` (time since its last attempt, which
an empty poll resets). A consumer owning pending entries stays, unless `reassign_to` names the
consumer that claims them first. Each deletion is the checked one of `delete_consumer` (a
script that refuses while the consumer owns entries), so a consumer that got entries after the
plan is kept, never dropped with them.
"""

from __future__ import annotations

from streamctl.core.connection import Client, server_version
from streamctl.core.groups import delete_consumer, list_consumers
from streamctl.core.models_groups import Consumer
from streamctl.core.models_repairs import PruneDecision, PrunePlan
from streamctl.errors import BadInput, NotFound, Refused, ServerRefused
from streamctl.ids import format_duration
from streamctl.wording import count_noun


def _measure(client: Client, consumers: list[Consumer]) -> str:
    if consumers:
        return "inactive" if any(c.inactive_ms is not None for c in consumers) else "idle"
    _, version = server_version(client)  # nothing to look at: the server says what it has
    return "inactive" if version >= (7, 2) else "idle"


def _decide(c: Consumer, idle_ms: int, measure: str, reassign_to: str | None) -> PruneDecision:
    measured = c.idle_ms
    if measure == "inactive" and c.inactive_ms is not None and c.inactive_ms >= 0:
        measured = c.inactive_ms  # -1: it never read anything: its idle time is all there is

    def decision(prune: bool, reason: str) -> PruneDecision:
        return PruneDecision(
            c.name, c.pending, c.idle_ms, c.inactive_ms, measured, prune=prune, reason=reason
        )

    if c.name == reassign_to:
        return decision(False, "gets the entries")
    if measured < idle_ms:
        return decision(
            False, f"{measure} {format_duration(measured)} (under {format_duration(idle_ms)})"
        )
    if c.pending and reassign_to is None:
        return decision(
            False,
            f"owns {count_noun(c.pending, 'pending entry', 'pending entries', grouped=False)}",
        )
    reason = f"{measure} {format_duration(measured)}"
    if c.pending:
        going = count_noun(c.pending, "pending entry goes", "pending entries go", grouped=False)
        reason += f"; its {going} to {reassign_to!r}"
    return decision(True, reason)


def prune_consumers(
    client: Client,
    stream: str,
    group: str,
    idle_ms: int,
    *,
    reassign_to: str | None = None,
    execute: bool = False,
) -> PrunePlan:
    """The plan (who goes, who stays and why); with `execute`, carried out."""
    if idle_ms < 0:
        raise BadInput(f"bad idle {idle_ms}: give a duration of 0 or more")
    if reassign_to is not None and not reassign_to:
        raise BadInput("bad reassign_to '': give a consumer name")
    consumers = list_consumers(client, stream, group)
    measure = _measure(client, consumers)
    plan = [_decide(c, idle_ms, measure, reassign_to) for c in consumers]
    if execute:
        plan = [_carry_out(client, stream, group, d, reassign_to) if d.prune else d for d in plan]
    return PrunePlan(stream, group, idle_ms, measure, reassign_to, execute, tuple(plan))


def _carry_out(
    client: Client, stream: str, group: str, d: PruneDecision, reassign_to: str | None
) -> PruneDecision:
    from dataclasses import replace

    try:
        done = delete_consumer(client, stream, group, d.consumer, reassign_to=reassign_to)
    except NotFound:
        return replace(d, prune=False, reason="already gone")
    except (Refused, ServerRefused):
        # it received entries after the plan (no reassign_to): it stays, with its entries
        return replace(d, prune=False, reason="received entries since the plan")
    return replace(
        d,
        deleted=True,
        reassigned=tuple(done.reassigned),
        deleted_while_pending=tuple(done.deleted_while_pending),
    )
