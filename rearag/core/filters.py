"""Metadata filters: which chunks a search may return. One language for every entry point
(the Python API, `--where`, HTTP and MCP), close to Chroma's `where`:

    {"tenant": "acme"}                                   equality
    {"year": {"$gte": 2020, "$lt": 2025}}                 ranges: $gt $gte $lt $lte, $ne
    {"lang": {"$in": ["en", "de"]}}                       $in, $nin
    {"path": {"$prefix": "docs/guide/"}}                  a path (or any text) by its start
    {"path": {"$glob": "docs/*/intro.md"}}                shell-style pattern (`*` crosses "/")
    {"$or": [{"tenant": "acme"}, {"public": true}]}       $and, $or of filters

Several keys in one object must all hold. A chunk without the key matches only `$ne` and
`$nin`. The CLI also takes `key=value`, `key!=value`, `key>=2020` (and `>`, `<`, `<=`),
`key=a|b` (any of) and `path=docs/*.md` (a glob when the value has `*`, `?` or `[`); each
`--where` adds one condition. A filter is evaluated by rearag on every chunk's metadata, so
BM25, dense and hybrid search are restricted alike."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from rearag.core.errors import InvalidFilter

Scalar = str | int | float | bool
Metadata = Mapping[str, Any]
Match = Callable[[Metadata], bool]

# How an API field or tool argument describes a filter (HTTP's OpenAPI, MCP's schema).
WHERE_HELP = (
    'only chunks whose metadata matches, e.g. {"tenant": "acme", "year": {"$gte": 2020}, '
    '"path": {"$glob": "docs/*"}}: equality, $ne $gt $gte $lt $lte $in $nin $prefix $glob, '
    "$and and $or of filters"
)

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}
_MISSING = object()


class Where:
    """A parsed filter: `Where.parse(spec)` checks it once, `matches(metadata)` applies it."""

    def __init__(self, spec: dict[str, Any], match: Match) -> None:
        self.spec = spec  # as given, for messages and for passing on
        self.matches = match

    @classmethod
    def parse(cls, spec: Any) -> Where | None:
        """None for no filter (None or {}); InvalidInputError naming `where` for a bad one."""
        if spec is None or spec == {}:
            return None
        try:
            if isinstance(spec, str):
                spec = _json(spec)
            return cls(spec, _object(spec, "where"))
        except RecursionError:  # a hostile depth of $and/$or, or of JSON
            raise InvalidFilter("where: nested too deeply; write a flatter filter") from None

    @classmethod
    def from_cli(cls, conditions: list[str]) -> Where | None:
        """`--where` values: each `key=value` (etc.) or a JSON object; all must hold."""
        try:
            parts = [_json(c) if c.lstrip().startswith("{") else _condition(c) for c in conditions]
        except RecursionError:
            raise InvalidFilter("where: nested too deeply; write a flatter filter") from None
        return cls.parse(parts[0] if len(parts) == 1 else {"$and": parts}) if parts else None


def key_problem(key: str) -> str | None:
    """Why `key` cannot name a chunk's metadata field, or None: Chroma refuses an empty name
    and names starting with "$", "#" or "chroma:"."""
    if not key:
        return "an empty name"
    if key.startswith(("$", "#", "chroma:")):
        return 'a name starting with "$", "#" or "chroma:" (Chroma keeps those)'
    return None


def coerce(value: str) -> Scalar:
    """A metadata value typed as written: `2020` is a number, `true` a boolean (`--meta` and
    `--where` read values the same way, so they compare)."""
    if re.fullmatch(r"[-+]?\d+", value):
        return int(value)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", value):
        return float(value)
    return {"true": True, "false": False}.get(value.lower(), value)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFilter(f"where: not a JSON object ({exc.msg} at {exc.pos})") from None


_CLI = re.compile(r"^\s*([\w.:-]+)\s*(!=|>=|<=|=|>|<)\s*(.*?)\s*$")


def _condition(text: str) -> dict[str, Any]:
    found = _CLI.match(text)
    if not found:
        raise InvalidFilter(
            f"where: cannot read {text[:80]!r}: write key=value, key!=value, key>=number, "
            "key=a|b or a JSON object"
        )
    key, op, raw = found.groups()
    if op == "=" and "|" in raw:
        return {key: {"$in": [coerce(v) for v in raw.split("|")]}}
    if op == "=" and re.search(r"[*?\[]", raw):
        return {key: {"$glob": raw}}
    value = coerce(raw)
    ops = {"=": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
    return {key: {ops[op]: value}}


def _object(spec: Any, where: str) -> Match:
    if not isinstance(spec, dict) or not spec:
        raise InvalidFilter(f"{where}: expected a non-empty object, got {_shown(spec)}")
    tests: list[Match] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InvalidFilter(f"{where}.{key}: expected a non-empty list of filters")
            subs = [_object(v, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
            combine = all if key == "$and" else any
            tests.append(lambda m, subs=subs, combine=combine: combine(s(m) for s in subs))
        elif key.startswith("$"):
            raise InvalidFilter(f"{where}: unknown operator {key!r} (use $and, $or)")
        elif isinstance(value, dict):
            tests.append(_operators(key, value, f"{where}.{key}"))
        else:
            want = _scalar(value, f"{where}.{key}")
            tests.append(lambda m, key=key, want=want: _equal(m.get(key, _MISSING), want))
    return lambda m: all(t(m) for t in tests)


def _operators(key: str, ops: dict[str, Any], where: str) -> Match:
    if not ops:
        raise InvalidFilter(f"{where}: expected at least one operator")
    tests: list[Callable[[Any], bool]] = []
    for op, value in ops.items():
        at = f"{where}.{op}"
        if op in ("$eq", "$ne"):
            want = _scalar(value, at)
            same = op == "$eq"
            tests.append(lambda v, want=want, same=same: _equal(v, want) == same)
        elif op in _COMPARE:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise InvalidFilter(f"{at}: expected a number or text, got {_shown(value)}")
            compare = _COMPARE[op]
            tests.append(lambda v, b=value, compare=compare: _ordered(v, b, compare))
        elif op in ("$in", "$nin"):
            if not isinstance(value, list) or not value:
                raise InvalidFilter(f"{at}: expected a non-empty list")
            wanted = [_scalar(w, f"{at}[{i}]") for i, w in enumerate(value)]
            inside = op == "$in"
            tests.append(
                lambda v, wanted=wanted, inside=inside: any(_equal(v, w) for w in wanted) == inside
            )
        elif op in ("$prefix", "$glob"):
            if not isinstance(value, str) or not value:
                raise InvalidFilter(f"{at}: expected a non-empty text")
            if op == "$prefix":
                tests.append(lambda v, p=value: isinstance(v, str) and v.startswith(p))
            else:
                pattern = re.compile(fnmatch.translate(value))
                tests.append(lambda v, p=pattern: isinstance(v, str) and p.match(v) is not None)
        else:
            raise InvalidFilter(
                f"{where}: unknown operator {op!r} (use $eq $ne $gt $gte $lt $lte $in $nin "
                "$prefix $glob)"
            )
    return lambda m: all(t(m.get(key, _MISSING)) for t in tests)


def _scalar(value: Any, where: str) -> Scalar:
    if not isinstance(value, str | int | float | bool):
        raise InvalidFilter(f"{where}: expected a text, number or boolean, got {_shown(value)}")
    return value


def _equal(value: Any, want: Scalar) -> bool:
    if value is _MISSING:
        return False
    if isinstance(value, bool) or isinstance(want, bool):
        return value is want
    return value == want


def _ordered(value: Any, bound: Any, compare: Callable[[Any, Any], bool]) -> bool:
    """Numbers with numbers, texts with texts; anything else (a missing key) does not match."""
    numbers = (int, float)
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers) and isinstance(bound, numbers):
        return compare(value, bound)
    if isinstance(value, str) and isinstance(bound, str):
        return compare(value, bound)
    return False


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:60] + "…"
