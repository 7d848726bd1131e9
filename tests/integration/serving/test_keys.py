"""Two keys against one `rearag serve`: each sees only its own collections and, in the
collection both see, only its own tenant's chunks; the other's collection is 404 exactly as one
that does not exist, on every route. One key from the settings (its value in the environment),
one from a keys file (its SHA-256 only); real clients: the `openai` SDK and plain HTTP."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import httpx
import openai
import pytest
from fakes.docs import write_docs
from fakes.openai_server import Script, serve
from fakes.serving import echo_router, free_port, scripted_env, start_server

from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

ACME, GLOBEX = "rk-acme-7f3a9c1e5b", "rk-globex-2d8e4f6a0c"
SHARED = "shared"
ACME_TEXT = "Zephyrine alloy is what acme builds its turbines from. It melts at 900 degrees."
GLOBEX_TEXT = "Quokkalith crystals power the reactors of globex. They glow when cooled."


def _folder(path, name: str, text: str):
    path.mkdir(parents=True)
    (path / f"{name}.txt").write_text(text + "\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("keys")
    home = tmp / "home"
    settings = load_settings(home=home)
    acme_docs = _folder(tmp / "acme", "acme-plan", ACME_TEXT)
    globex_docs = _folder(tmp / "globex", "globex-plan", GLOBEX_TEXT)
    shared = Store(settings, SHARED, create=True)
    ingest([acme_docs], shared, progress=False, metadata={"tenant": "acme"})
    ingest([globex_docs], shared, progress=False, metadata={"tenant": "globex"})
    ingest([acme_docs], Store(settings, "acme-only", create=True), progress=False)
    ingest([write_docs(tmp / "docs")], Store(settings, "globex-only", create=True), progress=False)
    keys_file = tmp / "keys.toml"
    keys_file.write_text(
        "[[keys]]\nname = 'globex'\n"
        f"sha256 = '{hashlib.sha256(GLOBEX.encode()).hexdigest()}'\n"
        "collections = ['shared', 'globex-only']\nwhere = { tenant = 'globex' }\n"
    )
    config = tmp / "rearag.toml"
    config.write_text(
        f"[serve]\nkeys_file = '{keys_file}'\n\n[[serve.keys]]\nname = 'acme'\n"
        "env = 'ACME_SERVE_KEY'\ncollections = ['shared', 'acme-only']\n"
        "where = { tenant = 'acme' }\n"
    )
    script = Script()
    httpd, base = serve(script)
    sent: list[str] = []  # every message any node sent the LLM
    echo = echo_router([])

    def recording(messages):
        sent.extend(m["content"] for m in messages)
        return echo(messages)

    script.default = recording
    env = {
        **scripted_env(home, base, SHARED),
        "REARAG_CONFIG": str(config),
        "ACME_SERVE_KEY": ACME,
    }
    port = free_port()
    log = tmp / "serve.log"
    served = ["-c", SHARED, "-c", "acme-only", "-c", "globex-only"]
    proc = start_server(served, env, port, log)
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", sent=sent, log=log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        httpd.shutdown()
    assert ACME not in log.read_text() and GLOBEX not in log.read_text()


def call(server, key: str, path: str, body: dict | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if body is None:
        return httpx.get(server.url + path, headers=headers, timeout=60)
    return httpx.post(server.url + path, json=body, headers=headers, timeout=120)


def client(server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)


def test_the_start_log_names_the_keys_never_their_values(server):
    text = server.log.read_text()
    assert "API key required (2: acme, globex)" in text
    assert ACME not in text and GLOBEX not in text


def test_each_key_lists_only_its_own_collections(server):
    assert [m.id for m in client(server, ACME).models.list()] == [SHARED, "acme-only"]
    assert [m.id for m in client(server, GLOBEX).models.list()] == [SHARED, "globex-only"]
    assert "models" not in httpx.get(server.url + "/health").json()  # no key, no names


def test_the_other_keys_collection_is_404_as_one_that_does_not_exist(server):
    for path, body in [
        ("/v1/models/{}", None),
        ("/v1/search", {"model": "{}", "query": "turbines"}),
        ("/v1/chat/completions", {"model": "{}", "messages": [{"role": "user", "content": "q"}]}),
    ]:
        answers = []
        for name in ("globex-only", "no-such-collection"):
            filled = {
                k: v.format(name) if isinstance(v, str) else v for k, v in (body or {}).items()
            }
            resp = call(server, ACME, path.format(name), filled if body else None)
            assert resp.status_code == 404, (path, resp.text)
            answers.append(resp.json()["error"])
        hidden, missing = answers
        assert hidden["code"] == missing["code"] == "model_not_found"
        assert hidden["message"].replace("globex-only", "X") == missing["message"].replace(
            "no-such-collection", "X"
        )
        assert "globex" not in missing["message"]  # the list names only acme's collections
    with pytest.raises(openai.NotFoundError):
        client(server, GLOBEX).chat.completions.create(
            model="acme-only", messages=[{"role": "user", "content": "turbines?"}]
        )


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_in_the_shared_collection_each_key_finds_only_its_tenants_chunks(server, mode):
    query = {"model": SHARED, "query": "zephyrine quokkalith turbines reactors", "k": 10}
    for key, own in [(ACME, "Zephyrine"), (GLOBEX, "Quokkalith")]:
        hits = call(server, key, "/v1/search", {**query, "mode": mode}).json()["results"]
        assert hits and all(own in h["text"] for h in hits), hits
        # The request's own filter holds as well as the key's: it cannot widen what is seen.
        other = "globex" if key == ACME else "acme"
        widened = {**query, "mode": mode, "where": {"tenant": other}}
        assert call(server, key, "/v1/search", widened).json()["results"] == []


def test_an_answer_for_one_key_never_reads_the_other_tenants_chunks(server):
    server.sent.clear()
    resp = client(server, ACME).chat.completions.create(
        model=SHARED,
        messages=[{"role": "user", "content": "What powers the reactors? zephyrine quokkalith"}],
    )
    cited = [c["source"] for c in resp.model_extra["rearag"]["citations"]]
    assert all("acme-plan" in s for s in cited)
    assert server.sent and not any("Quokkalith" in m for m in server.sent)
    assert any("Zephyrine" in m for m in server.sent)  # the filter passed acme's chunks on


def test_two_keys_naming_one_thread_hold_two_conversations(server):
    def ask(key: str, text: str) -> None:
        resp = client(server, key).chat.completions.create(
            model=SHARED,
            messages=[{"role": "user", "content": text}],
            extra_headers={"X-Thread-Id": "team-thread"},
        )
        # The thread as the client named it: not its key's name for it.
        assert resp.model_extra["rearag"]["thread_id"] == "team-thread"

    ask(ACME, "acme turn one zephyrine")
    server.sent.clear()
    ask(GLOBEX, "globex turn two quokkalith")
    # The earlier turns of a thread reach the nodes (rewriter, generator); not another key's.
    assert any("globex turn two" in m for m in server.sent)
    assert not any("acme turn one" in m for m in server.sent)
    server.sent.clear()
    ask(ACME, "acme turn three")
    assert any("acme turn one" in m for m in server.sent)


def test_rerank_takes_either_key_and_no_other(server):
    body = {"model": "any", "query": "lava", "documents": ["a", "b"]}
    for key in (ACME, GLOBEX):
        assert call(server, key, "/v1/rerank", body).status_code == 200
    assert call(server, "rk-someone-else", "/v1/rerank", body).status_code == 401
