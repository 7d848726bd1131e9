from pathlib import Path

import pytest

from rearag.core.config import SearchMode, load_settings
from rearag.core.errors import ConfigError, InvalidInputError, RearagError


def test_defaults_use_bundled_embedder_and_embedded_store(settings):
    assert settings.embedder.model == "local:all-minilm-l6-v2"
    assert settings.store.chroma_host is None
    assert settings.retriever.mode == "hybrid"


def test_precedence_toml_then_env_then_flags(home, monkeypatch):
    Path("rearag.toml").write_text(
        'collection = "from-toml"\n[retriever]\nk = 3\nmode = "bm25"\n[store]\nchroma_port = 9000\n'
    )
    s = load_settings()
    assert (s.collection, s.retriever.k, s.retriever.mode) == ("from-toml", 3, "bm25")

    monkeypatch.setenv("REARAG_RETRIEVER__K", "7")
    monkeypatch.setenv("REARAG_COLLECTION", "from-env")
    s = load_settings()
    assert (s.collection, s.retriever.k, s.retriever.mode) == ("from-env", 7, "bm25")
    assert s.store.chroma_port == 9000  # sections merge across sources

    s = load_settings(collection="from-flag", **{"retriever.k": 11, "store.chroma_host": None})
    assert (s.collection, s.retriever.k, s.store.chroma_host) == ("from-flag", 11, None)


def test_config_file_from_argument_and_env(home, tmp_path, monkeypatch):
    cfg = tmp_path / "other.toml"
    cfg.write_text('collection = "elsewhere"\n')
    assert load_settings(cfg).collection == "elsewhere"
    monkeypatch.setenv("REARAG_CONFIG", str(cfg))
    assert load_settings().collection == "elsewhere"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("collection = \n", "not valid TOML"),
        ("[retriever]\nk = -1\n", "retriever.k"),
        ("[ingest]\nchunk_tokens = 32\nchunk_overlap = 32\n", "chunk_overlap"),
        ('[embedder]\nmodel = "policy:mine"\n', "embedder.model"),
        ("nonsense_key = 1\n", "nonsense_key"),
    ],
)
def test_bad_config_is_one_clear_error(home, toml, message):
    Path("rearag.toml").write_text(toml)
    with pytest.raises(RearagError, match=message):
        load_settings()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[retriever]\nmod = "bm25"\n', "unknown key retriever.mod: did you mean retriever.mode?"),
        ("[generator]\nmax_new_token = 9\n", "did you mean generator.max_new_tokens?"),
        ("[retreiver]\nk = 3\n", "unknown key retreiver"),
        ("colection = 'x'\n", "did you mean collection?"),
        ("[grader]\nmin_overlap = 0.5\n", "grader.min_overlap: it is now grader.min_similarity"),
    ],
)
def test_misspelled_toml_keys_are_errors_naming_the_closest_key(home, toml, message):
    Path("rearag.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        load_settings()


def test_misspelled_environment_variables_are_errors(home, monkeypatch):
    monkeypatch.setenv("REARAG_RETREIVER__MODE", "bm25")
    with pytest.raises(
        ConfigError, match="REARAG_RETREIVER__MODE: did you mean REARAG_RETRIEVER__MODE"
    ):
        load_settings()
    monkeypatch.delenv("REARAG_RETREIVER__MODE")
    monkeypatch.setenv("rearag_retriever__mode", "bm25")  # variables are case-insensitive
    monkeypatch.setenv("REARAG_STORE", '{"chroma_port": 8123}')  # a section as JSON
    s = load_settings()
    assert (s.retriever.mode, s.store.chroma_port) == ("bm25", 8123)


def test_search_mode_names_are_checked_once():
    assert SearchMode.of("bm25") is SearchMode.bm25
    with pytest.raises(InvalidInputError, match="use one of dense, bm25, hybrid"):
        SearchMode.of("sparse")


def test_missing_explicit_config_file(home, tmp_path):
    with pytest.raises(RearagError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_weak_model_defaults_apply_only_where_unset(home):
    from rearag.core.config import RerankerConfig
    from rearag.policies.reranker import Reranker

    settings = load_settings()  # the bundled 135M model everywhere
    named = load_settings(**{"reranker.model": "local:smollm2-135m-instruct"}).reranker
    assert (named.window, named.max_passage_chars) == (10, 300)
    assert not settings.grader.asks_model and not settings.generator.writes
    assert not settings.rewriter.rewrites_standalone
    # An explicit setting wins; another model gets its own defaults.
    assert (
        load_settings(**{"reranker.window": 6, "reranker.model": named.model}).reranker.window == 6
    )
    assert RerankerConfig(window=4).step == 2  # a step that fits the window it was given
    other = Reranker(model="litellm:openai/x", settings=settings).config
    assert (other.window, other.step, other.max_new_tokens) == (20, 10, None)
    strong = load_settings(
        **{"grader.model": "litellm:openai/x", "generator.model": "litellm:openai/x"}
    )
    assert strong.grader.asks_model and strong.generator.writes
    forced = load_settings(**{"grader.use_model": True, "generator.mode": "generate"})
    assert forced.grader.asks_model and forced.generator.writes
