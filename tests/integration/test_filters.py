"""Metadata and filters (issue 27) through every entry point: `ingest --meta` and a JSONL
corpus's own metadata; `Retriever.search(where=)` and `RAGAgent.ask(where=)`; `rearag search /
ask --where`; `/v1/search` and `/v1/chat/completions` with `where`; a malformed filter as one
error naming `where`. A real embedded Chroma and the bundled embedder; the agent's LLM nodes on
the scripted server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fakes.cli import assert_one_line_error, rearag
from fakes.openai_server import Script, serve
from fakes.scripted_agent import GOOD, router
from fakes.serving import KEY, assert_error, free_port, post, scripted_env, start_server

from rearag.agent.rag import RAGAgent
from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

pytestmark = pytest.mark.slow  # the real embedder, and the CLI and a server in subprocesses

MODES = ("bm25", "dense", "hybrid")
# Every document speaks of lava: only the filter tells them apart.
DOCS = {
    "acme/guide/lava.md": "# Lava guide\n\nLava flows from the volcano vent as molten rock.\n",
    "acme/news/lava.md": "# Lava news\n\nLava reached the sea this year, molten and hot.\n",
    "beta/lava.md": "# Lava for beta\n\nLava lava lava: molten rock, lava everywhere, lava.\n",
}
RECORDS = [
    {"_id": "r1", "title": "Lava 2019", "text": "Lava cooled.", "metadata": {"year": 2019}},
    {"_id": "r2", "title": "Lava 2023", "text": "Lava rose.", "metadata": {"year": 2023}},
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for name, text in DOCS.items():
        path = tmp_path / "corpus" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "records.jsonl").write_text("\n".join(json.dumps(r) for r in RECORDS))
    return tmp_path


def titles(hits) -> set[str]:
    return {h.metadata["title"] for h in hits}


def test_filters_restrict_bm25_dense_and_hybrid_alike(settings, corpus: Path):
    store = Store(settings, "filtered", create=True)
    ingest([corpus / "corpus" / "acme"], store, progress=False, metadata={"tenant": "acme"})
    ingest([corpus / "corpus" / "beta"], store, progress=False, metadata={"tenant": "beta"})
    ingest([corpus / "records.jsonl"], store, progress=False)
    retriever = Retriever(settings=settings, store=store)
    # Beta's page says "lava" most: unfiltered, BM25 puts it first; filtered, it never shows.
    assert retriever.search("lava", k=1, mode="bm25")[0].metadata["tenant"] == "beta"
    for mode in MODES:
        acme = retriever.search("lava", k=10, mode=mode, where={"tenant": "acme"})
        assert titles(acme) == {"Lava guide", "Lava news"}, mode
        guide = retriever.search("lava", k=10, mode=mode, where={"path": {"$glob": "acme/guide/*"}})
        assert titles(guide) == {"Lava guide"}
        recent = retriever.search("lava", k=10, mode=mode, where={"year": {"$gte": 2020}})
        assert titles(recent) == {"Lava 2023"}
        either = retriever.search(
            "lava", k=10, mode=mode, where={"tenant": {"$in": ["beta", "zeta"]}}
        )
        assert titles(either) == {"Lava for beta"}
        assert retriever.search("lava", k=10, mode=mode, where={"tenant": "nobody"}) == []
    # A change to the collection is seen by the next filtered search.
    ingest([corpus / "corpus" / "beta"], store, progress=False, metadata={"tenant": "acme"})
    moved = retriever.search("lava", k=10, mode="bm25", where={"tenant": "acme"})
    assert "Lava for beta" in titles(moved)


def test_a_filtered_question_never_sees_a_filtered_out_chunk(settings, corpus: Path):
    store = Store(settings, "asked", create=True)
    ingest([corpus / "corpus" / "acme"], store, progress=False, metadata={"tenant": "acme"})
    ingest([corpus / "corpus" / "beta"], store, progress=False, metadata={"tenant": "beta"})
    script = Script()
    httpd, base = serve(script)
    try:
        script.default = router(GOOD, [])
        scripted = {"reranker.policy": "rankgpt"}
        for node in ("rewriter", "grader", "generator", "reranker"):
            scripted |= {f"{node}.model": "litellm:openai/scripted", f"{node}.api_base": base}
        agent = RAGAgent(load_settings(**scripted), collection="asked")
        answer = agent.ask("Where does lava flow?", where={"tenant": "acme"})
        assert answer.sources and {p.metadata["tenant"] for p in answer.sources} == {"acme"}
        prompts = json.dumps(script.requests)
        assert "Lava for beta" not in prompts and "everywhere" not in prompts
    finally:
        httpd.shutdown()


def test_where_from_the_cli_and_over_http(home: Path, corpus: Path):
    env = {"REARAG_COLLECTION": "cli-filters"}
    for tenant in ("acme", "beta"):
        folder = str(corpus / "corpus" / tenant)
        assert rearag("ingest", folder, "-q", "--meta", f"tenant={tenant}", env=env).returncode == 0
    found = rearag("search", "lava", "-k", "5", "--where", "tenant=acme", "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert {h["metadata"]["tenant"] for h in json.loads(found.stdout)} == {"acme"}
    two = rearag(
        "search", "lava", "--where", "tenant=acme", "--where", "path=*/news/*", "--json", env=env
    )
    assert [h["metadata"]["title"] for h in json.loads(two.stdout)] == ["Lava news"]
    assert_one_line_error(rearag("search", "lava", "--where", "tenant", env=env), "where:")
    assert_one_line_error(
        rearag("search", "lava", "--where", '{"tenant": {"$near": 1}}', env=env), "$near"
    )
    assert_one_line_error(
        rearag("ingest", str(corpus), "--meta", "source=x", env=env), "rearag writes that field"
    )

    script = Script()
    httpd, base = serve(script)
    script.default = router(GOOD, [])
    port = free_port()
    server_env = {**scripted_env(home, base, "cli-filters"), "REARAG_SERVE__API_KEY": KEY}
    server = start_server([], server_env, port, home.parent / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        body = {"query": "lava", "k": 5, "where": {"tenant": "beta"}}
        hits = post(url, "/v1/search", body).json()["results"]
        assert {h["metadata"]["tenant"] for h in hits} == {"beta"}
        bad = post(url, "/v1/search", {"query": "lava", "where": {"tenant": {"$in": []}}})
        assert assert_error(bad, 400, "invalid_request")["param"] == "where"
        chat = {
            "model": "cli-filters",
            "messages": [{"role": "user", "content": "Where does lava flow?"}],
            "where": {"tenant": "acme"},
        }
        reply = post(url, "/v1/chat/completions", chat, timeout=60)
        assert reply.status_code == 200, reply.text
        sources = reply.json()["rearag"]["sources"]
        assert sources and {s["metadata"]["tenant"] for s in sources} == {"acme"}
        spec = httpx.get(url + "/openapi.json").json()["components"]["schemas"]
        assert "$glob" in spec["SearchRequest"]["properties"]["where"]["description"]
        assert "$glob" in spec["ChatRequest"]["properties"]["where"]["description"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        httpd.shutdown()
