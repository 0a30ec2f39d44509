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
from collections.abc import Iterable
from itertools import chain, repeat
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

from streamctl.core.models import (
    Endpoint,
    Entry,
    GroupInfo,
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
        "fields": fields_data(entry.pairs),
    }


def _quoted(value: bytes) -> str:
    try:
        return encode_basestring(value.decode())
    except UnicodeDecodeError:
        return '{"base64":"' + base64.b64encode(value).decode() + '"}'


def ndjson_lines(stream: str, entries: list[RawEntry]) -> str:
    """The NDJSON envelopes of a batch of raw entries, one per line (with the final newline)."""
    return ndjson_bytes(stream, entries).decode()


_time_cache: dict[bytes, bytes] = {}


def _entry_time(ms: bytes) -> bytes:
    text = _time_cache.get(ms)
    if text is None:
        if len(_time_cache) > 100_000:
            _time_cache.clear()
        text = _time_cache[ms] = format_time(int(ms)).encode()
    return text


def ndjson_bytes(stream: str, entries: list[RawEntry]) -> bytes:
    """The NDJSON envelopes of a batch of raw entries as UTF-8 bytes, one per line.

    The bulk path of range/export/tail: no dict per entry. The batch is first written by joining
    bytes as if no field needed escaping (the usual case), then checked as a whole with a few C
    passes (quote and newline counts, one regex, UTF-8): any field that needed escaping, was not
    UTF-8, or repeated a name makes the batch be written entry by entry with the C string
    encoder (base64 for bytes that are not UTF-8).
    """
    head = b'{"stream":' + encode_basestring(stream).encode() + b',"id":"'
    fast = _ndjson_fast(head, entries)
    if fast is not None:
        return fast
    head_text = head.decode()
    return "".join(_ndjson_line_slow(head_text, eid, flat) for eid, flat in entries).encode()


# every byte but the ones a JSON string must escape ('"' and the newline are counted instead):
# bytes.translate(None, _PLAIN) leaves only those, in one C pass (8x faster than a regex)
_PLAIN = bytes(b for b in range(256) if b >= 0x20 and b != 0x5C or b == 0x0A or b == 0x22)


def _ndjson_fast(head: bytes, entries: list[RawEntry]) -> bytes | None:
    ids = list(map(itemgetter(0), entries))
    flats = list(map(itemgetter(1), entries))
    if not all(flats) or head.translate(None, _PLAIN):  # an entry without fields: slow path
        return None
    time_of = _time_cache.get
    # ids from the server always have their dash: 'ms-seq'
    times = [time_of(i[: i.find(b"-")]) or _entry_time(i[: i.find(b"-")]) for i in ids]
    widths = set(map(len, flats))
    if len(widths) == 1:
        parts = _uniform_parts(head, ids, times, flats, widths.pop())
    else:
        parts = _mixed_parts(head, ids, times, flats)
    if parts is None:
        return None  # a repeated field name: fields as [name, value] pairs
    data = b"".join(parts)
    # per entry: the head's quotes, 7 around id/time/fields, 4 per field (name and value)
    quotes = len(entries) * (head.count(b'"') + 7) + 2 * sum(map(len, flats))
    if (
        data.count(b'"') != quotes
        or data.count(b"\n") != len(entries)
        or data.translate(None, _PLAIN)
    ):
        return None
    if not data.isascii():
        try:
            data.decode()
        except UnicodeDecodeError:
            return None
    return data


_ID_TO_TIME = b'","time":"'
_TIME_TO_FIELDS = b'","fields":{"'
_NAME_TO_VALUE = b'":"'
_VALUE_TO_NAME = b'","'
_ENTRY_END = b'"}}\n'


def _uniform_parts(
    head: bytes, ids: list[bytes], times: list[bytes], flats: list[list[bytes]], width: int
) -> Iterable[bytes] | None:
    """Every entry has `width` field items (the usual batch: one producer, one schema): the
    output is built column by column, with no Python-level work per entry."""
    name_rows = set(map(itemgetter(*range(0, width, 2)), flats)) if width > 2 else set()
    for names in name_rows:  # the distinct name tuples, usually one
        if len(set(names)) != len(names):
            return None
    columns: list[Iterable[bytes]] = [
        repeat(head),
        ids,
        repeat(_ID_TO_TIME),
        times,
        repeat(_TIME_TO_FIELDS),
    ]
    for j in range(width):
        columns.append(map(itemgetter(j), flats))
        columns.append(repeat(_NAME_TO_VALUE if j % 2 == 0 else _VALUE_TO_NAME))
    columns[-1] = repeat(_ENTRY_END)
    return chain.from_iterable(zip(*columns, strict=False))  # the repeats are endless


def _mixed_parts(
    head: bytes, ids: list[bytes], times: list[bytes], flats: list[list[bytes]]
) -> Iterable[bytes] | None:
    for flat in flats:
        if len(flat) > 2 and len(set(flat[0::2])) * 2 != len(flat):
            return None
    pair = _NAME_TO_VALUE.join
    fields_sep = _VALUE_TO_NAME.join
    bodies = [fields_sep(map(pair, zip(f[0::2], f[1::2], strict=True))) for f in flats]
    return chain.from_iterable(
        zip(
            repeat(head),
            ids,
            repeat(_ID_TO_TIME),
            times,
            repeat(_TIME_TO_FIELDS),
            bodies,
            repeat(_ENTRY_END),
            strict=False,  # the repeats are endless: ids ends it
        )
    )


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


def time_of(entry_id: str | None) -> str | None:
    """The time of an id for reports; None for no id, 0-0 and the range bounds - and +."""
    if not entry_id or entry_id in ("0-0", "-", "+"):
        return None
    return format_time(id_ms(entry_id))


