"""The one id/time grammar of streamctl (SPEC: "Ids and times").

Parsing is pure syntax (no server needed) and fails with BadInput (exit 2) listing the accepted
forms. Resolving a position into an id the server understands needs the server's clock only for
durations, so `now_ms` is passed as a callable and only called when a duration is used.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from streamctl.errors import BadInput

MAX_PART = 2**64 - 1

ACCEPTED_FORMS = (
    "accepted: - + 0 $, an id (1795773600000-3 or 1795773600000), a time "
    "(2026-11-27T10:00:00Z, 2026-11-27T10:00:00+01:00, 2026-11-27), "
    "a duration ago (90s, 15m, 2h30m, 7d, 500ms), or (ID for an exclusive start"
)
DURATION_FORMS = "accepted: 500ms, 90s, 15m, 2h30m, 7d, 1w, or 0"

_ID_RE = re.compile(r"^(\d+)(?:-(\d+))?$")
_DURATION_RE = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w))+$")
_DURATION_PART_RE = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?$"
)


@dataclass(frozen=True, order=True)
class StreamId:
    ms: int
    seq: int

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"

    @classmethod
    def parse(cls, text: str | bytes) -> StreamId:
        """Parse a full or millisecond id ('123-4', '123'); a missing sequence is 0."""
        if isinstance(text, bytes):
            text = text.decode()
        m = _ID_RE.match(text)
        if not m:
            raise BadInput(f"bad id {text!r}: {ACCEPTED_FORMS}")
        if len(m.group(1)) > 20 or len(m.group(2) or "") > 20:
            raise BadInput(f"bad id {text[:40]!r}: each part must be below 2^64")
        ms, seq = int(m.group(1)), int(m.group(2) or 0)
        if ms > MAX_PART or seq > MAX_PART:
            raise BadInput(f"bad id {text!r}: each part must be below 2^64")
        return cls(ms, seq)

    def next(self) -> StreamId:
        if self.seq < MAX_PART:
            return StreamId(self.ms, self.seq + 1)
        return StreamId(self.ms + 1, 0)

    def previous(self) -> StreamId:
        if self.seq > 0:
            return StreamId(self.ms, self.seq - 1)
        if self.ms == 0:
            return self
        return StreamId(self.ms - 1, MAX_PART)


IdKey = tuple[int, int]


def id_key(text: str) -> IdKey | None:
    """(ms, seq) of a full or millisecond id in ASCII digits, or None when `text` is not one:
    the fast path of StreamId.parse for bulk input (an import checks every line's id)."""
    ms, sep, seq = text.partition("-")
    if not ms.isdigit() or not ms.isascii() or (sep and not (seq.isdigit() and seq.isascii())):
        return None
    key = (int(ms), int(seq) if sep else 0)
    return key if key[0] <= MAX_PART and key[1] <= MAX_PART else None


MIN_ID = StreamId(0, 0)
MAX_ID = StreamId(MAX_PART, MAX_PART)

PositionKind = Literal["min", "max", "zero", "last", "id", "time", "duration"]


@dataclass(frozen=True)
class Position:
    """A parsed id/time argument; resolve it with resolve_start / resolve_end / resolve_exact."""

    text: str
    kind: PositionKind
    exclusive: bool = False
    ms: int = 0  # for id and time
    seq: int | None = None  # None for a millisecond id or a time: covers the whole span
    span_ms: int = 1  # a time's precision: a date covers a day, '10:00' a minute
    duration_ms: int = 0  # for a duration


def parse_position(
    text: str,
    *,
    allow_last: bool = False,
    allow_exclusive: bool = True,
) -> Position:
    """Parse one id/time argument, or raise BadInput naming the accepted forms."""
    raw = text
    text = text.strip()
    exclusive = False
    if text.startswith("("):
        if not allow_exclusive:
            raise BadInput(f"bad id {raw!r}: an exclusive '(' start is not accepted here")
        exclusive = True
        text = text[1:]
    if text == "-":
        kind: PositionKind = "min"
    elif text == "+":
        kind = "max"
    elif text == "$":
        if not allow_last or exclusive:
            raise BadInput(f"bad id {raw!r}: '$' is not accepted here; {ACCEPTED_FORMS}")
        kind = "last"
    else:
        kind = "id"
    if kind != "id":
        if exclusive:
            raise BadInput(f"bad id {raw!r}: '(' needs an id or a time after it")
        return Position(raw, kind)
    if text == "0":
        return Position(raw, "zero", exclusive=exclusive, ms=0, seq=0)
    m = _ID_RE.match(text)
    if m:
        sid = StreamId.parse(text)
        return Position(raw, "id", exclusive, sid.ms, sid.seq if m.group(2) else None)
    if _DURATION_RE.match(text):
        return Position(raw, "duration", exclusive, duration_ms=_duration_ms(text))
    tm = _TIME_RE.match(text)
    if tm:
        ms, span = _time_ms(tm, raw)
        return Position(raw, "time", exclusive, ms, None, span)
    raise BadInput(f"bad id or time {raw!r}: {ACCEPTED_FORMS}")


def _time_ms(m: re.Match[str], raw: str) -> tuple[int, int]:
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        dt = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((frac or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise BadInput(f"bad time {raw!r}: {exc}; {ACCEPTED_FORMS}") from None
    offset = timedelta(0)
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise BadInput(f"bad time zone in {raw!r}: {ACCEPTED_FORMS}")
        offset = sign * timedelta(hours=hours, minutes=minutes)
    utc = dt.replace(tzinfo=timezone.utc) - offset
    ms = calendar.timegm(utc.timetuple()) * 1000 + utc.microsecond // 1000
    if ms < 0:
        raise BadInput(f"bad time {raw!r}: times before 1970 have no stream ids")
    if hour is None:
        span = 86_400_000
    elif second is None:
        span = 60_000
    elif frac is None:
        span = 1000
    else:
        span = 1
    return ms, span


def _duration_ms(text: str, what: str = "duration") -> int:
    parts = _DURATION_PART_RE.findall(text)
    if any(len(n) > 15 for n, _ in parts):  # beyond any stream's age (and int()'s limits)
        raise BadInput(f"bad {what} {text[:40]!r}: too long; {DURATION_FORMS}")
    return sum(int(n) * _UNIT_MS[unit] for n, unit in parts)


def parse_duration(text: str, *, what: str = "duration") -> int:
    """A duration option's value ('90s', '2h30m', '500ms', or a bare '0') in milliseconds."""
    value = text.strip()
    if value == "0":
        return 0
    if not _DURATION_RE.match(value):
        raise BadInput(f"bad {what} {text!r}: {DURATION_FORMS}")
    return _duration_ms(value, what)


NowMs = Callable[[], int]


def _point_ms(pos: Position, now_ms: NowMs | None) -> int:
    if pos.kind == "duration":
        if now_ms is None:
            raise BadInput(f"a duration ({pos.text!r}) is not accepted here")
        return max(0, now_ms() - pos.duration_ms)
    return pos.ms


def resolve_start(pos: Position, now_ms: NowMs | None = None) -> str:
    """The server id where a range starting at `pos` starts (inclusive)."""
    if pos.kind == "min":
        return "-"
    if pos.kind == "max":
        return "+"
    if pos.kind == "last":
        return "$"
    if pos.kind == "id" and pos.seq is not None:
        sid = StreamId(pos.ms, pos.seq)
        if pos.exclusive:
            if sid == MAX_ID:
                raise BadInput(f"bad start {pos.text!r}: no id comes after the largest one")
            sid = sid.next()
        return str(sid)
    if pos.kind == "zero":
        return str(StreamId(0, 1)) if pos.exclusive else "0-0"
    ms = _point_ms(pos, now_ms)
    if pos.exclusive:
        ms += pos.span_ms
        if ms > MAX_PART:
            raise BadInput(f"bad start {pos.text!r}: no id comes after the largest one")
    return f"{ms}-0"


def resolve_end(pos: Position, now_ms: NowMs | None = None) -> str:
    """The server id where a range ending at `pos` ends (inclusive): a ms id, time or date
    covers its whole span (a date as END means through 23:59:59.999)."""
    if pos.kind == "min":
        return "-"
    if pos.kind == "max":
        return "+"
    if pos.kind == "last":
        return "+"
    if pos.kind == "zero":
        return "0-0"
    if pos.kind == "id" and pos.seq is not None:
        sid = StreamId(pos.ms, pos.seq)
        return str(sid.previous() if pos.exclusive else sid)
    ms = _point_ms(pos, now_ms)
    if pos.exclusive:
        return str(StreamId(ms, 0).previous())
    return f"{ms + pos.span_ms - 1}-{MAX_PART}"


def resolve_exact(pos: Position, now_ms: NowMs | None = None) -> str:
    """An exact id for a position (group create/setid, trim MINID): `$` stays `$`, a time is the
    first id at that time, `-` is 0-0 and `+` is unsupported here (the caller decides)."""
    if pos.kind == "last":
        return "$"
    if pos.kind in ("min", "zero"):
        return "0-0"
    if pos.kind == "max":
        return "+"
    return resolve_start(pos, now_ms)


def resolve_minid(minid: str, now_ms: NowMs | None = None) -> str:
    """A MINID threshold (trim, publish --minid): an id, a time or a duration ago, as an exact
    id; `now_ms` is called only for a duration."""
    pos = parse_position(minid, allow_exclusive=False)
    if pos.kind in ("max", "last"):
        raise BadInput(f"bad --minid {minid!r}: give an id, a time or a duration ago")
    return resolve_exact(pos, now_ms)


# ---- presentation helpers shared by render and core (pure functions of ids) ----


def id_ms(entry_id: str | bytes) -> int:
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode()
    return int(entry_id.split("-", 1)[0])


_second_cache: dict[int, str] = {}


def format_time(ms: int) -> str:
    """'2026-11-27T10:00:00.000Z' for a millisecond timestamp (UTC)."""
    sec, rest = divmod(ms, 1000)
    prefix = _second_cache.get(sec)
    if prefix is None:
        if len(_second_cache) > 4096:
            _second_cache.clear()
        try:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        except (OverflowError, OSError, ValueError):
            prefix = "9999-12-31T23:59:59"
        _second_cache[sec] = prefix
    return f"{prefix}.{rest:03d}Z"


def time_of_id(entry_id: str | bytes) -> str:
    return format_time(id_ms(entry_id))


def format_duration(ms: int | float) -> str:
    """A compact duration: '450ms', '12s', '3m12s', '2h5m', '3d4h'."""
    ms = int(ms)
    if ms < 0:
        return "-" + format_duration(-ms)
    if ms < 1000:
        return f"{ms}ms"
    s = ms // 1000
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s}s" if s else f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d{h}h" if h else f"{d}d"


def format_age(ms: int | float) -> str:
    """'3m12s ago'."""
    return f"{format_duration(ms)} ago"
