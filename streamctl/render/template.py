"""`tail --format TEMPLATE` and tail's line-per-entry view on a terminal.

A template names `{stream}`, `{id}`, `{time}`, `{fields}` (every field as NAME=VALUE) and
`{fields[NAME]}` (one field's value; empty when the entry has no such field), with the usual
`{{`/`}}` escapes, format specs (`{id:>20}`) and `!r`/`!s`/`!a` conversions. It is compiled before
anything is read, so a bad template is a usage error (exit 2) and not a failure half-way through.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamctl.errors import BadInput
from streamctl.ids import format_time, id_ms

if TYPE_CHECKING:
    from rich.text import Text

    from streamctl.core.models import RawEntry

TEMPLATE_HELP = "{stream} {id} {time} {fields} {fields[NAME]}"
_NAMES = ("stream", "id", "time", "fields")
_FIELD_RE = re.compile(r"^fields\[([^\[\]]+)\]$")
_CONVERSIONS: dict[str | None, Callable[[str], str]] = {None: str, "s": str, "r": repr, "a": ascii}


def show_value(value: bytes) -> str:
    """A field name or value as text: UTF-8, with invalid bytes escaped (\\xff)."""
    return value.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class _Slot:
    name: str  # stream, id, time, fields, or "field" for fields[key]
    key: bytes
    spec: str
    convert: Callable[[str], str]


Part = str | _Slot


class EntryTemplate:
    """A compiled template: `render(stream, raw)` -> one line (with its newline)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[Part] = _compile(text)

    def render(self, stream: str, raw: RawEntry) -> str:
        eid_b, flat = raw
        eid = eid_b.decode()
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if part.name == "stream":
                value = stream
            elif part.name == "id":
                value = eid
            elif part.name == "time":
                value = format_time(id_ms(eid))
            elif part.name == "fields":
                value = " ".join(
                    f"{show_value(flat[i])}={show_value(flat[i + 1])}"
                    for i in range(0, len(flat), 2)
                )
            else:
                value = ""
                for i in range(0, len(flat), 2):
                    if flat[i] == part.key:
                        value = show_value(flat[i + 1])
                        break
            value = part.convert(value)
            out.append(format(value, part.spec) if part.spec else value)
        out.append("\n")
        return "".join(out)


def compile_template(text: str) -> EntryTemplate:
    """Validate and compile a --format template, or raise BadInput (exit 2) saying what is wrong."""
    return EntryTemplate(text)


def _bad(text: str, why: str) -> BadInput:
    return BadInput(f"bad --format {text!r}: {why}; accepted fields: {TEMPLATE_HELP}")


def _compile(text: str) -> list[Part]:
    if not text:
        raise _bad(text, "the template is empty")
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise _bad(text, str(exc)) from None
    parts: list[Part] = []
    for literal, field_name, spec, conversion in parsed:
        if literal:
            parts.append(literal)
        if field_name is None:
            continue
        if field_name == "" or field_name.isdigit():
            raise _bad(text, "positional fields like {} or {0} are not accepted: name the field")
        spec = spec or ""
        if "{" in spec or "}" in spec:
            raise _bad(text, f"nested fields in {{{field_name}:{spec}}} are not accepted")
        if conversion not in _CONVERSIONS:
            raise _bad(text, f"unknown conversion !{conversion} (accepted: !s !r !a)")
        if field_name in _NAMES:
            slot = _Slot(field_name, b"", spec, _CONVERSIONS[conversion])
        else:
            m = _FIELD_RE.match(field_name)
            if m is None:
                raise _bad(text, f"unknown field {{{field_name}}}")
            slot = _Slot(
                "field",
                m.group(1).encode("utf-8", "surrogateescape"),
                spec,
                _CONVERSIONS[conversion],
            )
        if spec:
            try:
                format("x", spec)
            except ValueError as exc:
                raise _bad(text, f"bad format spec {spec!r} in {{{field_name}}}: {exc}") from None
        parts.append(slot)
    return parts


def entry_line(stream: str, raw: RawEntry, *, show_stream: bool) -> Text:
    """One entry as one styled line (tail on a terminal): [stream] id time name=value ..."""
    from rich.text import Text

    eid_b, flat = raw
    eid = eid_b.decode()
    line = Text()
    if show_stream:
        line.append(stream, style="magenta")
        line.append("  ")
    line.append(eid, style="bold")
    line.append("  ")
    line.append(format_time(id_ms(eid)), style="dim")
    for i in range(0, len(flat), 2):
        line.append("  ")
        line.append(show_value(flat[i]), style="cyan")
        line.append("=")
        line.append(show_value(flat[i + 1]))
    return line
