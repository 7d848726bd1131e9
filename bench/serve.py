"""Load test of `rearag serve` on loopback: N concurrent clients x M questions each, every client
in its own conversation thread, against a real server subprocess over the demo corpus.

    .venv/bin/python bench/serve.py [--clients 8] [--questions 5] [--llm scripted|local]
                                    [--stream-runs 5] [--word-delay 0.03] [--replicas]

`--llm scripted` (default) sends every LLM node to a scripted OpenAI-compatible server on
127.0.0.1 that answers at once, so the numbers are the cost of rearag itself: HTTP, the graph,
retrieval (the real MiniLM embedder and Chroma), checkpointing. Its generator names the
question it was asked and the earlier questions of the conversation it was shown, so every
answer is checked against its own question and thread. `--llm local` runs the embedded
defaults (bundled SmolLM2-135M for every node: evidence-score grading, extracted answers):
seconds per answer on a CPU; answers are checked by question and thread id.

Then `--stream-runs` streamed questions from the `openai` client, one at a time: the time to the
first `delta.content` against the time to the final chunk (when the whole answer, and before
this streaming, its first content, arrived). With `--llm scripted` the generator streams its
three-sentence answer a word every `--word-delay` seconds, like a hosted model decoding.

`--replicas` (scripted) instead deploys as the README's "Deploying replicas" does: a real
PostgreSQL for conversations and a `chroma run` server for the chunks, then 1 and 2 `rearag
serve` replicas with their own homes; with two, each client's questions alternate between the
replicas, so every turn reads the history the other replica wrote.

Prints and writes bench/results/serve.md (scripted), bench/results/serve-local.md (local) or
bench/results/serve-replicas.md (replicas).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common  # first: the offline, one-thread environment before any model library
import httpx

from rearag.agent import prompts
from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store
from tests.fakes.chroma import chroma_server
from tests.fakes.cli import RAGBIN
from tests.fakes.net import free_port
from tests.fakes.openai_server import Script, serve
from tests.fakes.postgres import postgres_server

RESULTS = common.RESULTS
CORPUS = common.DEMO_CORPUS
COLLECTION = "bench-serve"
QUESTIONS = common.DEMO_QUESTIONS


ASKED = re.compile(r"\(client (\d+), question (\d+)\)")


def scripted_reply(messages: list[dict[str, str]]) -> str:
    """One reply per node, chosen by its system prompt. The generator names the question it
    was asked and the earlier questions it was shown as "client-question" numbers (too short
    to count as words, so the sentence its passage supports still passes the citation check)."""
    system, user = messages[0]["content"], messages[-1]["content"]
    if system == prompts.REWRITE_SYSTEM:  # the latest question, without its numbers
        latest = re.search(r"Latest question: (.*?) \(client", user)
        return latest.group(1) if latest else "rearag"
    if system == prompts.GRADE_SYSTEM:
        return "yes"
    if system == prompts.GENERATE_SYSTEM:
        passage = re.search(r'<passage number="1">(.*?)</passage>', user, re.S)
        sentences = re.split(r"(?<=[.!?])\s+", passage.group(1).strip()) if passage else [""]
        first, more = sentences[0], " ".join(f"{s.rstrip('.!?')} [1]." for s in sentences[1:3])
        question = re.search(r"Question: (.*)\n", user)
        asked = ASKED.search(question.group(1)) if question else None
        earlier = [ASKED.search(line) for line in re.findall(r"^user: (.*)$", user, re.M)]
        ids = [f"{m.group(1)}-{m.group(2)}" for m in earlier if m]
        now = f"{asked.group(1)}-{asked.group(2)}" if asked else "?"
        return f"{first.rstrip('.!?')} (Q {now} || {' | '.join(ids)} ||) [1]. {more}".strip()
    return "[1] > [2] > [3]"  # rerank


def question_for(client: int, j: int) -> str:
    return f"{QUESTIONS[j % len(QUESTIONS)]} (client {client}, question {j})"


def check(body: dict, client: int, j: int, thread: str, scripted: bool) -> bool:
    """Whether the answer is the one for this client's j-th question, in its own thread."""
    extra = body["rearag"]
    if extra["question"] != question_for(client, j) or extra["thread_id"] != thread:
        return False
    if not scripted:
        return True
    # The conversation the generator saw: this client's own earlier questions, in order.
    content = body["choices"][0]["message"]["content"]
    if "(Q " not in content:
        return False
    question, earlier, _ = content.split("(Q ", 1)[1].split(" ||", 2)
    seen = [q.strip() for q in earlier.split(" | ") if q.strip()]
    # The generator is shown the last generator.history_turns turns (6): 3 earlier questions.
    own = [f"{client}-{i}" for i in range(j)][-3:]
    return question == f"{client}-{j}" and seen == own


