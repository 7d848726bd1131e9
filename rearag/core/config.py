"""The one configuration model: TOML file < REARAG_* environment < CLI flags.

Sections mirror the parts of the pipeline (`[embedder]`, `[store]`, `[ingest]`, `[retriever]`,
`[reranker]`, `[rewriter]`, `[grader]`, `[generator]`, `[agent]`, `[serve]`). Nested fields are set
from the environment with a double underscore: `REARAG_STORE__CHROMA_HOST=127.0.0.1`.
A key that no section has, in the file or in a REARAG_* variable, is an error naming the closest
valid key: a typo must not be silently ignored.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from contextvars import ContextVar
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rearag.core.errors import ConfigError, InvalidInputError, RearagError
from rearag.core.filters import Where
from rearag.core.model_ref import (
    RERANKER_DEFAULTS,
    SHIPPED_RANKERS,
    is_weak,
    parse_model_ref,
)

DEFAULT_CONFIG_FILE = Path("rearag.toml")

# The TOML path is chosen per call of load_settings(); pydantic-settings builds its sources in a
# classmethod, so the path reaches it through this variable.
_config_file: ContextVar[Path] = ContextVar("rearag_config_file", default=DEFAULT_CONFIG_FILE)
ENV_PREFIX = "REARAG_"
# REARAG_* variables that are not settings: the config file path, and how `rearag serve
# --workers N` hands the settings to its worker processes.
CONFIG_ENV = "REARAG_CONFIG"
SERVE_STATE_ENV = "REARAG_SERVE_STATE"


class Section(BaseModel):
    """A TOML table: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# How local: and hf: embedders run: torch in fp32 or bfloat16 (the model's vectors within a
# cosine of 0.999; bf16 fast only on CPUs with AMX and on GPUs), or ONNX Runtime with the same
# vectors (fp32) or with int8 weights (vectors of their own, so collections record it;
# tools/onnx_embedder.py).
EmbedderBackend = Literal["torch", "torch-bf16", "onnx", "onnx-int8"]


class EmbedderConfig(Section):
    """The embedder; a litellm: model is reached like the LLM nodes' ones (`LLMOptions`)."""

    model: str = Field(
        "local:all-minilm-l6-v2", description="local:NAME, hf:REPO_OR_PATH or litellm:MODEL"
    )
    backend: EmbedderBackend = Field(
        "torch",
        description="local:/hf: models: torch, torch-bf16 or onnx (same vectors), or onnx-int8",
    )
    batch_size: int = Field(64, gt=0, description="texts per embedding batch or request")
    device: str = Field("cpu", description="torch device for the embedder: cpu, cuda, mps")
    threads: int | None = Field(
        None, ge=0, description="threads for local embedding; 0: every core; unset: OMP_NUM_THREADS"
    )
    api_base: str | None = Field(None, description="OpenAI-compatible server for litellm: models")
    api_key: str | None = Field(None, description="API key; unset: the provider's env variable")
    timeout_s: float = Field(60.0, gt=0, description="per request, litellm: models")
    max_retries: int = Field(3, ge=0, description="retries with backoff on 429/5xx/timeouts")
    concurrency: int = Field(4, gt=0, description="parallel requests, litellm: models")

    @model_validator(mode="after")
    def _check_model(self) -> EmbedderConfig:
        try:
            ref = parse_model_ref(self.model)
        except RearagError as exc:
            raise ValueError(str(exc)) from None
        if ref.kind == "policy":
            raise ValueError(
                f"embedder.model must be local:NAME, hf:NAME or litellm:MODEL, got {self.model!r}"
            )
        if ref.kind == "litellm" and self.backend != "torch":
            raise ValueError("embedder.backend applies to local: and hf: models, not litellm:")
        return self


class StoreConfig(Section):
    chroma_host: str | None = Field(
        None, description="Chroma server host; unset means an embedded store under home"
    )
    chroma_port: int = Field(8000, gt=0, lt=65536)


