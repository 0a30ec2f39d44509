"""Where a command runs: the address and role of the server (`ls`, `info`, `doctor` show it),
and the master name when the server was found through Sentinel."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from streamctl.core.connection import Client, default_node, primary_address, sentinel_of
from streamctl.core.models import Endpoint
from streamctl.core.wire import raw_command, text

_ROLES = {"master": "primary", "slave": "replica", "sentinel": "sentinel"}


def endpoint_of(client: Client, node: Client | None = None) -> Endpoint:
    """The Endpoint of `node` (a cluster node's client, e.g. node_client(client, key)), or of
    the client's own server (a cluster: its default node). One ROLE; through Sentinel, the
    Sentinels are asked for the primary's address. A refused ROLE leaves the role unknown."""
    target = node if node is not None else default_node(client)
    found = sentinel_of(client)
    address = None
    if found is not None:
        primary = primary_address(client)
        address = f"{primary[0]}:{primary[1]}" if primary is not None else None
    return Endpoint(
        address=address or _address(target),
        role=_role(target),
        master_name=found[1].master if found is not None else None,
    )


def _address(node: Client) -> str:
    kwargs: dict[str, Any] = node.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def _role(node: Client) -> str:
    try:
        reply = raw_command(node, "ROLE")
    except ResponseError:  # ROLE refused (ACL)
        return "unknown"
    word = text(reply[0]) if isinstance(reply, list) and reply else ""
    return _ROLES.get(word, "unknown")
