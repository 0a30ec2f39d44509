"""Filtering entries: `match` (FIELD=GLOB, repeatable) and `where` (a JMESPath expression).

One implementation for every command that filters (tail, range, export, replay, redrive).

The rules, the same in both filters:
- A field name that repeats in an entry (`status=new status=shipped`) counts with its **last**
  value: `match status=shipped` passes that entry and `match status=new` does not, exactly as
  `where "fields.status == 'shipped'"` does, whose `fields` object keeps the last value.
- Names and values are compared as text decoded from UTF-8 with `surrogateescape`: a byte that
  is not UTF-8 stands for itself (it never equals a different byte, as U+FFFD would), so a glob
  or literal given with the same bytes matches exactly, and `*` matches any value.
- `match FIELD=GLOB`: the entry has FIELD and its (last) value matches GLOB in full (fnmatch,
  case-sensitive: `*`, `?`, `[abc]`). Every match must hold.
- `where EXPR`: evaluated on the envelope `{"stream", "id", "time", "fields"}` with `fields` an
  object of text values; the entry passes when the result is truthy in JMESPath's sense (not
  null, false, "", [] or {}; 0 is true). With both filters, an entry must pass both. An entry
  on which the expression fails (a function given a value of the wrong type, as
  `to_number(fields.missing)` is not; `length(fields.missing)` is) does not pass. An unknown
  function or a wrong number of arguments is bad input, found before anything is read.

The `jmespath` package is imported only when an expression is given. The expression is parsed
once. The usual one (`fields.NAME`, `stream`, `id`, `time`, literals, comparisons, `&&`, `||`,
`!`, `to_number`) becomes one generated Python function per filter: no envelope is built, only
the fields named are decoded. Any other expression is turned into Python closures (the usual node
kinds) and jmespath's own interpreter (the rest) over an envelope holding only the keys the
expression can reach. The semantics are jmespath's either way (a property test holds both to
`jmespath.search`).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any

from streamctl.core.models import RawEntry
from streamctl.errors import BadInput
from streamctl.ids import format_time

MATCH_FORMS = "give FIELD=GLOB, e.g. status=shipped or order_id=42*"


class BadFilter(BadInput):
    """A filter argument that cannot be used; `argument` is 'match' or 'where'."""

    def __init__(self, argument: str, text: str, detail: str) -> None:
        self.argument = argument
        self.text = text
        self.detail = detail
        super().__init__(self.worded(""))

    def worded(self, prefix: str) -> str:
        """The message with the argument named as the caller names it (the CLI: prefix '--')."""
        return f"bad {prefix}{self.argument} {self.text!r}: {self.detail}"


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes | None:
    """The bytes that decode to `text`; None when none do: a lone surrogate, or the escapes of
    valid UTF-8 ('\udcc3\udca9' is not what b'\xc3\xa9' decodes to: that is 'é')."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None
    return raw if _text(raw) == text else None


# ---- match FIELD=GLOB ----


@dataclass(frozen=True)
class FieldMatch:
    """FIELD=GLOB: the entry has FIELD and its last value matches GLOB (fnmatch, case-sensitive).
    A glob without wildcards compares bytes (the same answer, faster)."""

    text: str
    name: bytes | None  # None: text no field name decodes to (it never matches)
    glob: str
    exact: bytes | None = field(compare=False)  # the glob's bytes when it has no wildcard
    pattern: re.Pattern[str] = field(compare=False)

    @classmethod
    def parse(cls, text: str) -> FieldMatch:
        name, sep, glob = text.partition("=")
        if not sep or not name:
            raise BadFilter("match", text, MATCH_FORMS)
        # no bytes decode to a glob _raw refuses: the regex (on text) then never matches
        exact = None if any(c in glob for c in "*?[") else _raw(glob)
        return cls(
            text,
            _raw(name),
            glob,
            exact,
            re.compile(translate(glob), re.DOTALL),
        )

    def value_matches(self, value: bytes) -> bool:
        if self.exact is not None:
            return value == self.exact
        return self.pattern.match(_text(value)) is not None

    def matches(self, flat: Sequence[bytes]) -> bool:
        name = self.name
        if name is None:
            return False
        for i in range(len(flat) - 2, -1, -2):  # from the end: the last value counts
            if flat[i] == name:
                return self.value_matches(flat[i + 1])
        return False


def parse_matches(texts: Sequence[str]) -> tuple[FieldMatch, ...]:
    return tuple(FieldMatch.parse(t) for t in texts)


