"""Readers of what users feed in: FIELD=VALUE pairs, JSON objects, NDJSON and YAML event files,
and entry envelopes. Pure parsing (no server); every malformed input is a BadInput (exit 2) that
names the line and says what is accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from collections.abc import Iterable, Iterator
from itertools import chain
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from streamctl.errors import BadInput

if TYPE_CHECKING:
    from streamctl.core.models_transfer import GroupState

FieldPairs = tuple[tuple[bytes, bytes], ...]

PAIR_FORMS = "accepted: FIELD=VALUE (split at the first '=')"
EVENT_FORMS = 'accepted: one JSON object per line, e.g. {"order_id": "42", "status": "created"}'
ENVELOPE_FORMS = (
    'accepted: {"id": "1795773600000-0", "fields": {"name": "value", ...}} one per line '
    "(as written by export/range -o ndjson)"
)


def parse_pairs(pairs: Iterable[str]) -> FieldPairs:
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise BadInput(f"bad field {pair!r}: {PAIR_FORMS}")
        if not name:
            raise BadInput(f"bad field {pair!r}: the field name before '=' is empty")
        # command-line bytes that are not UTF-8 arrive surrogate-escaped: keep them as they were
        out.append(
            (name.encode("utf-8", "surrogateescape"), value.encode("utf-8", "surrogateescape"))
        )
    return tuple(out)


def _json_text(value: Any) -> bytes:
    """A value as stored: a string as it is, raw bytes (YAML !!binary) as they are, anything
    else as its JSON text (YAML dates as ISO text, sets as lists)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    if not isinstance(value, int | float | bool | list | dict | type(None)):
        text = _yaml_value_json(value)  # a YAML date or set
        if isinstance(text, str):
            return text.encode()
        value = text
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), default=_yaml_value_json
    ).encode()


def _yaml_value_json(value: Any) -> Any:
    import datetime

    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"a {type(value).__name__} value has no JSON text")


def fields_from_object(obj: Any, where: str) -> FieldPairs:
    """An event's fields from a JSON/YAML mapping; values that are not strings become JSON text."""
    if not isinstance(obj, dict):
        kind = type(obj).__name__ if obj is not None else "null"
        raise BadInput(f"{where}: expected a JSON object, got {kind}; {EVENT_FORMS}")
    if not obj:
        raise BadInput(f"{where}: an event needs at least one field; {EVENT_FORMS}")
    try:
        return tuple((str(k).encode(), _json_text(v)) for k, v in obj.items())
    except (TypeError, ValueError, RecursionError, UnicodeEncodeError) as exc:
        # a recursive YAML anchor, a lone surrogate, a value with no JSON text
        raise BadInput(f"{where}: a value cannot be stored ({exc}); {EVENT_FORMS}") from None


def parse_json_event(text: str, where: str = "--json") -> FieldPairs:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{where}: invalid JSON ({exc}); {EVENT_FORMS}") from None
    return fields_from_object(obj, where)


def open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None


def is_yaml_path(path: str) -> bool:
    return path.lower().endswith((".yaml", ".yml"))


def read_events(path: str, *, skip: int = 0) -> Iterable[FieldPairs | dict[str, Any]]:
    """Events from an NDJSON file (or a YAML list of mappings for .yaml/.yml), in order.

    The first `skip` events are read and validated but not yielded (resume after an interruption).
    Blank lines are ignored. A malformed line raises BadInput naming it, after every event before
    it was yielded. NDJSON events come as the decoded objects (non-empty dicts), YAML events as
    FieldPairs.
    """
    if is_yaml_path(path):
        return _read_yaml_events(path, skip)
    return EventBlocks(_ndjson_event_blocks(path, skip))


class EventBlocks:
    """Events read a block at a time (lists of dicts). Iterating gives the events one by one,
    chained in C; a bulk writer may take whole blocks instead (`blocks()`)."""

    def __init__(self, blocks: Iterator[list[dict[str, Any]]]) -> None:
        self._blocks = blocks
        self._events = chain.from_iterable(blocks)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._events)

    def blocks(self) -> Iterator[list[dict[str, Any]]]:
        """The rest of the events a block at a time (do not mix with iterating events)."""
        return self._blocks