def run_load(urls: str | list[str], clients: int, questions: int, scripted: bool, tag: str) -> dict:
    """`clients` at once, each asking `questions` in its own thread; with several `urls`
    (replicas), a client's j-th question goes to the next one in turn."""
    urls = [urls] if isinstance(urls, str) else urls
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one_client(c: int) -> None:
        thread = f"{tag}-{c}"
        with httpx.Client(timeout=3600) as http:
            for j in range(questions):
                body = {
                    "model": COLLECTION,
                    "messages": [{"role": "user", "content": question_for(c, j)}],
                }
                url = urls[(c + j) % len(urls)]
                start = time.perf_counter()
                resp = http.post(
                    url + "/v1/chat/completions", json=body, headers={"X-Thread-Id": thread}
                )
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if resp.status_code != 200:
                        failures.append(f"client {c} q {j}: HTTP {resp.status_code}")
                    elif not check(resp.json(), c, j, thread, scripted):
                        failures.append(f"client {c} q {j}: mixed up")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one_client, range(clients)))
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "clients": clients,
        "questions": questions,
        "requests": len(latencies),
        "failures": failures,
        "p50": statistics.median(latencies),
        # Rank round(0.95 n), 1-based, as this report has always used (common.percentile
        # rounds the 0-based rank instead); kept so its numbers compare with earlier runs.
        "p95": latencies[max(0, round(0.95 * len(latencies)) - 1)],
        "max": latencies[-1],
        "throughput": len(latencies) / wall,
        "wall": wall,
    }


def run_stream(url: str, runs: int) -> dict:
    """Streamed questions with the openai client: seconds to the first content delta and to the
    final chunk, medians."""
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=3600)
    firsts, totals = [], []
    for j in range(runs):
        start, first = time.perf_counter(), None
        stream = client.chat.completions.create(
            model=COLLECTION,
            messages=[{"role": "user", "content": question_for(99, j)}],
            stream=True,
        )
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        firsts.append(total if first is None else first)
        totals.append(total)
    first, total = statistics.median(firsts), statistics.median(totals)
    return {"runs": runs, "first": first, "total": total}


def scripted_nodes(base: str) -> dict[str, str]:
    """Every LLM node on the scripted server at `base`."""
    env = {"REARAG_RERANKER__POLICY": "rankgpt"}
    for node in ("REWRITER", "GRADER", "GENERATOR", "RERANKER"):
        env[f"REARAG_{node}__MODEL"] = "litellm:openai/scripted"
        env[f"REARAG_{node}__API_BASE"] = base
    return env


