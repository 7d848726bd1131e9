"""`rearag ask`, `chat`, `graph` and `demo`: the agent in the terminal."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from rearag.cli.common import (
    CollectionOpt,
    JsonOpt,
    StrategyOpt,
    WhereOpt,
    out,
    print_json,
    settings_of,
    stderr_line,
)
from rearag.core.errors import RearagError
from rearag.core.filters import Where

if TYPE_CHECKING:
    from rearag.agent.rag import RAGAgent
    from rearag.core.config import Settings
    from rearag.core.types import Answer

ShowStepsOpt = Annotated[bool, typer.Option("--show-steps", help="print each step")]

# What ends `rearag chat` instead of being asked (the slash forms as in other terminal chats).
LEAVE_CHAT = {"", "exit", "quit", "/exit", "/quit"}


def agent_of(ctx: typer.Context, collection: str | None, strategy: str | None = None) -> RAGAgent:
    from rearag.agent.rag import RAGAgent

    return RAGAgent(settings_of(ctx, collection=collection, **{"reranker.strategy": strategy}))


def run_question(
    agent: RAGAgent,
    question: str,
    thread: str | None,
    show_steps: bool,
    where: Where | None = None,
) -> Answer:
    """The answer, by the path `RAGAgent.ask` takes (its `stream` to the end); with
    `show_steps`, each step and the answer's tokens as drafted are printed on the way."""
    from rearag.agent.rag import describe_step

    answer, drafting = None, False
    events = agent.stream(question, thread_id=thread, tokens=show_steps, where=where)
    for node, update in events:
        if node == "content":
            continue  # the checked answer, printed whole at the end
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
            step = describe_step(node, update, reranks_with_model=agent.reranks_with_model)
            out.print(f"· {step}", style="dim", markup=False, highlight=False)
    assert answer is not None  # stream() always ends with the answer
    return answer


def print_answer(answer: Answer) -> None:
    """The answer for a person at the terminal, not `agent.answer_text.message_text` (what
    chat clients get, as plain text): here the note that an extractive answer is quoted can be
    dimmed, and every source the generator was shown is listed, the cited ones starred; a chat
    message names only the sources it cites. Each source shows where it is (path, page), as
    titles may repeat."""
    out.print()
    if answer.mode == "extractive":
        out.print("[dim](extracted from the sources)[/dim]", highlight=False)
    out.print(answer.answer, markup=False, highlight=False)
    if answer.sources:
        out.print("\n[bold]Sources[/bold]")
        cited = {c.number for c in answer.citations}
        for i, p in enumerate(answer.sources, start=1):
            mark = "*" if i in cited else " "
            out.print(f" {mark}[{i}] {p.label}  ({p.location})", markup=False, highlight=False)
    for error in answer.errors:
        stderr_line(f"note: {error}")


def weak_models_note(settings: Settings) -> str | None:
    """One line saying which LLM nodes run on a model too weak to trust, and what it means."""
    from rearag.core.model_ref import is_weak

    nodes = {
        name: getattr(settings, name).model
        for name in ("rewriter", "reranker", "grader", "generator")
        # A reranker that keeps the first-stage order never calls its model (it says so).
        if name != "reranker" or settings.reranker.use_model
    }
    weak = sorted({m for m in nodes.values() if is_weak(m)})
    if not weak:
        return None
    return (
        f"note: {', '.join(weak)} is a very small model: what it writes is checked, the "
        "evidence score grades and answers are extracted from the sources; set "
        "generator.model and grader.model to a capable model for written answers"
    )


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="the question")],
    collection: CollectionOpt = None,
    thread: Annotated[
        str | None, typer.Option(help="conversation id: earlier turns are remembered")
    ] = None,
    show_steps: ShowStepsOpt = False,
    strategy: StrategyOpt = None,
    where: WhereOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from a collection, with citations."""
    condition = Where.from_cli(where or [])  # a malformed one fails before models load
    agent = agent_of(ctx, collection, strategy)
    note = None if as_json else weak_models_note(agent.settings)
    if note:
        stderr_line(note)
    answer = run_question(agent, question, thread, show_steps and not as_json, condition)
    if as_json:
        print_json(answer.model_dump())
    else:
        print_answer(answer)


def chat(
    ctx: typer.Context,
    collection: CollectionOpt = None,
    thread: Annotated[str | None, typer.Option(help="conversation id to continue")] = None,
    show_steps: ShowStepsOpt = False,
    strategy: StrategyOpt = None,
    where: WhereOpt = None,
) -> None:
    """Chat with a collection in the terminal; the conversation survives restarts."""
    import uuid

    condition = Where.from_cli(where or [])
    agent = agent_of(ctx, collection, strategy)
    note = weak_models_note(agent.settings)
    if note:
        stderr_line(note)
    thread = thread or uuid.uuid4().hex[:12]
    out.print(
        f"thread {thread} (continue later with --thread {thread}); /exit, an empty line or "
        "Ctrl-D to quit",
        markup=False,
    )
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            out.print()  # the prompt's line ends: the shell's prompt starts on its own
            break
        if question.lower() in LEAVE_CHAT:
            break
        try:
            print_answer(run_question(agent, question, thread, show_steps, condition))
        except RearagError as exc:  # a bad question ends that turn, not the chat
            stderr_line(f"error: {exc}")


def graph() -> None:
    """Print the agent graph as a Mermaid diagram."""
    from rearag.agent.graph import build_graph

    out.print(build_graph(None).get_graph().draw_mermaid(), markup=False, highlight=False)


def demo(
    ctx: typer.Context,
    question: Annotated[str, typer.Option(help="the question asked")] = (
        "How do I use a Chroma server instead of the embedded store?"
    ),
) -> None:
    """Ingest the bundled demo corpus (documents about rearag) and ask it a question."""
    from rearag.agent.demo import DEMO_COLLECTION, prepare_demo
    from rearag.agent.rag import RAGAgent

    settings, report = prepare_demo(settings_of(ctx))
    out.print(
        f"demo corpus: {report.documents} documents, {report.chunks_total} chunks in "
        f"collection {DEMO_COLLECTION} under {settings.home}",
        markup=False,
        highlight=False,
    )
    out.print(
        "the bundled 135M model rewrites and drafts here, which `rearag ask` does not ask of "
        "it; what it writes is checked. Grading is by evidence score: asked, the model says "
        "no to everything",
        markup=False,
        highlight=False,
    )
    out.print(f"\n[bold]Q:[/bold] {question}", highlight=False)
    print_answer(run_question(RAGAgent(settings), question, None, True))
