"""Which output format a command uses: `auto` follows the terminal (SPEC: global options)."""

from __future__ import annotations

FORMATS = ("auto", "table", "json", "ndjson", "yaml")
FORMAT_HELP = "auto, table, json, ndjson or yaml"


def resolve_output_format(requested: str, *, entries: bool, is_tty: bool) -> str:
    """`auto` is a Rich table on a terminal; on a pipe, ndjson for entry streams (tail, range,
    export) and json for reports. Explicit formats are returned as given."""
    if requested != "auto":
        return requested
    if is_tty:
        return "table"
    return "ndjson" if entries else "json"
