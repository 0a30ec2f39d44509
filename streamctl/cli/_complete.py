"""Completion callbacks for stream and group arguments, for any command to reuse:

    stream: Annotated[str, typer.Argument(autocompletion=complete_stream)]
    group: Annotated[str, typer.Argument(autocompletion=complete_group)]

    consumer: Annotated[str, typer.Argument(autocompletion=complete_consumer)]

They connect with the global options typed so far (-u, -P, --config, ...) or the environment,
with a short timeout, and return nothing when no server answers. `complete_group` lists the
groups of the stream argument already typed (a parameter named `stream`, or the first of
`streams`); `complete_consumer` the consumers of the group typed before (`group`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from streamctl.config import Settings

COMPLETE_VAR = "_STREAMCTL_COMPLETE"


def enable_shell_completion() -> None:
    """Register Typer's bash/zsh/fish completion classes, if a shell is asking for completions.

    The root app is built with add_completion=False (no --install-completion option), so nothing
    else registers them; the entry point must call this before the app runs, or every
    `_STREAMCTL_COMPLETE=complete_bash streamctl` answers "Shell bash not supported."
    """
    import os

    if os.environ.get(COMPLETE_VAR):
        from typer._completion_classes import completion_init

        completion_init()


def completion_settings(ctx: typer.Context) -> Settings | None:
    """Connection settings from the root options parsed so far; None when they are unusable."""
    from streamctl.config import resolve_settings

    params: dict[str, Any] = ctx.find_root().params or {}
    try:
        return resolve_settings(
            url=params.get("url"),
            profile=params.get("profile"),
            config_path=params.get("config"),
            cluster=params.get("cluster"),
            tls_ca=params.get("tls_ca"),
            timeout=params.get("timeout"),
        )
    except Exception:  # noqa: BLE001 - completion must stay silent
        return None


def typed_stream(ctx: typer.Context) -> str | None:
    """The stream already on the command line, if any: a parameter named `stream`, the first of
    `streams`, or (when click left the arguments unparsed, as it does while completing an
    option's value) the first word that is not an option."""
    value = ctx.params.get("stream")
    if isinstance(value, str) and value:
        return value
    many = ctx.params.get("streams")
    if isinstance(many, list | tuple) and many and isinstance(many[0], str):
        return many[0]
    for word in ctx.args:
        if isinstance(word, str) and word and not word.startswith("-"):
            return word
    return None


def complete_stream(ctx: typer.Context, incomplete: str) -> list[str]:
    """Stream names from the server that start with what is typed."""
    settings = completion_settings(ctx)
    if settings is None:
        return []
    from streamctl.core.completion import complete_streams

    return complete_streams(settings, incomplete or "")


def complete_group(ctx: typer.Context, incomplete: str) -> list[str]:
    """Group names of the stream typed before (of the first streams when none is)."""
    settings = completion_settings(ctx)
    if settings is None:
        return []
    from streamctl.core.completion import complete_groups

    return complete_groups(settings, typed_stream(ctx), incomplete or "")


def typed_group(ctx: typer.Context) -> str | None:
    """The group already on the command line: a parameter named `group`, or the second word
    that is not an option when click left the arguments unparsed."""
    value = ctx.params.get("group")
    if isinstance(value, str) and value:
        return value
    words = [w for w in ctx.args if isinstance(w, str) and w and not w.startswith("-")]
    return words[1] if len(words) > 1 else None


def complete_consumer(ctx: typer.Context, incomplete: str) -> list[str]:
    """Consumer names of the group typed before (nothing until the stream and group are)."""
    settings = completion_settings(ctx)
    if settings is None:
        return []
    from streamctl.core.completion import complete_consumers

    return complete_consumers(settings, typed_stream(ctx), typed_group(ctx), incomplete or "")
