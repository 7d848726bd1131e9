"""Windows already ranked, kept on disk: the same model shown the same rendered prompt with the
same generation settings answers the same (ranking is greedy), so evaluations that revisit
windows (`rearag eval rerank` again, `rearag train eval` scoring the base model on every run)
send them only once.

The key is a hash of the model's identity (its reference, API base, and for a local model the
time its files last changed, so a retrained policy is a new model), the generation settings
and the messages. Only answers without an error are kept.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from rearag.core.errors import ConfigError
from rearag.tools.llm import Completion

SCHEMA = "CREATE TABLE IF NOT EXISTS windows (key TEXT PRIMARY KEY, completion TEXT NOT NULL)"


def model_identity(backend: Any) -> str:
    """What names the weights behind `backend`: its reference and API base, or for a local
    model its folder, the newest modification time of its files and the type its weights run
    in (bfloat16 ranks a little differently from float32)."""
    parts = [str(getattr(backend, "model", "")), str(getattr(backend, "api_base", "") or "")]
    path = getattr(backend, "path", None)
    if path and Path(path).is_dir():
        files = [p for p in Path(path).iterdir() if p.is_file()]
        parts += [str(path), str(max((p.stat().st_mtime_ns for p in files), default=0))]
        lm = getattr(backend, "lm", None)
        if lm is not None and str(lm.dtype) != "torch.float32":
            parts.append(str(lm.dtype))
    return "|".join(parts)


class WindowCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Windows of one round run in worker threads: one connection, behind a lock.
        self.conn = sqlite3.connect(path, check_same_thread=False)
        try:
            self.conn.execute(SCHEMA)
        except sqlite3.DatabaseError:
            raise ConfigError(
                f"the window cache {path} is not a readable SQLite database: delete it (it "
                "only saves model calls) or turn the cache off"
            ) from None
        self.lock = threading.Lock()

    @staticmethod
    def key(identity: str, settings: dict[str, Any], messages: list[dict[str, str]]) -> str:
        payload = json.dumps([identity, settings, messages], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, key: str) -> Completion | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT completion FROM windows WHERE key = ?", (key,)
            ).fetchone()
        return Completion.model_validate_json(row[0]) if row else None

    def put(self, key: str, completion: Completion) -> None:
        if completion.error:
            return
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO windows VALUES (?, ?)", (key, completion.model_dump_json())
            )