class IngestConfig(Section):
    chunk_tokens: int = Field(200, ge=16, description="chunk length in embedder tokens")
    chunk_overlap: int = Field(40, ge=0, description="tokens shared by consecutive chunks")
    max_file_mb: float = Field(50.0, gt=0, description="larger files are skipped")

    @model_validator(mode="after")
    def _check_overlap(self) -> IngestConfig:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("ingest.chunk_overlap must be smaller than ingest.chunk_tokens")
        return self


class SearchMode(StrEnum):
    """How a collection is searched: vectors, BM25, or both fused by reciprocal rank."""

    dense = "dense"
    bm25 = "bm25"
    hybrid = "hybrid"

    @classmethod
    def of(cls, value: str) -> SearchMode:
        """The mode named `value`; InvalidInputError for any other name."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise InvalidInputError(f"unknown search mode {value!r}: use one of {names}") from None


class RetrieverConfig(Section):
    mode: SearchMode = SearchMode.hybrid
    k: int = Field(10, gt=0, description="results returned")
    candidates: int = Field(100, gt=0, description="hits taken from each list before fusion")
    rrf_k: int = Field(60, gt=0, description="reciprocal rank fusion constant")


class LLMOptions(Section):
    """How one node reaches its language model; every LLM node's section extends this."""

    model: str = Field("local:smollm2-135m-instruct", description="local:, hf:, litellm:, policy:")
    api_base: str | None = Field(None, description="OpenAI-compatible server for litellm: models")
    api_key: str | None = Field(None, description="API key; unset: the provider's env variable")
    timeout_s: float = Field(120.0, gt=0, description="per request, litellm: models")
    max_retries: int = Field(3, ge=0, description="retries with backoff on 429/5xx/timeouts")
    concurrency: int = Field(4, gt=0, description="parallel requests, litellm: models")
    fallback_model: str | None = Field(None, description="litellm model tried when all fail")
    batch_size: int | None = Field(
        None,
        gt=0,
        description="prompts per generate call, local models; default 8 on a GPU, 1 on CPU, "
        "where batching measured slower (bench/results/rerank.md)",
    )
    threads: int | None = Field(None, gt=0, description="torch threads, local models")
    dtype: Literal["float32", "bfloat16", "auto"] = Field(
        "float32",
        description='local models\' weights; "auto": bfloat16 where it is fast (a CUDA GPU, a '
        "CPU with AMX or AVX512-BF16), else float32",
    )

    @model_validator(mode="after")
    def _check_model(self) -> LLMOptions:
        try:
            parse_model_ref(self.model)
        except RearagError as exc:
            raise ValueError(str(exc)) from None
        return self


# How a list longer than one window is reranked (policies/strategies.py).
RerankStrategy = Literal["sliding", "partition", "window"]


