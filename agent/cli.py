"""The `rearag` command line. Every command that a script may call takes `--json`.

User mistakes raise RearagError, printed here as one `error:` line with exit status 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from rearag.agent.cli_common import JsonOpt, out, print_json, settings_of, stderr_line
from rearag.core.config import Settings
from rearag.core.errors import RearagError
from rearag.rl.cli import policies_app, train_app

app = typer.Typer(
    help="rearag: agentic RAG with a reasoning reranker trained by reinforcement learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
collections_app = typer.Typer(help="List and delete collections.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
eval_app = typer.Typer(
    help="Evaluate retrieval and reranking on judged datasets.", no_args_is_help=True
)
app.add_typer(collections_app, name="collections")
app.add_typer(config_app, name="config")
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(policies_app, name="policies")

CollectionOpt = Annotated[
    str | None, typer.Option("--collection", "-c", help="collection name (default: config)")
]


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option(help="TOML config file (default: ./rearag.toml, $REARAG_CONFIG)")
    ] = None,
    home: Annotated[Path | None, typer.Option(help="data folder (default: $REARAG_HOME)")] = None,
    chroma_host: Annotated[
        str | None, typer.Option(help="use the Chroma server on this host")
    ] = None,
    chroma_port: Annotated[int | None, typer.Option(help="Chroma server port")] = None,
    embedder: Annotated[str | None, typer.Option(help="embedder model reference")] = None,
) -> None:
    ctx.obj = {
        "config_file": config,
        "overrides": {
            "home": home,
            "store.chroma_host": chroma_host,
            "store.chroma_port": chroma_port,
            "embedder.model": embedder,
        },
    }


def _print_snippet(text: str, limit: int = 300) -> None:
    flat = " ".join(text.split())
    out.print(f"   {flat[:limit]}{'…' if len(flat) > limit else ''}", markup=False)


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="files and folders to ingest")],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Chunk, embed and index files (.txt .md .html .pdf, BEIR .jsonl). Re-running is cheap:
    unchanged chunks are kept, changed files replace their chunks."""
    from rearag.tools.ingest import ingest as run_ingest
    from rearag.tools.loaders import check_paths_exist
    from rearag.tools.store import Store

    settings = settings_of(ctx, collection=collection)
    check_paths_exist(paths)  # before the collection is created: a typo must not leave one
    store = Store(settings, settings.collection, create=True)
    try:
        report = run_ingest(
            paths,
            store,
            progress=not quiet and not as_json,
            on_problem=lambda p: stderr_line(f"skipped {p.path}: {p.reason}"),
        )
    except KeyboardInterrupt:
        stderr_line("interrupted: the collection is usable; run the same command again to finish")
        raise typer.Exit(130) from None
    if as_json:
        print_json(report.model_dump())
        return
    out.print(
        f"{report.collection}: {report.files} file(s), {report.documents} document(s); "
        f"chunks +{report.chunks_added} -{report.chunks_deleted} "
        f"(={report.chunks_unchanged} unchanged), {report.chunks_total} in total; "
        f"{len(report.skipped)} skipped",
        markup=False,
    )
    if report.files == 0 or (report.skipped and report.documents == 0):
        raise typer.Exit(1)


@app.command()
def remove(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="files whose chunks to delete")],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete the chunks of files from a collection (and from its BM25 index)."""
    from rearag.tools.ingest import remove_sources
    from rearag.tools.store import Store

    settings = settings_of(ctx, collection=collection)
    deleted = remove_sources(paths, Store(settings, settings.collection))
    if as_json:
        print_json({"collection": settings.collection, "chunks_deleted": deleted})
    else:
        out.print(f"{settings.collection}: {deleted} chunk(s) deleted", markup=False)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="what to search for")],
    collection: CollectionOpt = None,
    k: Annotated[int | None, typer.Option("-k", help="number of results (default: config)")] = None,
    mode: Annotated[
        str | None, typer.Option(help="dense | bm25 | hybrid (default: config)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search a collection: dense, BM25 or hybrid (reciprocal rank fusion)."""
    from rearag.tools.retriever import Retriever

    settings = settings_of(ctx, collection=collection)
    hits = Retriever(settings=settings).search(query, k=k, mode=mode)  # type: ignore[arg-type]
    if as_json:
        print_json([h.model_dump() for h in hits])
        return
    if not hits:
        out.print("no results")
    for rank, hit in enumerate(hits, start=1):
        title = hit.metadata.get("title") or Path(hit.metadata.get("source", "")).name
        out.print(f"[bold]{rank}.[/bold] {hit.score:.4f}  [cyan]{title}[/cyan]", highlight=False)
        _print_snippet(hit.text)


