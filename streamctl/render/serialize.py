"""Models -> plain data -> json / ndjson / yaml. The entry envelope of the SPEC lives here.

Field names and values are strings when they are valid UTF-8 and {"base64": "..."} otherwise.
`fields` is an object in the field order of the entry; when a field name repeats or is not UTF-8
(both legal in a stream, neither expressible as object keys) it is a list of [name, value] pairs,
which `import` reads back as well.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Iterable
from itertools import chain
from json.encoder import encode_basestring
from typing import Any

from streamctl.core.models import (
    Entry,
    GroupInfo,
    PublishResult,
    RawEntry,
    StreamInfo,
    StreamSummary,
)
from streamctl.ids import format_time, id_ms


def value_data(value: bytes) -> str | dict[str, str]:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


def fields_data(pairs: Iterable[tuple[bytes, bytes]]) -> dict[str, Any] | list[list[Any]]:
    pairs = list(pairs)
    names = [k for k, _ in pairs]
    if len(set(names)) == len(names):
        try:
            return {k.decode(): value_data(v) for k, v in pairs}
        except UnicodeDecodeError:
            pass
    return [[value_data(k), value_data(v)] for k, v in pairs]


def entry_data(entry: Entry) -> dict[str, Any]:
    return {
        "stream": entry.stream,
        "id": entry.id,
        "time": format_time(entry.time_ms),
        "fields": fields_data(entry.fields),
    }


def _quoted(value: bytes) -> str:
    try:
        return encode_basestring(value.decode())
    except UnicodeDecodeError:
        return '{"base64":"' + base64.b64encode(value).decode() + '"}'


def ndjson_lines(stream: str, entries: list[RawEntry]) -> str:
    """The NDJSON envelopes of a batch of raw entries, one per line (with the final newline)."""
    return ndjson_bytes(stream, entries).decode()


# bytes that a JSON string must escape (besides non-UTF-8 sequences)
_NEEDS_ESCAPE = re.compile(rb"[\\\x00-\x1f]")
_time_cache: dict[bytes, bytes] = {}


def _entry_time(ms: bytes) -> bytes:
    text = _time_cache.get(ms)
    if text is None:
        if len(_time_cache) > 100_000:
            _time_cache.clear()
        text = _time_cache[ms] = format_time(int(ms)).encode()
    return text


def _clean_batch(entries: list[RawEntry]) -> bool:
    """True when no field name or value of the batch needs escaping and all are UTF-8.

    One join, one count, one regex scan (and a decode only for non-ASCII text) for the whole
    batch instead of work per field: the separator '"' is itself an escaped character, so the
    quotes are counted and must be exactly the separators.
    """
    if not all(flat for _, flat in entries):  # no fields (a deleted entry's nil): slow path
        return False
    items = list(chain.from_iterable(flat for _, flat in entries))
    blob = b'"'.join(items)
    if blob.count(b'"') != len(items) - 1 or _NEEDS_ESCAPE.search(blob):
        return False
    if not blob.isascii():
        try:
            blob.decode()
        except UnicodeDecodeError:
            return False
    return True


def ndjson_bytes(stream: str, entries: list[RawEntry]) -> bytes:
    """The NDJSON envelopes of a batch of raw entries as UTF-8 bytes, one per line.

    The bulk path of range/export/tail: no dict per entry. A batch whose fields need no
    escaping (the usual case) is written by joining bytes; any other batch entry by entry
    with the C string encoder, base64 for bytes that are not UTF-8.
    """
    if not _clean_batch(entries):
        head_text = '{"stream":' + encode_basestring(stream) + ',"id":"'
        return "".join(_ndjson_line_slow(head_text, eid, flat) for eid, flat in entries).encode()
    head = b'{"stream":' + encode_basestring(stream).encode() + b',"id":"'
    pair = b'":"'.join
    fields_sep = b'","'.join
    time_of = _time_cache.get
    out: list[bytes] = []
    extend = out.extend
    for eid, flat in entries:
        names = flat[0::2]
        if len(names) > 1 and len(set(names)) != len(names):
            out.append(_ndjson_line_slow(head.decode(), eid, flat).encode())
            continue
        dash = eid.find(b"-")
        ms = eid[:dash] if dash >= 0 else eid
        when = time_of(ms) or _entry_time(ms)
        extend(
            (
                head,
                eid,
                b'","time":"',
                when,
                b'","fields":{"',
                fields_sep(map(pair, zip(names, flat[1::2], strict=True))),
                b'"}}\n',
            )
        )
    return b"".join(out)


def _ndjson_line_slow(head: str, eid_b: bytes, flat: list[bytes] | None) -> str:
    flat = flat or []
    eid = eid_b.decode()
    dash = eid.find("-")
    time_text = format_time(int(eid[:dash] if dash >= 0 else eid))
    names = flat[0::2]
    if len(set(names)) == len(names):
        try:
            body = ",".join(
                encode_basestring(flat[i].decode()) + ":" + _quoted(flat[i + 1])
                for i in range(0, len(flat), 2)
            )
            return f'{head}{eid}","time":"{time_text}","fields":{{{body}}}}}\n'
        except UnicodeDecodeError:
            pass
    body = ",".join(
        "[" + _quoted(flat[i]) + "," + _quoted(flat[i + 1]) + "]" for i in range(0, len(flat), 2)
    )
    return f'{head}{eid}","time":"{time_text}","fields":[{body}]}}\n'


def raw_entry_data(stream: str, raw: RawEntry) -> dict[str, Any]:
    return entry_data(Entry.from_raw(stream, raw))


def _time_or_none(entry_id: str | None) -> str | None:
    return format_time(id_ms(entry_id)) if entry_id else None


def stream_summary_data(s: StreamSummary) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": s.name,
        "length": s.length,
        "groups": s.groups,
        "first_id": s.first_id,
        "first_time": _time_or_none(s.first_id),
        "last_id": s.last_id,
        "last_time": _time_or_none(s.last_id),
        "last_age_ms": max(0, s.now_ms - id_ms(s.last_id)) if s.last_id else None,
    }
    if s.memory is not None:
        data["memory_bytes"] = s.memory
    return data


def group_data(g: GroupInfo) -> dict[str, Any]:
    return {
        "stream": g.stream,
        "group": g.name,
        "consumers": g.consumers,
        "pending": g.pending,
        "last_delivered_id": g.last_delivered_id,
        "last_delivered_time": _time_or_none(
            g.last_delivered_id if g.last_delivered_id != "0-0" else None
        ),
        "entries_read": g.entries_read,
        "lag": g.lag,
        "lag_computed": g.lag_computed,
        "behind_ms": g.behind_ms,
    }


def stream_info_data(i: StreamInfo) -> dict[str, Any]:
    return {
        "name": i.name,
        "length": i.length,
        "first_id": i.first_entry.id if i.first_entry else None,
        "first_time": format_time(i.first_entry.time_ms) if i.first_entry else None,
        "last_id": i.last_entry.id if i.last_entry else None,
        "last_time": format_time(i.last_entry.time_ms) if i.last_entry else None,
        "last_generated_id": i.last_generated_id,
        "last_generated_time": _time_or_none(
            i.last_generated_id if i.last_generated_id != "0-0" else None
        ),
        "entries_added": i.entries_added,
        "max_deleted_id": i.max_deleted_id,
        "recorded_first_id": i.recorded_first_id,
        "radix_tree_keys": i.radix_tree_keys,
        "radix_tree_nodes": i.radix_tree_nodes,
        "first_entry": entry_data(i.first_entry) if i.first_entry else None,
        "last_entry": entry_data(i.last_entry) if i.last_entry else None,
        "groups": [group_data(g) for g in i.groups],
    }


def publish_data(r: PublishResult) -> list[dict[str, str]]:
    return [{"stream": r.stream, "id": i} for i in r.ids]


_CONVERTERS: dict[type, Any] = {
    StreamSummary: stream_summary_data,
    GroupInfo: group_data,
    StreamInfo: stream_info_data,
    Entry: entry_data,
    PublishResult: publish_data,
}


def to_data(obj: Any) -> Any:
    """Plain data (dicts, lists, str, int, None) for a model or a list of models."""
    if isinstance(obj, list | tuple):
        return [to_data(o) for o in obj]
    conv = _CONVERTERS.get(type(obj))
    if conv is not None:
        return conv(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, bytes):
        return value_data(obj)
    return obj


def register(model: type, converter: Any) -> None:
    """Let a command module's model define its plain-data shape."""
    _CONVERTERS[model] = converter


def dump_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def dump_ndjson(items: Iterable[Any]) -> str:
    return "".join(json.dumps(i, ensure_ascii=False, separators=(",", ":")) + "\n" for i in items)


def dump_yaml(data: Any) -> str:
    import yaml

    text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return text


def dump(data: Any, fmt: str) -> str:
    """Serialize plain data as json, ndjson (one line per item of a list) or yaml."""
    if fmt == "json":
        return dump_json(data)
    if fmt == "ndjson":
        return dump_ndjson(data if isinstance(data, list) else [data])
    if fmt == "yaml":
        return dump_yaml(data)
    raise ValueError(f"not a data format: {fmt}")