class RerankerConfig(LLMOptions):
    policy: str = Field("rearag-reasoning", description="see `rearag rerank --help`")
    strategy: RerankStrategy = Field(
        "sliding",
        description="sliding: windows back to front, one after another (REARANK); partition: "
        "a first window picks a pivot, the rest is ranked against it in concurrent windows "
        "(TDPart); window: one window over the head of the list",
    )
    window: int = Field(20, ge=2, description="passages per model call")
    step: int = Field(10, ge=1, description="sliding: slide of the window, back to front")
    pivot: int = Field(
        10, ge=1, description="partition: the pivot's rank in the first window (at most half)"
    )
    depth: int = Field(20, ge=1, description="first-stage candidates reranked")
    max_passage_chars: int = Field(400, ge=20, description="each passage is cut to this")
    max_new_tokens: int | None = Field(None, gt=0, description="default: the policy's own")
    cache: bool = Field(
        False,
        description="reuse windows already ranked by the same model with the same prompt "
        "($REARAG_HOME/cache/windows.sqlite); evaluations turn it on",
    )
    fuse_first_stage: bool = Field(
        False,
        description="fuse the model's order with the first-stage order (reciprocal rank "
        "fusion, retriever.rrf_k) instead of replacing it: a small model's ranking refines the "
        "first stage rather than overruling it",
    )
    use_model: bool = Field(
        True, description="call the model to rerank; false: keep the first-stage order unasked"
    )

    @model_validator(mode="after")
    def _size_and_check(self) -> RerankerConfig:
        if not {"model", "policy"} & self.model_fields_set:
            # Model and policy left at defaults measured unable to rank: the ranker that
            # ships for that model instead (set as unset defaults, like the sizes below).
            for key, value in SHIPPED_RANKERS.get(self.model.strip(), {}).items():
                if key not in self.model_fields_set:
                    self.__dict__[key] = value
        for key, value in RERANKER_DEFAULTS.get(self.model.strip(), {}).items():
            if key not in self.model_fields_set:
                # Not through setattr: a sized default stays "unset", so a Reranker built for
                # another model from these settings gets that model's defaults.
                self.__dict__[key] = value
        if "step" not in self.model_fields_set and self.step >= self.window:
            self.__dict__["step"] = max(1, self.window // 2)
        if self.step >= self.window:
            raise ValueError("reranker.step must be smaller than reranker.window")
        return self


class RewriterConfig(LLMOptions):
    num_queries: int = Field(2, ge=1, le=5, description="search queries written per question")
    max_new_tokens: int = Field(64, gt=0)
    history_turns: int = Field(6, ge=0, description="earlier chat turns shown to the rewriter")
    min_similarity: float = Field(
        0.5,
        ge=-1,
        le=1,
        description="a written query is kept only this close to the question (cosine, embedder)",
    )
    standalone: bool | None = Field(
        None,
        description="also rewrite a first question that has no conversation before it; unset: "
        "yes, unless the model is known to be weak (its rewrites of such questions measured no "
        "better than the question itself, bench/results/rewrite.md)",
    )

    @property
    def rewrites_standalone(self) -> bool:
        return self.standalone if self.standalone is not None else not is_weak(self.model)


class GraderConfig(LLMOptions):
    use_model: bool | None = Field(
        None,
        description="also ask the model where the evidence score passes; unset: yes, unless the "
        "model is known to be weak",
    )
    passages: int = Field(3, ge=1, description="top passages judged")
    max_passage_chars: int = Field(400, ge=20, description="each judged passage is cut to this")
    max_new_tokens: int = Field(4, gt=0, description="the verdict is one word")
    min_similarity: float = Field(
        0.35,
        ge=-1,
        le=1,
        description="evidence score: the best passage sentence's cosine similarity to the "
        "question must reach this (calibrated for the bundled MiniLM embedder)",
    )
    min_score: float = Field(
        0.75,
        ge=-1,
        le=2,
        description="answer score: the best passage sentence's similarity plus its share of "
        "the question's words (x0.25), names (x0.15) and asked-for kind of answer (x0.15) must "
        "reach this; a step below the highest bar that abstained on no SQuAD 2.0 dev question "
        "the defaults answered right (0.85, bench/results/abstention.md)",
    )

    @property
    def asks_model(self) -> bool:
        return self.use_model if self.use_model is not None else not is_weak(self.model)


class GeneratorConfig(LLMOptions):
    mode: Literal["auto", "generate", "extract"] = Field(
        "auto",
        description="generate: the model writes, checked sentence by sentence; extract: the best "
        "sentences of the passages, cited, no model; auto: extract for models known to be weak",
    )
    max_new_tokens: int = Field(192, gt=0)
    passages: int = Field(4, ge=1, description="top passages the answer may cite")
    max_passage_chars: int = Field(700, ge=50)
    history_turns: int = Field(6, ge=0, description="earlier chat turns shown to the generator")
    min_support: float = Field(
        0.6,
        ge=0,
        le=1,
        description="a cited sentence's new words (not in the question) the cited passage must "
        "contain, as a share",
    )
    extract_sentences: int = Field(2, ge=1, le=10, description="sentences in an extracted answer")

    @property
    def writes(self) -> bool:
        """Whether the model writes the answer (else it is extracted)."""
        if self.mode == "auto":
            return not is_weak(self.model)
        return self.mode == "generate"


class AgentConfig(Section):
    max_retrievals: int = Field(2, ge=1, description="retrieval rounds before abstaining")
    retrieve_k: int = Field(10, ge=1, description="passages fused from the search queries")
    max_question_chars: int = Field(4000, ge=10)
    keep_checkpoints: Literal["latest", "all"] = Field(
        "latest",
        description="checkpoints kept per conversation thread: latest (enough to continue it) "
        "or all (LangGraph's step-by-step history, for time travel; the file grows)",
    )
    checkpointer: str = Field(
        "sqlite",
        description="where conversations are kept: sqlite ($REARAG_HOME/checkpoints.sqlite, "
        "one host) or a postgresql://USER@HOST:PORT/DB URL shared by replicas (its password "
        "from PGPASSWORD or ~/.pgpass, not the URL)",
    )

    @field_validator("checkpointer")
    @classmethod
    def _known_checkpointer(cls, value: str) -> str:
        if value != "sqlite" and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("use sqlite or a postgresql:// URL")
        return value


class ApiKey(Section):
    """One key of `[[serve.keys]]`: who may call the server, which collections it sees and
    the filter every one of its searches is held to. The key itself is never in the file:
    only its SHA-256 (`rearag keys new NAME` makes one), or the environment variable that
    holds it."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="who holds it; in logs, never the key"
    )
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$", description="hex SHA-256 of the key"
    )
    env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable holding it"
    )
    collections: list[str] = Field(
        ["*"], min_length=1, description='collections it sees; "*" for every served one'
    )
    where: dict[str, Any] | None = Field(
        None, description='a filter ANDed with every request\'s own, e.g. {tenant = "acme"}'
    )

    @model_validator(mode="after")
    def _one_source(self) -> ApiKey:
        if (self.sha256 is None) == (self.env is None):
            raise ValueError(f"key {self.name!r}: give one of sha256 or env")
        if "*" in self.collections and len(self.collections) > 1:
            raise ValueError(f'key {self.name!r}: collections: "*" (every one) or names, not both')
        if self.where == {}:
            raise ValueError(f"key {self.name!r}: where = {{}} holds nothing: leave it out")
        try:  # a malformed filter stops the server before it listens
            Where.parse(self.where)
        except InvalidInputError as exc:
            raise ValueError(f"key {self.name!r}: {exc}") from None
        return self


class ServeConfig(Section):
    """`rearag serve`: the HTTP server's limits and keys. A key is best set by environment
    (REARAG_SERVE__API_KEY), where other users of the machine cannot read it from `ps`."""

    host: str = Field("127.0.0.1", description="interface to bind; loopback by default")
    port: int = Field(8000, gt=0, lt=65536)
    api_key: str | None = Field(
        None, description="when set, requests need Bearer KEY; it sees every collection"
    )
    keys: list[ApiKey] = Field(
        [], description="keys with their own collections and filter (`[[serve.keys]]`)"
    )
    keys_file: Path | None = Field(
        None, description="a TOML file of more `[[keys]]`, kept apart from the settings"
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="larger bodies get 413")
    request_timeout_s: float = Field(300.0, gt=0, description="slower requests get 504")
    max_documents: int = Field(
        100, ge=1, description="passages per rerank request (HTTP /v1/rerank, MCP rerank)"
    )
    max_connections: int = Field(
        200, ge=1, description="open connections and requests at once; more get 503"
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="a connection must send its request's headers within this"
    )
    keep_alive_s: float = Field(5.0, gt=0, description="idle keep-alive connections close after")
    shutdown_timeout_s: float = Field(
        10.0, ge=0, description="on SIGTERM, requests still running are cut off after this"
    )
    show_paths: Literal["relative", "absolute"] = Field(
        "relative",
        description="sources in answers and search results: relative to the folder ingested "
        "(the server's own file layout stays private) or absolute",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("rearag"),
        description="where collections, indexes, models and runs are stored",
    )
    collection: str = Field("default", description="collection used when none is given")
    embedder: EmbedderConfig = EmbedderConfig()
    store: StoreConfig = StoreConfig()
    ingest: IngestConfig = IngestConfig()
    retriever: RetrieverConfig = RetrieverConfig()
    reranker: RerankerConfig = RerankerConfig()
    rewriter: RewriterConfig = RewriterConfig()
    grader: GraderConfig = GraderConfig()
    generator: GeneratorConfig = GeneratorConfig()
    agent: AgentConfig = AgentConfig()
    serve: ServeConfig = ServeConfig()

    @property
    def models_dir(self) -> Path:
        """Converted and cached local models."""
        return self.home / "models"

    @property
    def policies_dir(self) -> Path:
        """Reranker policies trained by `rearag train`, loaded as `policy:NAME`."""
        return self.home / "policies"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file.get())
        return (init_settings, env_settings, toml)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Effective settings. `overrides` (CLI flags) win over REARAG_* variables, which win over
    the TOML file (`config_file`, else $REARAG_CONFIG, else ./rearag.toml if present).
    Raises ConfigError (one line) for a missing or invalid file, an unknown key or variable,
    or a bad value."""
    env_file = os.environ.get(CONFIG_ENV)
    explicit = config_file or (Path(env_file) if env_file else None)
    path = explicit or DEFAULT_CONFIG_FILE
    if explicit is not None and not path.is_file():
        raise ConfigError(f"config file {path} not found: pass an existing TOML file")
    if path.is_file():
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    check_environment()
    token = _config_file.set(path)
    try:
        return Settings(**_nest(overrides))
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {first_error(exc)}") from None
    finally:
        _config_file.reset(token)


def setting_keys() -> list[str]:
    """Every valid dotted key: `collection`, `reranker.window`, …"""
    keys = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            keys += [f"{name}.{sub}" for sub in section.model_fields]
        else:
            keys.append(name)
    return keys


def check_environment(environ: dict[str, str] | None = None) -> None:
    """ConfigError for a REARAG_* variable that sets nothing (pydantic-settings ignores it)."""
    environ = os.environ if environ is None else environ
    known = {ENV_PREFIX + key.upper().replace(".", "__"): key for key in setting_keys()}
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        if upper in (CONFIG_ENV, SERVE_STATE_ENV):
            continue
        if any(k.startswith(upper + "__") for k in known):
            continue  # a whole section as JSON: REARAG_STORE='{"chroma_port": 8001}'
        close = difflib.get_close_matches(upper, list(known), n=1)
        hint = f": did you mean {close[0]}?" if close else ": see `rearag config show`"
        raise ConfigError(f"unknown setting variable {variable}{hint}")


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{"store.chroma_host": "h"} -> {"store": {"chroma_host": "h"}}; None values are dropped."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


# Keys that were renamed or replaced: their new name, and why.
RENAMED = {
    "grader.min_overlap": "grader.min_similarity (the evidence score replaced the word overlap)",
}


def first_error(exc: ValidationError) -> str:
    """The first problem as `where: what`; an unknown key also names the closest valid one."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    if err["type"] == "extra_forbidden":
        if where in RENAMED:
            return f"unknown key {where}: it is now {RENAMED[where]}"
        close = difflib.get_close_matches(where, setting_keys(), n=1)
        hint = f": did you mean {close[0]}?" if close else ""
        return f"unknown key {where}{hint}"
    return f"{where}: {err['msg']}"