PolicyOpt = Annotated[
    str | None,
    typer.Option(help="rearag-reasoning | rankgpt | first-token | first-stage (default: config)"),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(help="local:NAME, hf:REPO_OR_PATH, litellm:MODEL, policy:NAME (default: config)"),
]
ApiBaseOpt = Annotated[
    str | None, typer.Option(help="OpenAI-compatible server for litellm: models, e.g. vLLM")
]
RunDirOpt = Annotated[
    Path | None, typer.Option(help="where TREC run files go (default: HOME/runs)")
]
FirstStageOpt = Annotated[str, typer.Option(help="first-stage retrieval: dense | bm25 | hybrid")]


def _reranker(
    settings: Settings, policy: str | None, model: str | None, api_base: str | None, **options: Any
) -> Any:
    from rearag.policies.reranker import Reranker

    return Reranker(policy, model, settings=settings, api_base=api_base, **options)


@app.command()
def rerank(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="the question the passages should answer")],
    collection: CollectionOpt = None,
    policy: PolicyOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    first_stage: FirstStageOpt = "hybrid",
    depth: Annotated[
        int | None, typer.Option(help="first-stage candidates to rerank (default: config)")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="results shown")] = 20,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="generation budget per window (default: the policy's)")
    ] = None,
    show_reasoning: Annotated[
        bool, typer.Option("--show-reasoning", help="print each window's reasoning")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Retrieve candidates, then rerank them with a listwise LLM policy."""
    from rearag.tools.retriever import Retriever

    settings = settings_of(ctx, collection=collection)
    reranker = _reranker(settings, policy, model, api_base, max_new_tokens=max_new_tokens)
    depth = depth or reranker.config.depth
    hits = Retriever(settings=settings).search(query, k=depth, mode=first_stage)  # type: ignore[arg-type]
    ranked = reranker.rank(query, hits)
    if as_json:
        data = ranked.model_dump()
        data["results"] = [r.model_dump() for r in ranked.top_k(top_k)]
        print_json(data)
        return
    for r in ranked.top_k(top_k):
        title = r.passage().label
        moved = f"(was {r.original_rank})" if r.original_rank != r.rank else ""
        out.print(f"[bold]{r.rank}.[/bold] [cyan]{title}[/cyan] {moved}", highlight=False)
        _print_snippet(r.text)
    for w in ranked.windows:
        out.print(
            f"window [{w.start + 1}-{w.end}]: {w.status}" + (f" ({w.error})" if w.error else ""),
            markup=False,
            highlight=False,
        )
        if show_reasoning:
            out.print(f"   reasoning: {w.reasoning or '(none)'}", markup=False)
            out.print(f"   output: {w.output!r}", markup=False)


def _print_answer(answer: Any) -> None:
    out.print()
    out.print(answer.answer, markup=False, highlight=False)
    if answer.sources:
        out.print("\n[bold]Sources[/bold]")
        cited = {c.number for c in answer.citations}
        for i, p in enumerate(answer.sources, start=1):
            mark = "*" if i in cited else " "
            out.print(
                f" {mark}[{i}] {p.title or Path(p.source).name}  ({p.source})",
                markup=False,
                highlight=False,
            )
    for error in answer.errors:
        stderr_line(f"note: {error}")


def _agent(ctx: typer.Context, collection: str | None) -> Any:
    from rearag.agent.rag import RAGAgent

    settings = settings_of(ctx, collection=collection)
    return RAGAgent(settings)


def _ask(agent: Any, question: str, thread: str | None, show_steps: bool) -> Any:
    """Run the graph; with `show_steps`, print each step and the answer's tokens as drafted."""
    from rearag.agent.rag import describe_step

    answer, drafting = None, False
    for node, update in agent.stream(question, thread_id=thread, tokens=show_steps):
        if node == "token":
            if not drafting:
                sys.stdout.write("· draft: ")
                drafting = True
            sys.stdout.write(update["text"])
            sys.stdout.flush()
            continue
        if drafting:
            sys.stdout.write("\n")
            drafting = False
        if node == "answer":
            answer = update["answer"]
        elif show_steps:
            out.print(f"[dim]· {describe_step(node, update)}[/dim]", highlight=False)
    return answer


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="the question")],
    collection: CollectionOpt = None,
    thread: Annotated[
        str | None, typer.Option(help="conversation id: earlier turns are remembered")
    ] = None,
    show_steps: Annotated[bool, typer.Option("--show-steps", help="print each step")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from a collection, with citations."""
    agent = _agent(ctx, collection)
    answer = _ask(agent, question, thread, show_steps and not as_json)
    if as_json:
        print_json(answer.model_dump())
    else:
        _print_answer(answer)


@app.command()
def chat(
    ctx: typer.Context,
    collection: CollectionOpt = None,
    thread: Annotated[str | None, typer.Option(help="conversation id to continue")] = None,
    show_steps: Annotated[bool, typer.Option("--show-steps", help="print each step")] = False,
) -> None:
    """Chat with a collection in the terminal; the conversation survives restarts."""
    import uuid

    agent = _agent(ctx, collection)
    thread = thread or uuid.uuid4().hex[:12]
    out.print(
        f"thread {thread} (continue later with --thread {thread}); empty line or Ctrl-D to quit",
        markup=False,
    )
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if question in ("", "exit", "quit"):
            break
        try:
            _print_answer(_ask(agent, question, thread, show_steps))
        except RearagError as exc:
            stderr_line(f"error: {exc}")


@app.command()
def graph() -> None:
    """Print the agent graph as a Mermaid diagram."""
    from rearag.agent.graph import build_graph

    out.print(build_graph(None).get_graph().draw_mermaid(), markup=False, highlight=False)


@app.command()
def demo(
    ctx: typer.Context,
    question: Annotated[
        str, typer.Option(help="the question asked")
    ] = "How do I use a Chroma server instead of the embedded store?",
) -> None:
    """Ingest the bundled demo corpus (documents about rearag) and ask it a question."""
    import rearag.demos
    from rearag.tools.ingest import ingest as run_ingest
    from rearag.tools.store import Store

    corpus = Path(rearag.demos.__file__).parent / "corpus"  # shipped in the wheel too
    # The bundled 135M model cannot judge relevance (it answers "no" to everything), so the
    # demo grades with the score check; a capable grader model needs no such override.
    settings = settings_of(ctx, collection="rearag-demo", **{"grader.use_model": False})
    report = run_ingest([corpus], Store(settings, "rearag-demo", create=True), progress=True)
    out.print(
        f"demo corpus: {report.documents} documents, {report.chunks_total} chunks in "
        f"collection rearag-demo under {settings.home}",
        markup=False,
        highlight=False,
    )
    out.print(
        "grading uses the score check (grader.use_model = false): the bundled 135M "
        "model cannot judge relevance",
        markup=False,
        highlight=False,
    )
    out.print(f"\n[bold]Q:[/bold] {question}", highlight=False)
    from rearag.agent.rag import RAGAgent

    _print_answer(_ask(RAGAgent(settings), question, None, True))


@app.command()
def serve(
    ctx: typer.Context,
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="collection served as a model; repeatable"),
    ] = None,
    host: Annotated[str | None, typer.Option(help="interface (default: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: 8000)")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="require Bearer KEY (safer: $REARAG_SERVE__API_KEY)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="processes, each loads the models")] = 1,
) -> None:
    """Serve collections over an OpenAI-compatible HTTP API, with a chat page at /."""
    from rearag.agent.serve import run_server

    flags = {"serve.host": host, "serve.port": port, "serve.api_key": api_key}
    settings = settings_of(ctx, **flags)
    run_server(settings, collection or [settings.collection], workers)


@app.command()
def mcp(ctx: typer.Context, collection: CollectionOpt = None) -> None:
    """Serve search, rerank and ask as MCP tools over stdio."""
    from rearag.agent.mcp_server import run_mcp

    run_mcp(settings_of(ctx, collection=collection))


@collections_app.command("list")
def collections_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List collections with their chunk counts."""
    from rearag.tools.store import list_collections, make_client

    client = make_client(settings_of(ctx))
    rows = [
        {"name": n, "chunks": client.get_collection(n).count()} for n in list_collections(client)
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        out.print(f"{row['name']}\t{row['chunks']}", markup=False)


@collections_app.command("delete")
def collections_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="collection to delete")],
    as_json: JsonOpt = False,
) -> None:
    """Delete a collection and its BM25 index."""
    from rearag.tools.store import Store

    Store(settings_of(ctx), name).drop()
    if as_json:
        print_json({"deleted": name})
    else:
        out.print(f"deleted {name}", markup=False)


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Print the effective configuration (file < environment < flags)."""
    data = settings_of(ctx).model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    import tomli_w

    out.print(tomli_w.dumps(_drop_none(data)), markup=False, highlight=False)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _drop_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None
    }


@eval_app.command("retrieval")
def eval_retrieval(
    ctx: typer.Context,
    dataset: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    ],
    mode: Annotated[
        list[str] | None, typer.Option(help="dense | bm25 | hybrid | all (repeatable)")
    ] = None,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a judged dataset (cached by fingerprint) and report nDCG@10 and Recall@100."""
    from rearag.core.config import SearchMode
    from rearag.eval.retrieval import evaluate_retrieval

    modes = list(SearchMode) if not mode or "all" in mode else mode
    settings = settings_of(ctx)
    results = evaluate_retrieval(dataset, settings, modes, run_dir, progress=not as_json)
    if as_json:
        print_json([r.model_dump() for r in results])
        return
    table = Table(title=f"retrieval on {dataset}")
    for col in ("mode", "nDCG@10", "Recall@100", "queries"):
        table.add_column(col)
    for r in results:
        table.add_row(r.mode, f"{r.ndcg_10:.4f}", f"{r.recall_100:.4f}", str(r.queries))
    out.print(table)
    for r in results:
        out.print(
            f"run file ({r.mode}): {r.run_file}", markup=False, highlight=False, soft_wrap=True
        )


