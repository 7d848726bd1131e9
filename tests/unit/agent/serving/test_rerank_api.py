"""The Cohere/Jina-shaped rerank API: the request rules and the scores in-process, then a real
`rearag serve` spoken to by the cohere SDK (v1 and v2 clients), litellm.rerank and plain HTTP.
The scripted reranker model ranks passages by how often they name the query's last word."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import cohere
import httpx
import litellm
import pytest
from fakes.openai_server import Script, serve
from fakes.serving import free_port, ingest_docs, scripted_env, start_server

from rearag.agent.serving.rerank_api import RerankRequest, rerank_response
from rearag.core.errors import InvalidInputError
from rearag.policies.reranker import RankedResults, Result, WindowTrace

KEY = "sk-test-rerank-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}
DOCS = ["basalt rock", "lava flows from lava tubes", "ash", "lava"]
BY_LAVA = [1, 3, 0, 2]  # DOCS by how often they say "lava", ties in their order


def request(**fields) -> RerankRequest:
    return RerankRequest(**{"query": "lava", "documents": DOCS, **fields})


def ranked(order: list[int], texts: list[str]) -> RankedResults:
    n = len(order)
    results = [
        Result(doc_id=str(i), text=texts[i], original_rank=i + 1, rank=r + 1, score=n - r)
        for r, i in enumerate(order)
    ]
    window = WindowTrace(start=0, end=n, status="ok", prompt_tokens=30, completion_tokens=5)
    return RankedResults(query="q", policy="rankgpt", model="m", results=results, windows=[window])


def test_texts_honour_rank_fields_and_max_tokens_per_doc():
    docs = ["plain", {"text": "body", "title": "Title", "year": 2024}]
    assert request(documents=docs).texts() == ["plain", "body"]
    fields = request(documents=docs, rank_fields=["title", "text"]).texts()
    assert fields == ["plain", "title: Title\ntext: body"]  # strings are read whole
    assert request(documents=docs, rank_fields=["year"]).texts()[1] == "2024"
    cut = request(max_tokens_per_doc=1, max_chunks_per_doc=1).texts()
    assert cut == ["basa", "lava", "ash", "lava"]  # 4 characters a token


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"documents": []}, "documents is empty"),
        ({"documents": ["a", {"title": "no text"}]}, "documents[1]"),
        ({"documents": [{"text": "a"}], "rank_fields": ["title"]}, "'title' field (rank_fields)"),
        ({"max_chunks_per_doc": 3}, "max_chunks_per_doc"),
        ({"relevant_spans": {"mode": "enabled"}}, "relevant_spans"),
    ],
)
def test_requests_that_cannot_be_honoured_name_the_field(fields, named):
    with pytest.raises(InvalidInputError, match=re.escape(named)):
        request(**fields).texts()


def test_scores_follow_the_rank_and_indexes_the_request():
    body = request(top_n=3, return_documents=True)
    out = rerank_response(body, ranked(BY_LAVA, DOCS))
    assert [r.index for r in out.results] == [1, 3, 0]
    assert [r.relevance_score for r in out.results] == [1.0, 0.75, 0.5]  # of n = 4, not 3
    assert [r.document for r in out.results] == [{"text": DOCS[i]} for i in (1, 3, 0)]
    assert out.meta == {"tokens": {"input_tokens": 30, "output_tokens": 5}}
    assert out.usage == {"total_tokens": 35} and out.rearag.windows[0].status == "ok"
    one = rerank_response(request(documents=["x"]), ranked([0], ["x"]))
    assert [(r.index, r.relevance_score, r.document) for r in one.results] == [(0, 1.0, None)]


# A real server and real clients.


def by_query_word(messages: list[dict[str, str]]) -> str:
    """The scripted reranker: passages by how often they say the query's last word, ties in
    order; no ranking at all (a wrong_format window) when none says it."""
    query = re.search(r"Search Query: (.*)\.\n", messages[-1]["content"]).group(1)
    word = query.split()[-1]
    passages = [m["content"] for m in messages if m["role"] == "user" and m["content"][0] == "["]
    counts = [p.count(word) for p in passages]
    if not any(counts):
        return "I cannot rank these."
    order = sorted(range(len(passages)), key=lambda i: -counts[i])
    return " > ".join(f"[{i + 1}]" for i in order)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("rerank")
    httpd, base = serve(Script(by_query_word))
    env = {
        **scripted_env(tmp / "home", base, "rerank-docs"),
        "REARAG_SERVE__API_KEY": KEY,
        "REARAG_SERVE__MAX_DOCUMENTS": "8",
    }
    ingest_docs(tmp, tmp / "home", "rerank-docs")
    port = free_port()
    log = tmp / "serve.log"
    proc = start_server([], env, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        # Warm-up: the server's first litellm call imports and loads for seconds.
        httpx.post(
            url + "/v1/rerank", json={"query": "q", "documents": DOCS}, headers=AUTH, timeout=120
        )
        yield SimpleNamespace(url=url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        httpd.shutdown()
    assert "lava tubes" not in log.read_text()  # no documents in the logs


def post(server, body: dict, path: str = "/v1/rerank") -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=AUTH, timeout=60)


@pytest.mark.slow
def test_cohere_v2_client(server):
    co = cohere.ClientV2(api_key=KEY, base_url=server.url, timeout=60)
    resp = co.rerank(model="rerank-v3.5", query="lava", documents=DOCS, top_n=2)
    assert [(r.index, r.relevance_score) for r in resp.results] == [(1, 1.0), (3, 0.75)]
    assert resp.id and resp.meta.tokens.input_tokens > 0
    assert resp.results[0].model_extra.get("document") is None  # v2 returns no documents
    with pytest.raises(cohere.errors.BadRequestError) as err:
        co.rerank(model="rerank-v3.5", query="lava", documents=[])
    assert "documents is empty" in err.value.body["error"]["message"]


@pytest.mark.slow
def test_cohere_v1_client_with_documents_and_rank_fields(server):
    co = cohere.Client(api_key=KEY, base_url=server.url, timeout=60)
    docs = [{"text": "lava", "title": "basalt"}, {"text": "ash", "title": "lava lava"}]
    resp = co.rerank(model="any", query="lava", documents=docs, return_documents=True)
    assert [r.index for r in resp.results] == [0, 1]
    assert resp.results[0].document.text == "lava"
    assert resp.results[0].document.model_extra == {"title": "basalt"}  # given back whole
    by_title = co.rerank(query="lava", documents=docs, rank_fields=["title"])
    assert [r.index for r in by_title.results] == [1, 0]
    assert by_title.results[0].document is None  # Cohere's default: no documents


@pytest.mark.slow
def test_litellm_rerank(server):
    resp = litellm.rerank(
        model="cohere/rearag",
        api_base=server.url,
        api_key=KEY,
        query="lava",
        documents=DOCS,
        top_n=3,
    )
    assert [r["index"] for r in resp.results] == BY_LAVA[:3]
    assert [r["relevance_score"] for r in resp.results] == [1.0, 0.75, 0.5]
    assert resp.results[0]["document"]["text"] == DOCS[1]  # litellm asks for documents
    # The LiteLLM proxy's path: a Router over the model_list entry of the README's config.yaml.
    params = {"model": "cohere/rearag", "api_base": server.url, "api_key": KEY}
    router = litellm.Router(model_list=[{"model_name": "rearag-rerank", "litellm_params": params}])
    routed = asyncio.run(router.arerank(model="rearag-rerank", query="lava", documents=DOCS))
    assert [r["index"] for r in routed.results] == BY_LAVA


@pytest.mark.slow
def test_plain_http_jina_shape_and_extras(server):
    docs = [{"text": d} for d in DOCS]
    for path in ("/v1/rerank", "/v2/rerank"):
        body = post(
            server,
            {"model": "jina-reranker-v2", "query": "lava", "documents": docs, "top_n": 50},
            path,
        ).json()
        assert [r["index"] for r in body["results"]] == BY_LAVA  # top_n over n: all
        assert all(set(r) == {"index", "relevance_score"} for r in body["results"])
        assert body["usage"]["total_tokens"] > 0
        assert (
            body["rearag"]["policy"] == "rankgpt" and body["rearag"]["windows"][0]["status"] == "ok"
        )
    # What Open WebUI's external reranker sends; it reads the scores back in index order.
    body = post(server, {"model": "rearag", "query": "lava", "documents": DOCS, "top_n": 4}).json()
    scores = [r["relevance_score"] for r in sorted(body["results"], key=lambda r: r["index"])]
    assert scores == [0.5, 1.0, 0.25, 0.75]
    # A window the model did not rank keeps the given order, and says so.
    body = post(server, {"query": "obsidian", "documents": DOCS, "return_documents": True}).json()
    assert [r["document"]["text"] for r in body["results"]] == DOCS
    assert [r["relevance_score"] for r in body["results"]] == [1.0, 0.75, 0.5, 0.25]
    assert body["rearag"]["windows"][0]["status"] == "wrong_format"
    # max_tokens_per_doc cuts what the reranker reads, to "lava" and "rock" here.
    docs = ["lava rock", "rock, lava and lava"]
    assert [
        r["index"] for r in post(server, {"query": "lava", "documents": docs}).json()["results"]
    ] == [1, 0]
    cut = post(server, {"query": "lava", "documents": docs, "max_tokens_per_doc": 1}).json()
    assert [r["index"] for r in cut["results"]] == [0, 1]


@pytest.mark.slow
def test_errors_are_openai_shaped_and_name_the_field(server):
    def error(body: dict, status: int = 400) -> str:
        resp = post(server, body)
        assert resp.status_code == status, resp.text
        return resp.json()["error"]["message"]

    assert "documents is empty" in error({"query": "q", "documents": []})
    assert "documents[1]" in error({"query": "q", "documents": ["a", {"image": "x.png"}]})
    assert "max_chunks_per_doc" in error(
        {"query": "q", "documents": ["a"], "max_chunks_per_doc": 10}
    )
    assert "relevant_spans" in error(
        {"query": "q", "documents": ["a"], "relevant_spans": {"mode": "enabled"}}
    )
    assert "serve.max_documents" in error({"query": "q", "documents": ["a"] * 9})
    assert "top_n" in error({"query": "q", "documents": ["a"], "top_n": 0}, 422)
    assert "query" in error({"documents": ["a"]}, 422)
    resp = httpx.post(server.url + "/v1/rerank", json={"query": "q", "documents": ["a"]})
    assert resp.status_code == 401
