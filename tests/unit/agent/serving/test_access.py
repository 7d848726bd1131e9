"""API keys and what each sees (`agent/serving/access.py`), checked without a server; the
served keys with real clients: tests/integration/serving/test_keys.py."""

from __future__ import annotations

import hashlib

import pytest

from rearag.agent.serving.access import OPEN, Grant, KeyRing, digest, new_key
from rearag.agent.serving.registry import AgentRegistry
from rearag.core import thread_ids
from rearag.core.config import ServeConfig
from rearag.core.errors import ConfigError, ModelNotServed
from rearag.core.filters import Where

SERVED = ["docs", "notes", "hr"]


def ring(monkeypatch=None, **serve) -> KeyRing:
    return KeyRing.from_config(ServeConfig(**serve), SERVED)


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_a_token_gets_its_own_keys_grant_and_nothing_else(monkeypatch):
    monkeypatch.setenv("ACME_KEY", "acme-secret")
    keys = ring(
        api_key="admin-secret",
        keys=[
            {"name": "acme", "env": "ACME_KEY", "collections": ["docs"], "where": {"t": "a"}},
            {"name": "globex", "sha256": sha("globex-secret"), "collections": ["notes", "hr"]},
        ],
    )
    assert keys.grant(b"admin-secret") is OPEN
    acme, globex = keys.grant(b"acme-secret"), keys.grant(b"globex-secret")
    assert acme.name == "acme" and acme.visible(SERVED) == ["docs"]
    assert acme.where.spec == {"t": "a"}
    assert globex.visible(SERVED) == ["notes", "hr"] and globex.where is None
    for wrong in (b"", b"acme", b"acme-secret ", sha("acme-secret").encode()):
        assert keys.grant(wrong) is None
    assert keys.describe() == "API key required (3: serve.api_key, acme, globex)"
    assert not KeyRing.from_config(ServeConfig(), SERVED)  # no keys: an open server
    assert KeyRing.from_config(ServeConfig(), SERVED).describe() == "no API key"


def test_a_collection_it_may_not_see_is_refused_as_one_not_served(settings):
    agents = AgentRegistry(lambda: settings, served=SERVED)
    grant = Grant("acme", ("notes", "hr"))
    assert grant.collection("hr", agents) == "hr"
    assert grant.collection(None, agents) == "notes"  # the default, docs, is not its own
    assert OPEN.collection(None, agents) == "docs"
    hidden = pytest.raises(ModelNotServed, match=r"^model 'docs' is not served here: use one of")
    with hidden as seen:
        grant.collection("docs", agents)
    with pytest.raises(ModelNotServed) as missing:
        grant.collection("nope", agents)
    # Word for word the same answer, and the list names only what the key sees.
    assert str(seen.value).replace("docs", "X") == str(missing.value).replace("nope", "X")
    assert str(seen.value).endswith("use one of notes, hr")


def test_the_keys_filter_holds_with_the_requests_own():
    grant = Grant("acme", None, Where.parse({"tenant": "acme"}))
    assert grant.filter(None).spec == {"tenant": "acme"}
    both = grant.filter(Where.parse({"year": {"$gte": 2020}}))
    assert both.matches({"tenant": "acme", "year": 2021})
    assert not both.matches({"tenant": "globex", "year": 2021})
    assert not both.matches({"tenant": "acme", "year": 2019})
    # A request cannot widen it: asking for the other tenant finds nothing.
    assert not grant.filter(Where.parse({"tenant": "globex"})).matches({"tenant": "acme"})
    assert OPEN.filter(None) is None


def test_threads_are_per_key():
    assert Grant("acme").thread("t1") == "key:acme/t1" != Grant("globex").thread("t1")
    assert OPEN.thread("t1") == "t1" and Grant("acme").thread(None) is None
    # A key's own thread inside another's name stays its own.
    assert Grant("acme").thread("key:globex/t1") == "key:acme/key:globex/t1"
    # The longest id a client may send still names one thread within the limit, per key.
    longest = "t" * thread_ids.MAX_CHARS
    named = Grant("acme").thread(longest)
    assert len(named) <= thread_ids.MAX_CHARS and named == Grant("acme").thread(longest)
    assert named != Grant("acme").thread(longest[:-1] + "u") != Grant("globex").thread(longest)


def test_keys_file_and_settings_keys_are_both_read(tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text(f'[[keys]]\nname = "globex"\nsha256 = "{sha("g")}"\ncollections = ["hr"]\n')
    keys = ring(keys=[{"name": "acme", "sha256": sha("a")}], keys_file=path)
    assert keys.grant(b"a").visible(SERVED) == SERVED
    assert keys.grant(b"g").visible(SERVED) == ["hr"]


@pytest.mark.parametrize(
    ("serve", "message"),
    [
        ({"keys": [{"name": "a", "env": "UNSET_KEY_VAR"}]}, r"\$UNSET_KEY_VAR, which is not set"),
        (
            {"keys": [{"name": "a", "sha256": "0" * 64, "collections": ["docs", "secret"]}]},
            r"names collection 'secret', which this server does not serve \(serving: docs",
        ),
        (
            {"keys": [{"name": "a", "sha256": "0" * 64}, {"name": "a", "sha256": "1" * 64}]},
            "the name 'a' is given to two keys",
        ),
        (
            {"api_key": "k", "keys": [{"name": "a", "sha256": digest("k").hex()}]},
            "two keys are the same key",
        ),
    ],
)
def test_a_key_that_cannot_work_stops_the_server_with_one_line(monkeypatch, serve, message):
    monkeypatch.delenv("UNSET_KEY_VAR", raising=False)
    with pytest.raises(ConfigError, match=message):
        ring(**serve)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[keys]]\nname = 'a'\n", "keys.0: Value error, key 'a': give one of sha256 or env"),
        ("[[keys]\n", "not TOML"),
        ("[[keys]]\nname = 'a'\nsha256 = 'zz'\n", "keys.0.sha256: String should match pattern"),
        ("[[keys]]\nname='a'\nenv='E'\nwhere={'$x'=1}\n", "unknown operator '\\$x'"),
        ("[[keys]]\nname='a'\nenv='E'\ncollections=['x', '*']\n", "or names, not both"),
        ("[[keys]]\nname='a'\nenv='E'\nwhere={}\n", "holds nothing: leave it out"),
    ],
)
def test_a_bad_keys_file_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "keys.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"serve.keys_file {path}: .*{message}"):
        ring(keys_file=path)
    with pytest.raises(ConfigError, match="cannot be read"):
        ring(keys_file=tmp_path / "missing.toml")


def test_new_keys_are_random_and_long():
    a, b = new_key(), new_key()
    assert a != b and a.startswith("rk-") and len(a) > 40