# ---- where EXPR (JMESPath) ----

Evaluate = Callable[[Any], Any]
_ENVELOPE_KEYS = ("stream", "id", "time", "fields")
# node kinds that can see the whole envelope (not only by a key): all of it is then built
_WHOLE_VALUE_NODES = frozenset(
    {"current", "identity", "projection", "value_projection", "filter_projection", "flatten",
     "pipe", "expref"}
)  # fmt: skip


def _is_false(value: Any) -> bool:
    # JMESPath's falsy values; 0 is true
    return value is None or value is False or value == "" or value == [] or value == {}


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _to_number(value: Any) -> Any:
    # jmespath's to_number, called directly: the usual step before comparing a field's text
    kind = type(value)
    if kind is str:
        if "." in value or "e" in value or "E" in value:
            try:  # int() refuses these: straight to float (a raised error costs a microsecond)
                return float(value)
            except ValueError:
                return None
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    if kind is int or kind is float:
        return value
    return None


def _equals(x: Any, y: Any) -> bool:
    # JMESPath: true/false never equal 0/1 (Python says True == 1)
    if isinstance(x, bool) != isinstance(y, bool):
        return False
    return bool(x == y)


_ORDER = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}


class _Compiler:
    def __init__(self) -> None:
        from jmespath import functions, visitor

        self.interpreter = visitor.TreeInterpreter()
        self.functions = functions.Functions()

    def compile(self, node: dict[str, Any]) -> Evaluate:
        kind = node["type"]
        method = getattr(self, "_" + kind, None)
        if method is None:
            return self._interpreted(node)
        result: Evaluate = method(node)
        return result

    def _interpreted(self, node: dict[str, Any]) -> Evaluate:
        visit = self.interpreter.visit
        return lambda value: visit(node, value)

    def _field(self, node: dict[str, Any]) -> Evaluate:
        key = node["value"]
        return lambda value: value.get(key) if type(value) is dict else None

    def _subexpression(self, node: dict[str, Any]) -> Evaluate:
        children = node["children"]
        if all(c["type"] == "field" for c in children):
            keys = tuple(c["value"] for c in children)

            def path(value: Any) -> Any:
                for key in keys:
                    if type(value) is not dict:
                        return None
                    value = value.get(key)
                return value

            return path
        parts = [self.compile(c) for c in children]

        def chain(value: Any) -> Any:
            for part in parts:
                value = part(value)
            return value

        return chain

    def _literal(self, node: dict[str, Any]) -> Evaluate:
        constant = node["value"]
        return lambda value: constant

    def _comparator(self, node: dict[str, Any]) -> Evaluate:
        op = node["value"]
        left_node, right_node = node["children"]
        left, right = self.compile(left_node), self.compile(right_node)
        if op in ("eq", "ne"):
            want = op == "eq"
            if right_node["type"] == "literal" and isinstance(right_node["value"], str):
                constant = right_node["value"]  # a text never equals a non-text: plain ==
                return lambda value: (left(value) == constant) is want
            return lambda value: _equals(left(value), right(value)) is want
        compare = _ORDER[op]

        comparable = (int, float, str)

        def ordered(value: Any) -> Any:
            a, b = left(value), right(value)
            if type(a) not in comparable or type(b) not in comparable:
                return None
            return compare(a, b)  # text against a number: TypeError, as in jmespath

        return ordered

    def _and_expression(self, node: dict[str, Any]) -> Evaluate:
        left, right = (self.compile(c) for c in node["children"])

        def both(value: Any) -> Any:
            first = left(value)
            return first if _is_false(first) else right(value)

        return both

    def _or_expression(self, node: dict[str, Any]) -> Evaluate:
        left, right = (self.compile(c) for c in node["children"])

        def either(value: Any) -> Any:
            first = left(value)
            return right(value) if _is_false(first) else first

        return either

    def _not_expression(self, node: dict[str, Any]) -> Evaluate:
        inner = self.compile(node["children"][0])

        def negate(value: Any) -> bool:
            result = inner(value)
            if _is_number(result) and result == 0:
                return False  # !0 is false: 0 is not special in JMESPath
            return not result

        return negate

    def _function_expression(self, node: dict[str, Any]) -> Evaluate:
        from jmespath.functions import REVERSE_TYPES_MAP

        name = node["value"]
        if any(c["type"] == "expref" for c in node["children"]):
            return self._interpreted(node)  # sort_by & co: the interpreter passes expressions
        args = [self.compile(c) for c in node["children"]]
        call = self.functions.call_function
        if name == "to_number":
            (arg,) = args
            return lambda value: _to_number(arg(value))
        spec = self.functions.FUNCTION_TABLE[name]
        signature = spec["signature"]
        if (signature and signature[-1].get("variadic")) or any(
            "-" in t for a in signature for t in a["types"]
        ):
            return lambda value: call(name, [a(value) for a in args])
        # plain argument types (no variadic, no array-of-X): the type check inline, and
        # jmespath's own call (which raises its error) only for a value of the wrong type
        function, functions = spec["function"], self.functions
        allowed = [
            frozenset(p for t in a["types"] for p in REVERSE_TYPES_MAP[t]) if a["types"] else None
            for a in signature
        ]
        checks = list(zip(allowed, range(len(args)), strict=True))

        def direct(value: Any) -> Any:
            values = [a(value) for a in args]
            for ok, i in checks:
                if ok is not None and type(values[i]).__name__ not in ok:
                    return call(name, values)
            return function(functions, *values)

        return direct