def endpoint_data(e: Endpoint | None) -> dict[str, Any] | None:
    """Where a command ran, as the `connected` key of ls, info and doctor."""
    if e is None:
        return None
    return {"address": e.address, "role": e.role, "master_name": e.master_name}


def endpoint_text(e: Endpoint) -> str:
    """e.g. `10.0.0.5:6379 (primary, Sentinel master mymaster)`."""
    extra = f", Sentinel master {e.master_name}" if e.master_name else ""
    return f"{e.address} ({e.role}{extra})"


def stream_summary_data(s: StreamSummary) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": s.name,
        "length": s.length,
        "groups": s.groups,
        "first_id": s.first_id,
        "first_time": time_of(s.first_id),
        "last_id": s.last_id,
        "last_time": time_of(s.last_id),
        "last_age_ms": max(0, s.now_ms - id_ms(s.last_id)) if s.last_id else None,
    }
    if s.memory is not None:
        data["memory_bytes"] = s.memory
    if s.endpoint is not None:
        data["connected"] = endpoint_data(s.endpoint)
    return data


def group_data(g: GroupInfo) -> dict[str, Any]:
    return {
        "stream": g.stream,
        "group": g.name,
        "consumers": g.consumers,
        "pending": g.pending,
        "last_delivered_id": g.last_delivered_id,
        "last_delivered_time": time_of(g.last_delivered_id),
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
        "last_generated_time": time_of(i.last_generated_id),
        "entries_added": i.entries_added,
        "max_deleted_id": i.max_deleted_id,
        "recorded_first_id": i.recorded_first_id,
        "radix_tree_keys": i.radix_tree_keys,
        "radix_tree_nodes": i.radix_tree_nodes,
        "first_entry": entry_data(i.first_entry) if i.first_entry else None,
        "last_entry": entry_data(i.last_entry) if i.last_entry else None,
        "groups": [group_data(g) for g in i.groups],
        "connected": endpoint_data(i.endpoint),
    }


_CONVERTERS: dict[type, Any] = {
    StreamSummary: stream_summary_data,
    GroupInfo: group_data,
    StreamInfo: stream_info_data,
    Entry: entry_data,
}


# The models of the other render modules with a shape of their own: "core module.class" ->
# ("render module", converter).
# One explicit table, looked up by name and imported on use: a model gets the same shape
# whichever render modules happen to be loaded (no registration by the side effect of an import).
CONVERTERS: dict[str, tuple[str, str]] = {
    "models_repairs.TraceReport": ("repairs", "trace_data"),
    "models_repairs.PrunePlan": ("repairs", "prune_data"),
    "models_repairs.RedriveResult": ("repairs", "redrive_data"),
    "models_monitoring.DoctorReport": ("doctor", "doctor_data"),
    "models_groups.Consumer": ("groups", "consumer_data"),
    "models_groups.GroupCreateResult": ("groups", "create_data"),
    "models_groups.GroupDestroyResult": ("groups", "destroy_data"),
    "models_groups.SetIdPlan": ("groups", "setid_data"),
    "models_groups.DelConsumerResult": ("groups", "delconsumer_data"),
    "models_pending.PendingSummary": ("groups", "summary_data"),
    "models_pending.ClaimResult": ("groups", "claim_data"),
    "models_pending.DeadLetterResult": ("groups", "dead_letter_data"),
    "models_pending.AckResult": ("groups", "ack_data"),
    "models_health.CheckReport": ("health", "check_data"),
    "models_health.TopReport": ("health", "top_data"),
    "models_health.BenchResult": ("health", "bench_data"),
    "models_health.ProfileView": ("health", "profile_data"),
    "models_transfer.GroupHold": ("transfer", "hold_data"),
    "models_transfer.TrimPlan": ("transfer", "trim_plan_data"),
    "models_transfer.TrimResult": ("transfer", "trim_result_data"),
    "models_transfer.ReplayResult": ("transfer", "replay_result_data"),
    "models_transfer.RewindResult": ("transfer", "rewind_result_data"),
    "models_transfer.GroupImport": ("transfer", "group_import_data"),
    "models_transfer.ImportResult": ("transfer", "import_result_data"),
}


def converter_of(cls: type) -> Any:
    """The function giving a model its plain-data shape, or None (generic dataclass fields)."""
    own = _CONVERTERS.get(cls)
    if own is not None:
        return own
    module = cls.__module__.removeprefix("streamctl.core.")
    where = CONVERTERS.get(f"{module}.{cls.__qualname__}")
    if where is None:
        return None
    import importlib

    return getattr(importlib.import_module(f"streamctl.render.{where[0]}"), where[1])


def to_data(obj: Any) -> Any:
    """Plain data (dicts, lists, str, int, None) for a model or a list of models."""
    if isinstance(obj, list | tuple):
        return [to_data(o) for o in obj]
    conv = converter_of(type(obj))
    if conv is not None:
        return conv(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, bytes):
        return value_data(obj)
    return obj


def dump_json(data: Any) -> str:
    """Indented JSON (2 spaces, UTF-8 as is), written by orjson: 15x faster than json's
    pure-Python indenting encoder on the 20,000 results of a fleet-wide `check`. What orjson
    refuses (an integer past 64 bits, a lone surrogate, a key that is not a string) is written by
    json, in the same layout. Floats in exponent form read 1e-7 where json writes 1e-07."""
    import orjson

    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode()
    except TypeError:
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def dump_ndjson(items: Iterable[Any]) -> str:
    """One compact JSON document per line (orjson; json for what orjson refuses)."""
    import orjson

    dumps = orjson.dumps
    lines: list[str] = []
    for item in items:
        try:
            lines.append(dumps(item).decode())
        except TypeError:
            lines.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n" if lines else ""


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
