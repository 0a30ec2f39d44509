"""streamctl: operate and inspect Redis Streams, from the command line or from Python.

    import streamctl

    with streamctl.connect("redis://localhost:6379/0") as sc:
        entry_id = sc.publish("orders", {"order_id": "42", "status": "created"})
        for entry in sc.range("orders"):
            print(entry.id, entry.fields)

Importing this package loads neither redis, typer nor rich (redis loads at the first call),
and the CLI, which imports it too, does not pay for the library: `connect`, `Client` and
`Entry` load when first used.
"""

from typing import TYPE_CHECKING, Any

from streamctl.errors import (
    BadInput,
    CheckFailed,
    ConnectionFailed,
    ExitCode,
    Interrupted,
    NotFound,
    PartialFailure,
    Refused,
    ServerRefused,
    StreamctlError,
)

if TYPE_CHECKING:
    from streamctl.client import Client, connect
    from streamctl.core.models import Entry

__version__ = "0.1.0"

_LAZY = {
    "Client": "streamctl.client",
    "connect": "streamctl.client",
    "Entry": "streamctl.core.models",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'streamctl' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BadInput",
    "CheckFailed",
    "Client",
    "ConnectionFailed",
    "Entry",
    "ExitCode",
    "Interrupted",
    "NotFound",
    "PartialFailure",
    "Refused",
    "ServerRefused",
    "StreamctlError",
    "__version__",
    "connect",
]
