"""Delivery guarantees on demand: after a write, WAIT for replicas or WAITAOF for the AOF on disk.

WAIT and WAITAOF count the writes of the connection they are sent on, so the wait is sent on the
connection that carried the events, right after them (one write: the events, then the wait).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamctl.errors import BadInput, CheckFailed, ServerRefused

DEFAULT_WAIT_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Durability:
    """What a write must reach before it counts: `replicas` replicas (WAIT), and with `aof`
    the primary's AOF on disk too (WAITAOF 1 replicas), within `timeout_ms`."""

    replicas: int = 0
    aof: bool = False
    timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS

    @property
    def wanted(self) -> bool:
        return self.replicas > 0 or self.aof

    def command(self) -> tuple[Any, ...]:
        if self.aof:
            return ("WAITAOF", 1, self.replicas, self.timeout_ms)
        return ("WAIT", self.replicas, self.timeout_ms)

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000


def durability(replicas: int | None, timeout_ms: int | None, aof: bool) -> Durability | None:
    """The guarantee asked for (None: none), its values checked."""
    if replicas is not None and replicas < 0:
        raise BadInput(f"bad wait_replicas {replicas}: give a count of replicas, 0 or more")
    if timeout_ms is not None and timeout_ms <= 0:
        raise BadInput(f"bad wait_timeout {timeout_ms} ms: give a duration above 0")
    if timeout_ms is not None and not replicas and not aof:
        raise BadInput("wait_timeout applies only with wait_replicas or wait_aof")
    found = Durability(replicas or 0, aof, timeout_ms or DEFAULT_WAIT_TIMEOUT_MS)
    return found if found.wanted else None


def require_support(client: Any, wanted: Durability | None) -> None:
    """WAITAOF exists from Redis 7.2 (and in Valkey): asked of the server (COMMAND INFO) before
    anything is written, so a server without it refuses the run, not its first event."""
    if wanted is None or not wanted.aof:
        return
    from streamctl.core.connection import default_node, server_version

    pool = default_node(client).connection_pool
    conn: Any = pool.get_connection()
    try:  # the raw reply: redis-py's COMMAND INFO callback folds a missing command away
        conn.send_command("COMMAND", "INFO", "WAITAOF")
        reply = conn.read_response()
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    if not reply or reply[0] is None:
        name, version = server_version(client)
        shown = ".".join(map(str, version))
        raise ServerRefused(
            f"waiting for the AOF (WAITAOF) needs Redis >= 7.2 or Valkey; the server is "
            f"{name} {shown}, which lacks it: ask for replicas only, or upgrade"
        )


def shortfall(wanted: Durability, reply: Any) -> str | None:
    """What the WAIT/WAITAOF reply did not confirm, in words; None when all of it was."""
    seconds = f"{wanted.timeout_s:g}s"
    if isinstance(reply, BaseException):
        text = str(reply)
        if "appendonly" in text.lower():
            raise ServerRefused(
                f"the server has no AOF (appendonly no), so waiting for the AOF cannot be "
                f"confirmed; the events were written ({text})"
            )
        raise ServerRefused(f"the server refused {wanted.command()[0]}: {text}")
    if wanted.aof:
        local, replicas = (int(x) for x in reply)
        if local < 1:
            return f"the primary's AOF did not confirm the write within {seconds}"
        if replicas < wanted.replicas:
            return (
                f"{replicas} of {wanted.replicas} replicas confirmed the write in their AOF "
                f"within {seconds}"
            )
        return None
    confirmed = int(reply)
    if confirmed < wanted.replicas:
        return f"{confirmed} of {wanted.replicas} replicas confirmed the write within {seconds}"
    return None


def write_then_wait(client: Any, args: list[Any], wanted: Durability) -> tuple[Any, Any]:
    """Send one command and the wait in one write, on one connection; returns both replies (an
    error reply as its exception). A redirect (MOVED, ...) is raised as `raw_command` would."""
    import hiredis
    from redis.exceptions import ResponseError

    from streamctl.core.connection import redirect_error, route

    node = route(client, args)
    pool = node.connection_pool
    conn: Any = pool.get_connection()
    replies: list[Any] = []
    try:
        conn.send_packed_command(
            [hiredis.pack_command(tuple(args)) + hiredis.pack_command(wanted.command())]
        )
        base = conn.socket_timeout
        for timeout in (base, None if base is None else base + wanted.timeout_s):
            try:
                replies.append(conn.read_response(timeout=timeout))
            except ResponseError as exc:
                redirect = redirect_error(exc, client=node)
                if redirect is not None:
                    raise redirect from None
                replies.append(exc)
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    return replies[0], replies[1]


def receive_waited(sender: Any, wanted: Durability, into: list[Any]) -> None:
    """The replies of a PipelinedSender's oldest batch, which ends with its WAIT (WAITAOF) and
    so may block for its timeout: the socket's timeout is lengthened by it while they are read."""
    sender.receive_waiting(into, wanted.timeout_s)


def wait_reply(reply: Any) -> Any:
    """The wait's reply as `shortfall` takes it: an error reply (hiredis) as a ResponseError."""
    if reply.__class__.__name__ == "ReplyError":
        from redis.exceptions import ResponseError

        return ResponseError(str(reply))
    return reply


def exchange_waited(
    sender: Any, packed: list[bytes], wanted: Durability, count: int | None = None
) -> tuple[list[Any], Any]:
    """Send packed commands (one reply each, or `count` in all) and the wait in one write on a
    PipelinedSender (no other batch in flight); returns the commands' replies and the wait's
    (for `require`)."""
    import hiredis

    sender.send(
        [*packed, hiredis.pack_command(wanted.command())],
        None if count is None else count + 1,
    )
    replies: list[Any] = []
    receive_waited(sender, wanted, replies)
    waited = replies.pop()
    return replies, wait_reply(waited)


def require(wanted: Durability, reply: Any, what: str) -> None:
    """CheckFailed (exit 5) when the wait's reply falls short; `what` says what was written."""
    gap = shortfall(wanted, reply)
    if gap is not None:
        raise CheckFailed(f"{what}, but {gap}")