def _nodes(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict) and "type" in n:
            out.append(n)
            stack.extend(n.get("children", []))
    return out


def _check_functions(text: str, nodes: list[dict[str, Any]]) -> None:
    """jmespath finds an unknown function or a wrong argument count only when it calls it (on
    the first entry, or never): here they are bad input before anything is read."""
    from jmespath.functions import Functions

    table: dict[str, Any] = Functions.FUNCTION_TABLE
    for node in nodes:
        if node["type"] != "function_expression":
            continue
        name, given = node["value"], len(node["children"])
        spec = table.get(name)
        if spec is None:
            known = ", ".join(sorted(table))
            raise BadFilter("where", text, f"unknown function {name}() (known: {known})")
        signature = spec["signature"]
        variadic = bool(signature) and signature[-1].get("variadic")
        if given < len(signature) or (not variadic and given > len(signature)):
            wanted = f"{len(signature)}{' or more' if variadic else ''}"
            raise BadFilter("where", text, f"{name}() takes {wanted} argument(s), {given} given")


def _field_names(nodes: list[dict[str, Any]]) -> frozenset[str] | None:
    """The field names the expression reads as `fields.NAME`; None when it may read `fields`
    as a whole (`keys(fields)`, `fields` alone, ...): then every field is decoded."""
    heads = [
        n
        for n in nodes
        if n["type"] == "subexpression"
        and len(n["children"]) >= 2
        and n["children"][0] == {"type": "field", "children": [], "value": "fields"}
        and n["children"][1]["type"] == "field"
    ]
    uses = sum(1 for n in nodes if n["type"] == "field" and n["value"] == "fields")
    if uses != len(heads):
        return None
    return frozenset(n["children"][1]["value"] for n in heads)


@dataclass(frozen=True)
class WhereExpression:
    text: str
    evaluate: Evaluate = field(compare=False)
    keys: frozenset[str] = field(compare=False)  # the envelope keys to build
    field_names: frozenset[str] | None = field(compare=False)  # None: all of them
    ast: dict[str, Any] = field(compare=False, default_factory=dict)

    @classmethod
    def compile(cls, text: str) -> WhereExpression:
        import jmespath
        from jmespath.exceptions import JMESPathError

        if not text.strip():
            raise BadFilter("where", text, "give a JMESPath expression, e.g. fields.status == 'ok'")
        try:
            parsed = jmespath.compile(text)
        except JMESPathError as exc:
            raise BadFilter("where", text, _syntax_error(exc, text)) from None
        ast = parsed.parsed
        nodes = _nodes(ast)
        _check_functions(text, nodes)
        if any(n["type"] in _WHOLE_VALUE_NODES for n in nodes):
            return cls(text, _Compiler().compile(ast), frozenset(_ENVELOPE_KEYS), None, ast)
        keys = frozenset(n["value"] for n in nodes if n["type"] == "field")
        return cls(
            text,
            _Compiler().compile(ast),
            keys & frozenset(_ENVELOPE_KEYS),
            _field_names(nodes),
            ast,
        )


def _syntax_error(exc: Exception, text: str) -> str:
    """'unexpected token '~' at position 2' from jmespath's multi-line messages."""
    from jmespath.exceptions import IncompleteExpressionError, LexerError

    position = getattr(exc, "lex_position", None)
    if isinstance(exc, IncompleteExpressionError):
        what = "incomplete expression"
        position = len(text)
    elif isinstance(exc, LexerError):
        what = str(getattr(exc, "message", "") or "cannot read it").rstrip(":")
    else:
        token = getattr(exc, "token_value", None)
        what = f"unexpected {token!r}" if token not in (None, "") else "syntax error"
    if position is None:
        return " ".join(str(exc).split())
    return f"{what} at position {position} (from 0)"


