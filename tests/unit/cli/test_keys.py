"""`rearag keys new`: a key shown once and the settings entry that keeps only its hash, which
the server then accepts for that key and no other."""

from __future__ import annotations

import json
import tomllib

from fakes.cli import error_line
from fakes.cli import rearag_in_process as rearag

from rearag.agent.serving.access import KeyRing
from rearag.core.config import ServeConfig


def test_a_new_keys_entry_lets_the_server_grant_it(capsys):
    code, out, _ = rearag(
        capsys, "keys", "new", "acme", "-c", "docs", "--where", "tenant=acme", "--json"
    )
    made = json.loads(out)
    assert code == 0 and made["key"] not in made["toml"]  # the file holds the hash only
    entry = tomllib.loads(made["toml"])["serve"]
    keys = KeyRing.from_config(ServeConfig(**entry), ["docs", "notes"])
    grant = keys.grant(made["key"].encode())
    assert grant.name == "acme" and grant.visible(["docs", "notes"]) == ["docs"]
    assert grant.where.matches({"tenant": "acme"}) and not grant.where.matches({"tenant": "b"})
    assert keys.grant(b"rk-another") is None
    code, text, _ = rearag(capsys, "keys", "new", "acme")
    assert code == 0 and "shown once" in text and "[[serve.keys]]" in text


def test_a_bad_name_or_filter_is_one_line(capsys):
    code, _, err = rearag(capsys, "keys", "new", "two words")
    assert code == 1 and "use 1-40 letters, digits" in error_line(err)
    code, _, err = rearag(capsys, "keys", "new", "a", "--where", "{bad")
    assert code == 1 and "where" in error_line(err)