def _ndjson_event_blocks(path: str, skip: int) -> Iterator[list[dict[str, Any]]]:
    fh = open_input(path)
    try:
        seen = 0
        for _lineno, objs in _ndjson_chunks(fh):
            if seen + len(objs) <= skip:
                seen += len(objs)
                continue
            if seen < skip:
                objs = objs[skip - seen :]
                seen = skip
            seen += len(objs)
            # the objects as JSON decoded them: publish_many writes str/int/float values as
            # their JSON text directly and converts the rest (bool, null, nesting)
            yield objs
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


FlatFields = list[Any]  # [name, value, name, value, ...] as XADD takes them


def json_text_values(flat: FlatFields) -> FlatFields:
    """The values of a flat event that are not str or bytes, as their JSON text."""
    return [
        v if i % 2 == 0 or type(v) in (str, bytes) else _json_text(v) for i, v in enumerate(flat)
    ]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


NDJSON_BLOCK = 1 << 20
# a block whose every line is one {...}: parsed as one JSON array (see _ndjson_chunks)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_OBJECT_LINES = re.compile(r"(?:\{[^\n]*\}\n)*")


def _ndjson_chunks(fh: IO[bytes]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(first line number, objects) for blocks of lines, every object checked.

    Fast path: a block of complete lines in which every line is `{...}` is parsed with ONE
    json.loads of the lines joined into an array; it must hold one non-empty object per line.
    As JSON strings cannot span lines, such a block parses exactly as its lines would one by
    one. Any other block (blank lines, CRLF, spaces, a bad line) is parsed line by line, to name
    the bad line after yielding the events before it.
    """

    def loads(text: str) -> Any:
        return json.loads(text, parse_constant=_reject_constant)

    for lineno, head, count in _line_blocks(fh):
        objs = _parse_block(head, count, loads)
        if objs is not None:
            yield lineno + 1, objs
        else:
            yield from _parse_lines(head.split(b"\n")[:count], lineno, loads)


def _line_blocks(fh: IO[bytes]) -> Iterator[tuple[int, bytes, int]]:
    """(lines before it, a block of complete lines ending in a line break, how many lines) for
    the input, about NDJSON_BLOCK bytes at a time (a last line without its break gets one)."""
    read = getattr(fh, "read1", fh.read)
    lineno = 0  # lines consumed before the current block
    rest = b""
    while True:
        data = read(NDJSON_BLOCK)
        if data:
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            head, rest = data[:cut], data[cut:]
        elif rest:
            head, rest = rest + b"\n", b""
        else:
            return
        count = head.count(b"\n")
        yield lineno, head, count
        lineno += count


_DECODER: Any = None  # a JSONDecoder; Any: its C scanner `scan_once` is not in the stubs


def _scan_once() -> Any:
    global _DECODER
    if _DECODER is None:
        _DECODER = json.JSONDecoder(parse_constant=_reject_constant)
    return _DECODER.scan_once


def _parse_block(head: bytes, count: int, loads: Any) -> list[dict[str, Any]] | None:
    """The objects of a block of complete lines, each line exactly one non-empty object, or
    None (the caller then parses line by line to name the bad line).

    Every line must start with '{' and end with '}' (one regex pass). Without a '[' anywhere
    in the block, the lines joined into one array are parsed with ONE json.loads: a line break
    can only fall inside a value if an array is open there (in an object, ',' must be followed
    by a key, never by the next line's '{'), so every element is exactly one line, and one
    element per line is checked by the count. Otherwise each object is scanned from its line's
    start with the C scanner and must end exactly at its line's end (a scan that starts at a
    '{' line start and stops at a '}' line end cannot have crossed a line). Either way this
    accepts exactly what json.loads accepts line by line, without its per-call overhead.
    """
    try:
        text = head.decode()
    except UnicodeDecodeError:
        return None
    if not _OBJECT_LINES.fullmatch(text) or _SURROGATE_ESCAPE.search(text):
        return None  # a \\uD800-\\uDFFF escape may be a lone surrogate: checked line by line
    if "[" not in text:
        try:
            joined = loads("[" + text[:-1].replace("\n", ",\n") + "]")
        except (ValueError, RecursionError):
            return None
        if len(joined) != count or not all(joined):
            return None
        return joined  # type: ignore[no-any-return]
    scan = _scan_once()
    objs: list[dict[str, Any]] = []
    append = objs.append
    pos = 0
    size = len(text)
    try:
        while pos < size:
            obj, end = scan(text, pos)
            if text[end] != "\n" or not obj:
                return None
            append(obj)
            pos = end + 1
    except (StopIteration, ValueError, RecursionError, IndexError):
        return None
    return objs if len(objs) == count else None


def _parse_lines(
    raw_lines: list[bytes], lineno: int, loads: Any
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    lines: list[str] = []
    numbers: list[int] = []
    for offset, raw in enumerate(raw_lines, 1):
        try:
            line = raw.decode().strip()
        except UnicodeDecodeError:
            yield from _flush_chunk(lines, numbers, loads)
            raise BadInput(f"line {lineno + offset}: not UTF-8 text; {EVENT_FORMS}") from None
        if line:
            lines.append(line)
            numbers.append(lineno + offset)
    yield from _flush_chunk(lines, numbers, loads)


def _flush_chunk(
    lines: list[str], numbers: list[int], loads: Any = json.loads
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    for lineno, line in zip(numbers, lines, strict=True):
        try:
            obj = loads(line)
        except ValueError as exc:
            raise BadInput(f"line {lineno}: invalid JSON ({exc}); {EVENT_FORMS}") from None
        except RecursionError:
            raise BadInput(f"line {lineno}: JSON nested too deeply; {EVENT_FORMS}") from None
        fields_from_object(obj, f"line {lineno}")  # raises for a non-object or an empty one
        yield lineno, [obj]


def _read_yaml_events(path: str, skip: int) -> Iterator[FieldPairs]:
    import yaml

    fh = open_input(path)
    try:
        data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else path
        raise BadInput(f"{where}: invalid YAML; accepted: a YAML list of mappings") from None
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, RecursionError) as exc:
        # PyYAML raises these for a tag whose value does not fit it (!!int abc, !!timestamp x)
        raise BadInput(f"{path}: invalid YAML value ({type(exc).__name__}: {exc})") from None
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()
    if not isinstance(data, list):
        raise BadInput(f"{path}: expected a YAML list of mappings (- field: value)")
    for index, item in enumerate(data, 1):
        fields = fields_from_object(item, f"item {index}")
        if index > skip:
            yield fields


# ---- entry envelopes (import) ----


def decode_value(value: Any, where: str) -> bytes:
    """A field name or value of an envelope: a string, or {"base64": "..."} for raw bytes."""
    if isinstance(value, str):
        try:
            return value.encode()
        except UnicodeEncodeError:
            raise BadInput(f"{where}: a lone surrogate (\\ud800-\\udfff) is not text") from None
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise BadInput(f"{where}: invalid base64 value") from None
    raise BadInput(f'{where}: a field name or value must be a string or {{"base64": "..."}}')


def envelope_fields(raw: Any, where: str) -> FieldPairs:
    """An envelope's 'fields' (an object, or [name, value] pairs for repeated names) as bytes."""
    if isinstance(raw, dict):
        items: list[tuple[Any, Any]] = list(raw.items())
    elif isinstance(raw, list):
        items = []
        for pair in raw:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise BadInput(f"{where}: 'fields' as a list must hold [name, value] pairs")
            items.append((pair[0], pair[1]))
    else:
        raise BadInput(f"{where}: 'fields' must be an object; {ENVELOPE_FORMS}")
    if not items:
        raise BadInput(f"{where}: 'fields' is empty; an entry needs at least one field")
    return tuple((decode_value(k, where), decode_value(v, where)) for k, v in items)


class GroupLine(NamedTuple):
    """A group's state in the import input (written by export --with-groups)."""

    lineno: int
    state: GroupState


GROUP_FORMS = (
    'a group line is {"group": {"name": "billing", "last_delivered_id": "1795773600000-0", '
    '"consumers": [...], "pending": [...]}} (as written by export --with-groups)'
)


def _pairs_hook(pairs: list[tuple[str, Any]]) -> Any:
    # repeated names (legal in a stream entry) stay a list of pairs instead of collapsing
    obj = dict(pairs)
    return obj if len(obj) == len(pairs) else [[k, v] for k, v in pairs]


class EntryBlock(NamedTuple):
    """Entry envelopes of consecutive lines, column by column (the usual export file read a block
    at a time): entry i is on line `lineno + i`; every `fields` object has the same names, in
    the same order, with string values."""

    lineno: int
    ids: list[str]  # canonical ids (no leading zeros)
    keys: list[tuple[int, int]]  # (ms, seq) of each id: ids.IdKey
    fields: list[dict[str, str]]

    def lines(self) -> Iterator[EntryLine]:
        """The same entries one by one, as the line-by-line reader gives them."""
        for i, (eid, key, fields) in enumerate(zip(self.ids, self.keys, self.fields, strict=True)):
            yield EntryLine(self.lineno + i, eid, key, list(chain.from_iterable(fields.items())))


class EntryLine(NamedTuple):
    """An entry envelope of the import input: its line, id and fields ([name, value, ...],
    str when the JSON had a string, bytes when it had {"base64": ...})."""

    lineno: int
    id: str
    key: tuple[int, int]  # (ms, seq): ids.IdKey
    flat: list[Any]


def _flat_fields(raw: Any, where: str) -> list[Any]:
    if type(raw) is dict and raw:
        flat: list[Any] = []
        append = flat.append
        for k, v in raw.items():
            if type(v) is not str:
                break
            append(k)
            append(v)
        else:
            return flat
    return [x for pair in envelope_fields(raw, where) for x in pair]


def _group_state(raw: Any, where: str) -> GroupState:
    from streamctl.core.models_transfer import GroupState, PendingState
    from streamctl.ids import StreamId

    if not isinstance(raw, dict):
        raise BadInput(f"{where}: 'group' must be an object; {GROUP_FORMS}")
    try:
        name = decode_value(raw["name"], where)
        position = str(StreamId.parse(raw["last_delivered_id"]))
        entries_read = raw.get("entries_read")
        if entries_read is not None and not isinstance(entries_read, int):
            raise BadInput(f"{where}: 'entries_read' must be a number or null")
        consumers = tuple(decode_value(c, where) for c in raw.get("consumers") or [])
        pending = tuple(
            PendingState(
                str(StreamId.parse(p["id"])),
                decode_value(p["consumer"], where),
                int(p.get("deliveries", 1)),
                int(p.get("idle_ms", 0)),
            )
            for p in raw.get("pending") or []
        )
    except BadInput as exc:
        raise BadInput(f"{where}: {exc.message.removeprefix(where + ': ')}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadInput(f"{where}: malformed group state ({exc}); {GROUP_FORMS}") from None
    return GroupState(name, position, entries_read, consumers, pending)


def _strings(obj: Any) -> int:
    """How many JSON strings (names and values) a decoded document holds."""
    kind = type(obj)
    if kind is str:
        return 1
    if kind is list:
        return sum(map(_strings, obj))
    if kind is not dict:
        return 0
    n = len(obj)
    for v in obj.values():
        if type(v) is str:
            n += 1
        elif type(v) is dict:  # an envelope's fields: names and string values, usually
            n += len(v)
            for x in v.values():
                n += 1 if type(x) is str else _strings(x)
        else:
            n += _strings(v)
    return n


def read_envelopes(path: str) -> Iterator[EntryLine | GroupLine]:
    """Entry envelopes (and group lines) from an NDJSON file or '-' (stdin); blank lines are
    skipped. A malformed line raises BadInput naming it: bad JSON, not an object, no 'fields',
    no 'id', a bad id, a field that is neither a string nor {"base64": ...}.
    """
    for item in read_envelope_blocks(path):
        if type(item) is EntryBlock:
            yield from item.lines()
        else:
            yield item  # type: ignore[misc]


def read_envelope_blocks(path: str) -> Iterator[EntryBlock | EntryLine | GroupLine]:
    """What read_envelopes reads, with runs of lines of one shape as EntryBlocks: the usual
    export file is decoded a block at a time (one orjson call per ~1 MiB), nothing per line in
    Python; any other block (escapes, arrays, other shapes, a bad line) line by line."""
    fh = open_input(path)
    try:
        for lineno, head, count in _line_blocks(fh):
            lines = head.split(b"\n")
            for start in range(0, count, ENVELOPE_BLOCK):
                part = lines[start : min(count, start + ENVELOPE_BLOCK)]
                block = _envelope_block(part, lineno + start + 1)
                if block is not None:
                    yield block
                else:
                    yield from _envelope_lines(part, lineno + start)
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


# Lines decoded together: a few hundred keep the objects made in the CPU's cache (decoding
# 7,500 lines at once was slower than decoding them one by one), and a bad line sends only its
# part to the line-by-line reader.
ENVELOPE_BLOCK = 256


_CANONICAL_IDS = re.compile(r"(?:(?:0|[1-9][0-9]*)-(?:0|[1-9][0-9]*)\n)*")


def _envelope_block(lines: list[bytes], lineno: int) -> EntryBlock | None:
    """The entries of consecutive lines (without their line breaks) when every line is an
    entry envelope of one
    shape: the same keys in the same order, string values, `fields` an object with the same
    names and string values, a canonical id; None otherwise (read line by line then).

    Decoded with ONE orjson call on the lines joined into an array: without '[' anywhere, each
    element is exactly one line (see _parse_block). orjson keeps the last of repeated names: the
    block is taken only when its quotes are exactly the strings found, two each (a repeated name
    leaves its quotes over, and so does an escaped quote: neither can hide the other).
    """
    import orjson

    head = b"\n".join(lines) + b"\n"
    count = len(lines)
    if b"[" in head or not _OBJECT_LINES_B.fullmatch(head):
        return None
    try:
        objs = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(objs) != count or set(map(type, objs)) != {dict}:
        return None
    shapes = set(map(tuple, objs))
    if len(shapes) != 1:
        return None
    (keys,) = shapes
    if "fields" not in keys or "id" not in keys:
        return None
    fields: list[dict[str, str]] = []
    for key in keys:
        column = list(map(itemgetter(key), objs))
        if key == "fields":
            fields = column
        elif set(map(type, column)) != {str}:
            return None
    if set(map(type, fields)) != {dict}:
        return None
    names = set(map(tuple, fields))
    if len(names) != 1:
        return None
    (shape,) = names
    if not shape or set(map(type, chain.from_iterable(map(dict.values, fields)))) != {str}:
        return None
    # every string: the keys, the values but `fields`, and each field's name and value
    if head.count(b'"') != 2 * count * (2 * len(keys) - 1 + 2 * len(shape)):
        return None
    ids: list[str] = list(map(itemgetter("id"), objs))
    if not _CANONICAL_IDS.fullmatch("\n".join(ids) + "\n"):
        return None
    parts = list(map(int, "-".join(ids).split("-")))
    ms, seq = parts[0::2], parts[1::2]
    if max(ms) > _MAX_PART or max(seq) > _MAX_PART:
        return None
    return EntryBlock(lineno, ids, list(zip(ms, seq, strict=True)), fields)


_OBJECT_LINES_B = re.compile(rb"(?:\{[^\n]*\}\n)*")
_MAX_PART = (1 << 64) - 1


def _envelope_lines(raw_lines: list[bytes], before: int) -> Iterator[EntryLine | GroupLine]:
    """The envelopes of lines (after line `before`) one by one, naming a malformed line."""
    import orjson

    from streamctl.ids import id_key

    decode = json.JSONDecoder(object_pairs_hook=_pairs_hook).decode
    loads, refused = orjson.loads, orjson.JSONDecodeError
    for lineno, raw_line in enumerate(raw_lines, before + 1):
        # orjson first (5x json with a pairs hook); it keeps the last of repeated names, so
        # a line is taken from it only when its quotes are all accounted for by the strings
        # it found (a repeated name, or an escaped quote, sends the line to json)
        try:
            obj = loads(raw_line)
        except refused:
            obj = None
        if obj is not None and raw_line.count(b'"') != 2 * _strings(obj):
            obj = None
        try:
            if obj is None:
                obj = decode(raw_line.decode())
        except UnicodeDecodeError:
            raise BadInput(f"line {lineno}: not UTF-8 text; {ENVELOPE_FORMS}") from None
        except ValueError as exc:
            if not raw_line.strip():
                continue
            raise BadInput(f"line {lineno}: invalid JSON ({exc}); {ENVELOPE_FORMS}") from None
        except RecursionError:
            raise BadInput(f"line {lineno}: JSON nested too deeply; {ENVELOPE_FORMS}") from None
        if type(obj) is not dict:
            raise BadInput(f"line {lineno}: expected a JSON object; {ENVELOPE_FORMS}")
        fields = obj.get("fields")
        if fields is None:
            if "group" in obj:
                yield GroupLine(lineno, _group_state(obj["group"], f"line {lineno}"))
                continue
            raise BadInput(f"line {lineno}: no 'fields'; {ENVELOPE_FORMS}")
        eid = obj.get("id")
        if type(eid) is not str:
            raise BadInput(
                f"line {lineno}: no 'id' (a string like \"1795773600000-0\"); {ENVELOPE_FORMS}"
            )
        key = id_key(eid)
        if key is None:
            raise BadInput(f"line {lineno}: bad id {eid!r}: expected ms-seq, e.g. 1795773600000-0")
        yield EntryLine(lineno, f"{key[0]}-{key[1]}", key, _flat_fields(fields, f"line {lineno}"))
