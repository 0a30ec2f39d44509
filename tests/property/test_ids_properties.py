"""Properties of the id/time grammar (streamctl.ids): every generated valid form resolves to the
documented id, orderings are kept, and any other text is a BadInput with one line, never another
exception."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamctl import ids
from streamctl.errors import BadInput, ExitCode

MAX = 2**64 - 1
NOW = 1_795_773_600_000
PROPS = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

parts = st.integers(min_value=0, max_value=MAX)
stream_ids = st.builds(ids.StreamId, parts, parts)
# years 1970..9999 in UTC (the grammar's four-digit years; no stream id before 1970)
instants = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30)).map(
    lambda dt: dt.replace(microsecond=dt.microsecond // 1000 * 1000)
)
UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
durations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(UNITS))),
    min_size=1,
    max_size=4,
)


def now() -> int:
    return NOW


def epoch_ms(dt: datetime) -> int:
    return calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000


def sid(text: str) -> ids.StreamId:
    return ids.StreamId.parse(text)


def valid_server_id(text: str) -> bool:
    """What the server takes as a range bound: -, +, or ms-seq with both parts below 2^64."""
    if text in ("-", "+"):
        return True
    ms, _, seq = text.partition("-")
    return ms.isdigit() and seq.isdigit() and int(ms) <= MAX and int(seq) <= MAX


# ---- ids ----


@PROPS
@given(stream_ids)
def test_full_id_resolves_to_itself(s: ids.StreamId) -> None:
    pos = ids.parse_position(str(s))
    if s == ids.MIN_ID:
        return  # "0-0" is an id like any other, but "0" alone is the beginning: both are 0-0
    assert (pos.kind, pos.ms, pos.seq, pos.exclusive) == ("id", s.ms, s.seq, False)
    assert ids.resolve_start(pos) == ids.resolve_end(pos) == ids.resolve_exact(pos) == str(s)


@PROPS
@given(stream_ids)
def test_exclusive_full_id_starts_after_it(s: ids.StreamId) -> None:
    pos = ids.parse_position(f"({s}")
    assert pos.exclusive
    if s != ids.MAX_ID:
        assert sid(ids.resolve_start(pos)) == s.next() > s
    if s != ids.MIN_ID:
        assert sid(ids.resolve_end(pos)) == s.previous() < s


@PROPS
@given(st.integers(min_value=1, max_value=MAX))
def test_millisecond_id_covers_its_whole_millisecond(ms: int) -> None:
    pos = ids.parse_position(str(ms))
    assert (pos.kind, pos.ms, pos.seq) == ("id", ms, None)
    assert ids.resolve_start(pos) == f"{ms}-0"
    assert ids.resolve_end(pos) == f"{ms}-{MAX}"


@PROPS
@given(st.integers(min_value=0, max_value=MAX - 1))
def test_exclusive_start_is_a_valid_server_id(ms: int) -> None:
    for text in (f"({ms}", f"({ms}-0", f"({ms}-{MAX}"):
        start = ids.resolve_start(ids.parse_position(text))
        assert valid_server_id(start), (text, start)


@pytest.mark.parametrize("text", [f"({MAX}", f"({MAX}-{MAX}"])
def test_exclusive_start_after_the_largest_id(text: str) -> None:
    # nothing can follow the largest id: a usage error, not an id the server rejects
    with pytest.raises(BadInput, match="no id comes after the largest one") as info:
        ids.resolve_start(ids.parse_position(text))
    assert "\n" not in str(info.value)


@PROPS
@given(stream_ids, stream_ids)
def test_start_order_follows_id_order(a: ids.StreamId, b: ids.StreamId) -> None:
    ra = sid(ids.resolve_start(ids.parse_position(str(a))))
    rb = sid(ids.resolve_start(ids.parse_position(str(b))))
    assert (ra < rb) == (a < b) and (ra == rb) == (a == b)


@PROPS
@given(stream_ids)
def test_next_and_previous_are_inverse(s: ids.StreamId) -> None:
    if s != ids.MAX_ID:
        assert s.next() > s and s.next().previous() == s
    if s != ids.MIN_ID:
        assert s.previous() < s and s.previous().next() == s


# ---- times ----

TIME_FORMS = {
    # strftime pattern, span in ms (a time's precision is what it covers as a range end)
    "date": ("%Y-%m-%d", 86_400_000),
    "minute": ("%Y-%m-%dT%H:%M", 60_000),
    "minute-space": ("%Y-%m-%d %H:%M", 60_000),
    "second": ("%Y-%m-%dT%H:%M:%S", 1000),
    "millisecond": ("%Y-%m-%dT%H:%M:%S.{ms}", 1),
}


def truncate(dt: datetime, span: int) -> datetime:
    ms = epoch_ms(dt)
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms - ms % span)


@PROPS
@given(
    instants,
    st.sampled_from(sorted(TIME_FORMS)),
    st.sampled_from(["", "Z", "z", "+00:00", "offset", "offset-compact"]),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_time_resolves_to_its_first_and_last_millisecond(
    dt: datetime, form: str, zone: str, offset_min: int
) -> None:
    pattern, span = TIME_FORMS[form]
    local = truncate(dt, span)
    text = local.strftime(pattern.replace("{ms}", f"{local.microsecond // 1000:03d}"))
    expected = epoch_ms(local)
    if zone.startswith("offset"):
        sign = "+" if offset_min >= 0 else "-"
        hh, mm = divmod(abs(offset_min), 60)
        text += f"{sign}{hh:02d}:{mm:02d}" if zone == "offset" else f"{sign}{hh:02d}{mm:02d}"
        expected -= offset_min * 60_000
    else:
        text += zone
    if expected < 0:
        try:
            ids.parse_position(text)
        except BadInput as exc:
            assert "before 1970" in str(exc)
            return
        raise AssertionError(f"{text!r} is before 1970 and was accepted")
    pos = ids.parse_position(text)
    assert (pos.kind, pos.ms, pos.span_ms) == ("time", expected, span), text
    assert ids.resolve_start(pos) == f"{expected}-0"
    assert ids.resolve_end(pos) == f"{expected + span - 1}-{MAX}"
    assert sid(ids.resolve_start(pos)) < sid(ids.resolve_end(pos))
    excl = ids.parse_position("(" + text)
    assert ids.resolve_start(excl) == f"{expected + span}-0"


@PROPS
@given(instants, instants)
def test_time_order_follows_clock_order(a: datetime, b: datetime) -> None:
    def start(dt: datetime) -> ids.StreamId:
        text = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
        return sid(ids.resolve_start(ids.parse_position(text)))

    assert (start(a) < start(b)) == (a < b)


@PROPS
@given(st.integers(min_value=0, max_value=253_402_300_799_999))
def test_format_time_parses_back(ms: int) -> None:
    text = ids.format_time(ms)
    pos = ids.parse_position(text)
    assert (pos.kind, pos.ms, pos.span_ms) == ("time", ms, 1)
    assert ids.id_ms(ids.resolve_start(pos)) == ms


# ---- durations ----


@PROPS
@given(durations, st.sampled_from(["", " ", "\t"]))
def test_duration_is_the_sum_of_its_parts(items: list[tuple[int, str]], pad: str) -> None:
    text = "".join(f"{n}{unit}" for n, unit in items)
    expected = sum(n * UNITS[unit] for n, unit in items)
    assert ids.parse_duration(pad + text + pad) == expected
    pos = ids.parse_position(text)
    assert (pos.kind, pos.duration_ms) == ("duration", expected)
    assert ids.resolve_start(pos, now) == f"{max(0, NOW - expected)}-0"
    assert ids.resolve_end(pos, now) == f"{max(0, NOW - expected)}-{MAX}"


def test_bare_zero_is_a_zero_duration() -> None:
    assert ids.parse_duration("0") == 0


@PROPS
@given(durations, durations)
def test_a_longer_duration_starts_earlier(
    a: list[tuple[int, str]], b: list[tuple[int, str]]
) -> None:
    def start(items: list[tuple[int, str]]) -> ids.StreamId:
        text = "".join(f"{n}{unit}" for n, unit in items)
        return sid(ids.resolve_start(ids.parse_position(text), now))

    da = sum(n * UNITS[u] for n, u in a)
    db = sum(n * UNITS[u] for n, u in b)
    if da < db:
        assert start(a) >= start(b)


@PROPS
@given(st.integers(min_value=0, max_value=10**12))
def test_format_duration_parses_back_within_its_precision(ms: int) -> None:
    back = ids.parse_duration(ids.format_duration(ms))
    if ms < 1000:
        precision = 1
    elif ms < 3_600_000:
        precision = 1000
    elif ms < 86_400_000:
        precision = 60_000
    else:
        precision = 3_600_000
    assert 0 <= ms - back < precision


def test_durations_need_the_server_clock_where_none_is_given() -> None:
    pos = ids.parse_position("90s")
    try:
        ids.resolve_start(pos)
    except BadInput as exc:
        assert "duration" in str(exc)
    else:
        raise AssertionError("a duration resolved without a clock")


# ---- everything else: BadInput with one line, or a position that resolves ----

grammar_chars = st.sampled_from(list("0123456789-+$():.TZz wmshd\t\n") + ["ms", "٣", "\x00"])
near_misses = st.lists(grammar_chars, max_size=30).map("".join)
# Known bug (see test_huge_numbers_are_bad_input): digit runs over 4300 long make int() raise
# ValueError. Kept below that here so the properties keep checking everything else.
digits = st.integers(min_value=20, max_value=4000).map(lambda n: "9" * n)
texts = st.one_of(
    st.text(max_size=40),
    near_misses,
    digits,
    digits.map(lambda t: t + "s"),
    digits.map(lambda t: "1-" + t),
)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: ids.parse_position(t),
        lambda t: ids.parse_position("1-" + t),
        lambda t: ids.parse_position(t + "s"),
        lambda t: ids.parse_duration(t + "ms"),
        lambda t: ids.StreamId.parse(t),
    ],
    ids=["ms-id", "seq", "duration-position", "duration", "StreamId"],
)
def test_huge_numbers_are_bad_input(call) -> None:  # type: ignore[no-untyped-def]
    try:
        call("9" * 5000)
    except BadInput as exc:
        check_bad_input(exc)


def check_bad_input(exc: BadInput) -> None:
    assert exc.exit_code == ExitCode.USAGE
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message


@PROPS
@given(texts, st.booleans(), st.booleans())
def test_any_text_parses_or_is_bad_input(
    text: str, allow_last: bool, allow_exclusive: bool
) -> None:
    try:
        pos = ids.parse_position(text, allow_last=allow_last, allow_exclusive=allow_exclusive)
    except BadInput as exc:
        check_bad_input(exc)
        return
    for resolve in (ids.resolve_start, ids.resolve_end, ids.resolve_exact):
        resolved = resolve(pos, now)
        assert resolved == "$" or valid_server_id(resolved), (text, resolved)


@PROPS
@given(texts)
def test_any_text_is_a_duration_or_bad_input(text: str) -> None:
    try:
        value = ids.parse_duration(text, what="--min-idle")
    except BadInput as exc:
        check_bad_input(exc)
        assert "--min-idle" in str(exc)
        return
    assert isinstance(value, int) and value >= 0


@PROPS
@given(st.one_of(st.text(max_size=40), near_misses, digits, st.binary(max_size=30)))
def test_stream_id_parse_is_an_id_or_bad_input(text: str | bytes) -> None:
    try:
        s = ids.StreamId.parse(text)
    except BadInput as exc:
        check_bad_input(exc)
        return
    except UnicodeDecodeError:
        assert isinstance(text, bytes)  # ids from the server are ASCII; bytes here are ours
        return
    assert 0 <= s.ms <= MAX and 0 <= s.seq <= MAX
