"""The window cache: a window is sent once, a failed one is not kept, and a damaged cache file
is one clear error. The reranker talks to the scripted server of the `scripted` fixture."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fakes.rankers import Overlap, api_reranker

DOCS = [f"passage {i} about lava and magma number {i}" for i in range(60)]


def test_the_window_cache_sends_a_window_once(scripted):
    script, base = scripted
    script.default = overlap = Overlap(0.0)
    first = api_reranker(base, strategy="partition", cache=True).rank("lava?", DOCS)
    sent = overlap.calls
    assert sent == len(first.windows) and not any(w.cached for w in first.windows)
    again = api_reranker(base, strategy="partition", cache=True).rank("lava?", DOCS)
    assert overlap.calls == sent  # nothing sent: every window came from the cache
    assert all(w.cached for w in again.windows)
    assert [r.doc_id for r in again.results] == [r.doc_id for r in first.results]
    # Another generation budget is another window; without the cache everything is sent.
    api_reranker(base, strategy="partition", cache=True, max_new_tokens=7).rank("lava?", DOCS)
    assert overlap.calls == 2 * sent
    api_reranker(base, strategy="partition").rank("lava?", DOCS)
    assert overlap.calls == 3 * sent
    # A failed window is not kept.
    script.status(500)
    failed = api_reranker(base, strategy="window", cache=True).rank("magma?", DOCS[:5])
    assert failed.windows[0].status == "backend_error"
    retried = api_reranker(base, strategy="window", cache=True).rank("magma?", DOCS[:5])
    assert retried.windows[0].status != "backend_error" and not retried.windows[0].cached


def test_a_broken_window_cache_is_one_clear_error(scripted, home):
    from rearag.core.errors import ConfigError

    _, base = scripted
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "windows.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match="not a readable SQLite database: delete it"):
        api_reranker(base, cache=True)


def test_windows_ranked_in_bfloat16_are_not_taken_for_float32_ones(tmp_path):
    import torch

    from rearag.policies.window_cache import model_identity

    (tmp_path / "config.json").write_text("{}")

    def backend(dtype):
        return SimpleNamespace(model="local:m", path=str(tmp_path), lm=SimpleNamespace(dtype=dtype))

    fp32, bf16 = model_identity(backend(torch.float32)), model_identity(backend(torch.bfloat16))
    assert fp32 != bf16 and "bfloat16" in bf16
    assert fp32 == model_identity(SimpleNamespace(model="local:m", path=str(tmp_path)))