# ---- the usual expressions as one generated function ----


class _Unsupported(Exception):
    """A node the generator does not handle: the closures evaluate the expression instead."""


def _ordered(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    comparable = (int, float, str)
    if type(a) not in comparable or type(b) not in comparable:
        return None
    return op(a, b)  # text against a number: TypeError, as in jmespath (the entry fails)


_GENERATED_HELPERS: dict[str, Any] = {
    "_false": _is_false,
    "_eq": _equals,
    "_ordered": _ordered,
    "_to_number": _to_number,
    "_lt": operator.lt,
    "_gt": operator.gt,
    "_lte": operator.le,
    "_gte": operator.ge,
}


class _Generator:
    """Python source for expressions made of `fields.NAME`, `stream`, `id`, `time`, literals,
    comparisons, `&&`, `||`, `!` and `to_number()`: one function per entry, with no envelope
    and no closure calls. The semantics are jmespath's (see the helpers); anything else raises
    _Unsupported."""

    def __init__(self) -> None:
        self.constants: dict[str, Any] = {}
        self.names: dict[str, str] = {}  # field name -> local variable
        self.uses: set[str] = set()  # stream, id, time
        self.temps = 0

    def source(self, node: dict[str, Any]) -> str:
        body = self.expr(node)
        lines = ["def _passes(stream, eid, flat):", "    try:"]
        if self.names:
            # the names from the last one back: index k is the last occurrence, its value is
            # flat[-1 - 2k] (2.5x cheaper than building a dict of the fields)
            lines.append("        _names = flat[-2::-2]")
            for name, var in self.names.items():
                raw = _raw(name)
                if raw is None:
                    lines.append(f"        {var} = None")
                    continue
                key = self.constant(raw)
                lines.append(
                    f"        {var} = flat[-1 - 2 * _names.index({key})].decode("
                    f"'utf-8', 'surrogateescape') if {key} in _names else None"
                )
        if "id" in self.uses:
            lines.append("        _id = eid.decode()")
        if "time" in self.uses:
            lines.append("        _time = _time_of(eid)")
        lines.append(f"        _r = {body}")
        lines.append("    except (ValueError, TypeError):")
        lines.append("        return False")
        lines.append(
            "    return not (_r is None or _r is False or _r == '' or _r == [] or _r == {})"
        )
        return "\n".join(lines) + "\n"

    def constant(self, value: Any) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def expr(self, node: dict[str, Any]) -> str:
        kind = node["type"]
        children = node.get("children", [])
        if kind == "field":
            key = node["value"]
            if key in ("stream", "id", "time"):
                self.uses.add(key)
                return {"stream": "stream", "id": "_id", "time": "_time"}[key]
            if key == "fields":
                raise _Unsupported()  # the whole object
            return "None"
        if kind == "subexpression":
            if (
                len(children) == 2
                and children[0] == {"type": "field", "children": [], "value": "fields"}
                and children[1]["type"] == "field"
            ):
                name = children[1]["value"]
                if name not in self.names:
                    self.names[name] = f"_f{len(self.names)}"
                return self.names[name]
            raise _Unsupported()
        if kind == "literal":
            value = node["value"]
            if isinstance(value, bool) or value is None:
                return repr(value)
            return self.constant(value)
        if kind == "comparator":
            op = node["value"]
            left, right = (self.expr(c) for c in children)
            if op in ("eq", "ne"):
                if any(c["type"] == "literal" and isinstance(c["value"], str) for c in children):
                    return f"({left} {'==' if op == 'eq' else '!='} {right})"
                test = f"_eq({left}, {right})"
                return test if op == "eq" else f"(not {test})"
            return f"_ordered(_{op}, {left}, {right})"
        if kind in ("and_expression", "or_expression"):
            left, right = (self.expr(c) for c in children)
            t = self.temp()
            if kind == "and_expression":
                return f"({t} if _false({t} := {left}) else {right})"
            return f"({right} if _false({t} := {left}) else {t})"
        if kind == "not_expression":
            inner = self.expr(children[0])
            t = self.temp()
            return (
                f"(False if (type({t} := {inner}) is int or type({t}) is float) and {t} == 0 "
                f"else not {t})"
            )
        if kind == "function_expression" and node["value"] == "to_number" and len(children) == 1:
            return f"_to_number({self.expr(children[0])})"
        raise _Unsupported()


def _generated(ast: dict[str, Any], time_of: Callable[[bytes], str]) -> Callable[..., bool] | None:
    """The generated test for `ast`, or None when it uses a node the generator lacks."""
    generator = _Generator()
    try:
        source = generator.source(ast)
    except _Unsupported:
        return None
    namespace: dict[str, Any] = {**_GENERATED_HELPERS, **generator.constants, "_time_of": time_of}
    exec(compile(source, "<where>", "exec"), namespace)  # noqa: S102 - our own source, no input text
    test: Callable[..., bool] = namespace["_passes"]
    return test


# ---- the filter ----


class EntryFilter:
    """The compiled `match` and `where` arguments: `passes(stream, id, flat)` for one entry,
    `select(stream, entries)` for a batch (the order kept)."""

    def __init__(self, matches: tuple[FieldMatch, ...], where: WhereExpression | None) -> None:
        self.matches = matches
        self.where = where
        self._times: dict[bytes, str] = {}
        keys = where.keys if where is not None else frozenset()
        self._want_stream = "stream" in keys
        self._want_id = "id" in keys
        self._want_time = "time" in keys
        self._want_fields = "fields" in keys
        names = where.field_names if where is not None else None
        self._generated = _generated(where.ast, self._time) if where is not None else None
        self._field_names: list[tuple[str, bytes]] | None = (
            None if names is None else [(n, raw) for n in sorted(names) if (raw := _raw(n))]
        )

    def describe(self) -> str:
        """The filters as given, for messages: 'status=ship* where fields.x == `1`'."""
        parts = [m.text for m in self.matches]
        if self.where is not None:
            parts.append(f"where {self.where.text}")
        return " ".join(parts)

    def passes(self, stream: str, entry_id: bytes, flat: Sequence[bytes]) -> bool:
        for m in self.matches:
            if not m.matches(flat):
                return False
        if self.where is None:
            return True
        if self._generated is not None:
            return self._generated(stream, entry_id, flat)
        try:
            result = self.where.evaluate(self.envelope(stream, entry_id, flat))
        except (ValueError, TypeError):
            # a function given a value of the wrong type (jmespath's JMESPathTypeError is a
            # ValueError), text ordered against a number: this entry does not pass
            return False
        return not _is_false(result)

    def select(self, stream: str, entries: list[RawEntry]) -> list[RawEntry]:
        test = self._generated if not self.matches else None
        if test is not None:  # --where alone: no method call per entry
            return [e for e in entries if test(stream, e[0], e[1])]
        passes = self.passes
        return [e for e in entries if passes(stream, e[0], e[1])]

    def envelope(self, stream: str, entry_id: bytes, flat: Sequence[bytes]) -> dict[str, Any]:
        """The entry as `where` sees it (only the keys the expression can reach)."""
        env: dict[str, Any] = {}
        if self._want_stream:
            env["stream"] = stream
        if self._want_id:
            env["id"] = entry_id.decode()
        if self._want_time:
            env["time"] = self._time(entry_id)
        if self._want_fields:
            pairs = iter(flat)
            by_name = dict(zip(pairs, pairs, strict=False))  # a repeated name: the last stays
            names = self._field_names
            if names is None:
                env["fields"] = {
                    k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
                    for k, v in by_name.items()
                }
            else:
                fields = {}
                for text, raw in names:
                    value = by_name.get(raw)
                    if value is not None:
                        fields[text] = value.decode("utf-8", "surrogateescape")
                env["fields"] = fields
        return env

    def _time(self, entry_id: bytes) -> str:
        ms = entry_id.split(b"-", 1)[0]
        text = self._times.get(ms)
        if text is None:
            if len(self._times) > 10_000:
                self._times.clear()
            text = self._times[ms] = format_time(int(ms))
        return text


def compile_filter(matches: Sequence[str] = (), where: str | None = None) -> EntryFilter | None:
    """The filter for `match` texts (FIELD=GLOB) and a `where` expression; None when neither is
    given (callers then skip filtering). Raises BadFilter (a BadInput, exit 2) naming the
    argument, and for `where` the position of a syntax error."""
    parsed = parse_matches(matches)
    expression = WhereExpression.compile(where) if where is not None else None
    if not parsed and expression is None:
        return None
    return EntryFilter(parsed, expression)