def start_serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`rearag serve` on a free port, once /health answers; (process, URL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(RAGBIN), "serve", "-c", COLLECTION, "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    while True:
        if server.poll() is not None:
            sys.exit(f"rearag serve exited; see {log}")
        try:
            if httpx.get(url + "/health").status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--llm", choices=["scripted", "local"], default="scripted")
    parser.add_argument("--stream-runs", type=int, default=5)
    parser.add_argument("--word-delay", type=float, default=0.03)
    parser.add_argument("--replicas", action="store_true", help="1 vs 2 replicas (scripted)")
    args = parser.parse_args()
    if args.replicas:
        replicas(args)
        return
    scripted = args.llm == "scripted"
    home = common.bench_home()
    env = {**os.environ, "REARAG_HOME": str(home), "REARAG_CONFIG": ""}
    if scripted:
        script = Script(default=scripted_reply)
        httpd, base = serve(script)
        env |= scripted_nodes(base)
    else:
        env["REARAG_SERVE__REQUEST_TIMEOUT_S"] = "3600"
    settings = load_settings(home=home)
    ingest([CORPUS], Store(settings, COLLECTION, create=True), progress=False)

    server, url = start_serve(env, home / "serve.log")
    try:
        run_load(url, 1, 1, scripted, "warm-up")  # first litellm call, model loading
        rows = [run_load(url, 1, args.questions, scripted, "solo")]
        if args.clients > 1:
            rows.append(run_load(url, args.clients, args.questions, scripted, "load"))
        if scripted:
            script.word_delay_s = args.word_delay
        streamed = run_stream(url, args.stream_runs)
    finally:
        server.terminate()
        server.wait(timeout=60)
        if scripted:
            httpd.shutdown()

    what = (
        "every LLM node on a scripted OpenAI-compatible server on 127.0.0.1 that answers at "
        "once (so this measures rearag's own cost: HTTP, graph, MiniLM query embedding, hybrid "
        "search, SQLite checkpoints; a real model adds its own latency per node)"
        if scripted
        else "embedded defaults: bundled SmolLM2-135M on the CPU (evidence-score grading, "
        "extracted answers, the rewriter for follow-ups only); local models run one request at "
        "a time (torch lock)"
    )
    lines = [
        "# Serving under load",
        "",
        f"`python bench/serve.py --llm {args.llm} --clients {args.clients} --questions "
        f"{args.questions}`: a `rearag serve` subprocess over the demo corpus, clients on "
        f"loopback, each in its own thread (X-Thread-Id), non-streaming requests; {what}. "
        f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
        "shared machine. An answer counts as mixed up unless it names its own question and "
        "thread"
        + (" and the generator saw exactly its own earlier questions." if scripted else "."),
        "",
        "| clients | questions each | requests | failed or mixed up | p50 s | p95 s | max s "
        "| requests/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['clients']} | {r['questions']} | {r['requests']} | {len(r['failures'])} "
            f"| {r['p50']:.3f} | {r['p95']:.3f} | {r['max']:.3f} | {r['throughput']:.2f} |"
        )
    paced = (
        f"the generator streams its three sentences a word every {args.word_delay:g} s"
        if scripted
        else "the bundled model's answers are extracted, so they come in one piece at the end"
    )
    lines += [
        "",
        "## Streaming: time to the first content token",
        "",
        f"{streamed['runs']} streamed questions, one at a time, from the `openai` client; {paced}. "
        "Before content was streamed sentence by sentence, the first content arrived with the "
        "final chunk.",
        "",
        "| first content, median s | final chunk, median s | first / final |",
        "| ---: | ---: | ---: |",
        f"| {streamed['first']:.3f} | {streamed['total']:.3f} "
        f"| {streamed['first'] / streamed['total']:.2f} |",
    ]
    failures = [f for r in rows for f in r["failures"]]
    lines += ["", *(f"- {f}" for f in failures[:20]), ""] if failures else [""]
    common.write_results(RESULTS / ("serve.md" if scripted else "serve-local.md"), "\n".join(lines))
    if failures:
        sys.exit(1)


def replicas(args: argparse.Namespace) -> None:
    """1 and 2 replicas on one Chroma server and one PostgreSQL, scripted LLM nodes, after
    the baseline: one server on the embedded store and SQLite."""
    folder = common.bench_home("rearag-replicas-")
    script = Script(default=scripted_reply)
    httpd, base = serve(script)
    rows: dict[str, dict] = {}
    embedded = folder / "embedded"
    ingest([CORPUS], Store(load_settings(home=embedded), COLLECTION, create=True), progress=False)
    env = {**os.environ, "REARAG_CONFIG": "", "REARAG_HOME": str(embedded), **scripted_nodes(base)}
    server, url = start_serve(env, folder / "embedded.log")
    try:
        run_load(url, 1, 1, True, "warm-up")
        rows["1, embedded (SQLite, local Chroma)"] = run_load(
            url, args.clients, args.questions, True, "embedded"
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    with (
        postgres_server(folder / "postgres") as postgres,
        chroma_server(folder / "chroma") as (chroma_port, _),
        contextlib.ExitStack() as running,
    ):
        shared = {
            "REARAG_CONFIG": "",
            "REARAG_STORE__CHROMA_HOST": "127.0.0.1",
            "REARAG_STORE__CHROMA_PORT": str(chroma_port),
            "REARAG_AGENT__CHECKPOINTER": postgres.url,
            **scripted_nodes(base),
        }
        settings = load_settings(
            home=folder / "writer",
            **{"store.chroma_host": "127.0.0.1", "store.chroma_port": chroma_port},
        )
        ingest([CORPUS], Store(settings, COLLECTION, create=True), progress=False)
        urls = []
        for n in (1, 2):
            while len(urls) < n:
                name = f"host-{len(urls) + 1}"
                env = {**os.environ, **shared, "REARAG_HOME": str(folder / name)}
                server, url = start_serve(env, folder / f"{name}.log")
                running.callback(server.wait, timeout=60)
                running.callback(server.terminate)
                run_load(url, 1, 1, True, f"warm-up-{name}")
                urls.append(url)
            rows[f"{n}, shared (Postgres, Chroma server)"] = run_load(
                urls, args.clients, args.questions, True, f"replicas-{n}"
            )
    httpd.shutdown()

    lines = [
        "# Serving from replicas",
        "",
        f"`python bench/serve.py --replicas --clients {args.clients} --questions "
        f"{args.questions}`: first one `rearag serve` on the embedded defaults (SQLite and "
        "Chroma under its home) as the baseline; then a real PostgreSQL (conversations) and a "
        "`chroma run` server (chunks, the demo corpus) on loopback with 1, then 2 `rearag "
        "serve` replicas, each with its own `REARAG_HOME`; every LLM node on a scripted server "
        "that answers at once. "
        f"{args.clients} clients at once, each in its own thread; with 2 replicas a client's "
        "questions alternate between them, so each turn reads the history the other replica "
        "wrote. An answer counts as mixed up unless it names its own question and thread and "
        "the generator saw exactly its own earlier questions.",
        "",
        "| replicas, store | requests | failed or mixed up | p50 s | p95 s | max s | requests/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, r in rows.items():
        lines.append(
            f"| {n} | {r['requests']} | {len(r['failures'])} | {r['p50']:.3f} "
            f"| {r['p95']:.3f} | {r['max']:.3f} | {r['throughput']:.2f} |"
        )
    base_rate, one, two = (r["throughput"] for r in rows.values())
    lines += [
        "",
        f"One replica on the shared parts gives {one / base_rate:.2f}x the requests/s of the "
        f"embedded server (the price of the network hops to Postgres and Chroma); two give "
        f"{two / one:.2f}x the requests/s of one. On this machine "
        f"({common.cpu_name()}, {os.cpu_count()} cores) both replicas, PostgreSQL, Chroma and "
        "the clients share the same cores, so the point is correctness and the overhead of the "
        "shared parts, not scaling: on separate hosts each replica brings its own cores.",
    ]
    failures = [f for r in rows.values() for f in r["failures"]]
    lines += ["", *(f"- {f}" for f in failures[:20]), ""] if failures else [""]
    common.write_results(RESULTS / "serve-replicas.md", "\n".join(lines))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
