"""Who may see what on a server: its API keys, each granted some collections and, optionally,
a filter every one of its searches is held to.

A key is never kept in the clear: the settings hold its SHA-256 or the name of the environment
variable that holds it, hashed when the server starts. A request's token is hashed and compared
with every key's hash in constant time. A collection a key may not see is answered exactly as
one that does not exist (404 `model_not_found`, listing only what the key sees), so a key learns
nothing of the others' collections; its conversation threads are its own too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from rearag.agent.serving.registry import AgentRegistry, not_served
from rearag.core import thread_ids
from rearag.core.config import ApiKey, ServeConfig
from rearag.core.errors import ConfigError
from rearag.core.filters import Where

EVERY = "*"
THREAD_PREFIX = "key:"


@dataclass(frozen=True)
class Grant:
    """What one request may see: `collections` in the order served (None: every one), its
    key's fixed filter, and its key's name (None: the server is open, or its single
    `serve.api_key`)."""

    name: str | None = None
    collections: tuple[str, ...] | None = None
    where: Where | None = None

    def visible(self, served: list[str]) -> list[str]:
        return [c for c in served if self.collections is None or c in self.collections]

    def collection(self, requested: str | None, agents: AgentRegistry) -> str:
        """The collection a request names (None: the server's default, else the first this
        grant sees); ModelNotServed, worded as for a collection that is not served and listing
        only what this grant sees, for one it may not see."""
        visible = self.visible(agents.served or [])
        if requested is None:
            return agents.default if agents.default in visible else visible[0]
        if requested not in visible:
            raise not_served(requested, visible)
        return requested

    def filter(self, requested: Where | None) -> Where | None:
        """The request's own filter and this grant's, both held."""
        if self.where is None or requested is None:
            return self.where or requested
        return Where.parse({"$and": [self.where.spec, requested.spec]})

    def thread(self, thread: str | None) -> str | None:
        """The conversation thread a request's id names: per key, so two keys naming the same
        thread hold two conversations (within the thread id limit: a long id is hashed). The
        server's own `serve.api_key` (no name) names threads as they are, any key's too."""
        if not thread or not self.name:
            return thread
        named = f"{THREAD_PREFIX}{self.name}/{thread}"
        if len(named) > thread_ids.MAX_CHARS:
            named = f"{THREAD_PREFIX}{self.name}/#{hashlib.sha256(thread.encode()).hexdigest()}"
        return named


OPEN = Grant()


class KeyRing:
    """The server's keys, as hashes. `grant(token)` is the token's Grant or None."""

    def __init__(self, hashed: list[tuple[bytes, Grant]]) -> None:
        self._hashed = hashed

    def __bool__(self) -> bool:
        return bool(self._hashed)

    @classmethod
    def from_config(cls, cfg: ServeConfig, served: list[str]) -> KeyRing:
        """Every key of `serve.api_key`, `serve.keys` and `serve.keys_file`; ConfigError, before
        the server listens, for a key whose variable is unset, that sees no served collection,
        or that two names share."""
        hashed: list[tuple[bytes, Grant]] = []
        if cfg.api_key:
            hashed.append((digest(cfg.api_key), OPEN))
        for key in [*cfg.keys, *read_keys_file(cfg.keys_file)]:
            grant = _grant(key, served)
            hashed.append((_stored_digest(key), grant))
        names = [g.name for _, g in hashed if g.name]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ConfigError(f"serve.keys: the name {dupes[0]!r} is given to two keys")
        digests = [d for d, _ in hashed]
        if len(set(digests)) < len(digests):
            raise ConfigError("serve.keys: two keys are the same key: give each its own")
        return cls(hashed)

    def describe(self) -> str:
        """For the start log: whether a key is required, and whose (names, never keys)."""
        if not self._hashed:
            return "no API key"
        names = [g.name or "serve.api_key" for _, g in self._hashed]
        return f"API key required ({len(names)}: {', '.join(names)})"

    def grant(self, token: bytes) -> Grant | None:
        # Every stored hash is compared, whichever matches: the time taken says nothing of
        # which key, or how much of one, was right.
        given = hashlib.sha256(token).digest()
        found = None
        for stored, grant in self._hashed:
            if hmac.compare_digest(given, stored):
                found = grant
        return found


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    """A fresh key: 32 random bytes, URL-safe."""
    return "rk-" + secrets.token_urlsafe(32)


class _KeysFile(BaseModel):
    model_config = {"extra": "forbid"}
    keys: list[ApiKey] = []


def read_keys_file(path: Path | None) -> list[ApiKey]:
    """The `[[keys]]` of `serve.keys_file` (none without one); ConfigError naming the file."""
    if path is None:
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return _KeysFile.model_validate(data).keys
    except OSError as exc:
        raise ConfigError(f"serve.keys_file {path}: cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"serve.keys_file {path}: not TOML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"serve.keys_file {path}: {where}: {first['msg']}") from None


def _stored_digest(key: ApiKey) -> bytes:
    if key.sha256 is not None:
        return bytes.fromhex(key.sha256)
    value = os.environ.get(key.env or "", "")
    if not value.strip():
        raise ConfigError(
            f"serve.keys: key {key.name!r} is read from ${key.env}, which is not set: set it"
        )
    return digest(value.strip())


def _grant(key: ApiKey, served: list[str]) -> Grant:
    collections = None if EVERY in key.collections else tuple(key.collections)
    grant = Grant(key.name, collections, Where.parse(key.where))
    if unknown := [c for c in collections or () if c not in served]:
        raise ConfigError(
            f"serve.keys: key {key.name!r} names collection {unknown[0]!r}, which this server "
            f"does not serve (serving: {', '.join(served)})"
        )
    return grant