@eval_app.command("qa")
def eval_qa(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help='JSONL: {"question": ..., "answers": [...]}')],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exact match, token F1, abstention rate and citation validity of the agent's answers."""
    from rearag.eval.qa import evaluate_qa, load_items

    items = load_items(dataset)
    result = evaluate_qa(_agent(ctx, collection), items, progress=not as_json)
    if as_json:
        print_json(result.model_dump())
        return
    for key, value in result.model_dump().items():
        out.print(
            f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}", markup=False
        )


@eval_app.command("rerank")
def eval_rerank(
    ctx: typer.Context,
    dataset: Annotated[
        Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    ],
    policy: PolicyOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    first_stage: FirstStageOpt = "hybrid",
    depth: Annotated[int, typer.Option(help="first-stage documents reranked per query")] = 20,
    queries: Annotated[int | None, typer.Option(help="evaluate the first N judged queries")] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="generation budget per window (default: the policy's)")
    ] = None,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rerank first-stage results of a judged dataset: nDCG@10 before and after."""
    from rearag.eval.rerank import evaluate_rerank

    settings = settings_of(ctx)
    reranker = _reranker(settings, policy, model, api_base, max_new_tokens=max_new_tokens)
    result = evaluate_rerank(
        dataset,
        settings,
        reranker,
        first_stage=first_stage,
        depth=depth,
        max_queries=queries,
        run_dir=run_dir,
        progress=not as_json,
    )
    if as_json:
        print_json(result.model_dump())
        return
    table = Table(title=f"{result.policy} on {dataset} ({result.queries} queries)")
    for col in ("first stage", "nDCG@10 before", "nDCG@10 after", "windows", "s/query"):
        table.add_column(col)
    table.add_row(
        f"{result.first_stage} top {result.depth}",
        f"{result.ndcg_10_before:.4f}",
        f"{result.ndcg_10_after:.4f}",
        ", ".join(f"{k} {v}" for k, v in sorted(result.window_status.items())),
        f"{result.seconds_per_query:.1f}",
    )
    out.print(table)
    out.print(f"run file: {result.run_file}", markup=False, highlight=False)


def main() -> None:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app()
    except RearagError as exc:
        stderr_line(f"error: {exc}")
        sys.exit(1)
