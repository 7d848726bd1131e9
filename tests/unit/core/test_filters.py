"""The metadata filter language (rearag.core.filters), checked by hand on small metadata."""

from __future__ import annotations

import pytest

from rearag.core.errors import InvalidInputError
from rearag.core.filters import Where, coerce

GUIDE = {"path": "docs/guide/intro.md", "tenant": "acme", "year": 2021, "public": True}
NEWS = {"path": "docs/news/2019.md", "tenant": "beta", "year": 2019, "page": 3}
BARE = {"path": "notes.txt"}
ALL = {"guide": GUIDE, "news": NEWS, "bare": BARE}


def kept(spec) -> set[str]:
    where = Where.parse(spec)
    assert where is not None
    return {name for name, meta in ALL.items() if where.matches(meta)}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"tenant": "acme"}, {"guide"}),
        ({"tenant": {"$ne": "acme"}}, {"news", "bare"}),  # a missing key is "not acme"
        ({"year": {"$gte": 2020}}, {"guide"}),
        ({"year": {"$gt": 2018, "$lt": 2021}}, {"news"}),
        ({"tenant": {"$in": ["acme", "beta"]}}, {"guide", "news"}),
        ({"tenant": {"$nin": ["acme"]}}, {"news", "bare"}),
        ({"path": {"$prefix": "docs/"}}, {"guide", "news"}),
        ({"path": {"$glob": "docs/*/intro.md"}}, {"guide"}),
        ({"path": {"$glob": "*.md"}}, {"guide", "news"}),  # `*` crosses "/"
        ({"public": True}, {"guide"}),
        ({"year": 1}, set()),
        ({"$or": [{"tenant": "beta"}, {"public": True}]}, {"guide", "news"}),
        ({"$and": [{"path": {"$prefix": "docs/"}}, {"year": {"$lt": 2020}}]}, {"news"}),
        ({"tenant": "acme", "year": 2019}, set()),  # keys of one object all hold
        ({"year": {"$gte": "2020"}}, set()),  # a text bound never orders numbers
    ],
)
def test_each_operator(spec, expected):
    assert kept(spec) == expected


def test_no_filter_is_none():
    assert Where.parse(None) is None and Where.parse({}) is None and Where.from_cli([]) is None


def test_the_cli_form_reads_as_the_json_form():
    def cli(*conditions: str) -> set[str]:
        where = Where.from_cli(list(conditions))
        return {name for name, meta in ALL.items() if where.matches(meta)}

    assert cli("tenant=acme") == {"guide"}
    assert cli("year>=2020") == {"guide"} and cli("year<2020") == {"news"}
    assert cli("tenant!=acme") == {"news", "bare"}
    assert cli("tenant=acme|beta") == {"guide", "news"}
    assert cli("path=docs/*/2019.md") == {"news"}
    assert cli("path=docs/*", "year>2020") == {"guide"}  # each --where adds a condition
    assert cli('{"page": {"$lte": 3}}') == {"news"}
    assert (coerce("2020"), coerce("1.5"), coerce("true"), coerce("v1.2")) == (
        2020,
        1.5,
        True,
        "v1.2",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ('{"tenant": ', "where: not a JSON object"),
        ([1, 2], "where: expected a non-empty object"),
        ({"year": {"$between": [1, 2]}}, "where.year: unknown operator '$between'"),
        ({"$not": {"a": 1}}, "where: unknown operator '$not'"),
        ({"tenant": {"$in": []}}, "where.tenant.$in: expected a non-empty list"),
        ({"tenant": {"$in": [["x"]]}}, "where.tenant.$in[0]: expected a text, number or boolean"),
        ({"$or": []}, "where.$or: expected a non-empty list of filters"),
        ({"$or": [{"a": {"$gt": None}}]}, "where.$or[0].a.$gt: expected a number or text"),
        ({"path": {"$glob": ""}}, "where.path.$glob: expected a non-empty text"),
        ({"tenant": {}}, "where.tenant: expected at least one operator"),
    ],
)
def test_a_malformed_filter_is_one_error_naming_where(spec, message):
    with pytest.raises(InvalidInputError) as raised:
        Where.parse(spec)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


def test_a_cli_condition_that_cannot_be_read():
    with pytest.raises(InvalidInputError, match="where: cannot read 'tenant'"):
        Where.from_cli(["tenant"])


def test_a_filter_nested_beyond_reason_is_one_error():
    deep: dict = {"a": 1}
    for _ in range(3000):
        deep = {"$and": [deep]}
    text = '{"$and": [' * 5000 + '{"a": 1}' + "]}" * 5000
    for spec in (deep, text):
        with pytest.raises(InvalidInputError, match="where: nested too deeply"):
            Where.parse(spec)
    with pytest.raises(InvalidInputError, match="where: nested too deeply"):
        Where.from_cli([text])
