"""The listwise chat prompt shared by every LLM policy (RankGPT's turn layout).

system turn · user turn with the query and the task · one user turn per passage `[i] text`,
each answered by an assistant turn `Received passage [i].` · a final user turn with the
instruction. Policies differ in the system text, the final instruction and the identifiers.
Training (rearag.rl) builds its prompts with these same functions. The query and every passage
go through `clean_passage`, which neutralises chat-template tokens and tags in them
(rearag.core.sanitize): a passage cannot add a turn or forge the reranker's <answer>.
"""

from __future__ import annotations

from rearag.core.sanitize import clean_passage

Message = dict[str, str]


def listwise_messages(
    *,
    system: str,
    query: str,
    passages: list[str],
    labels: list[str],
    final_instruction: str,
    max_chars: int,
) -> list[Message]:
    n = len(passages)
    query = clean_passage(query, 1000)
    messages: list[Message] = [
        {"role": "system", "content": system},
        {
            "role": "user",
            "content": f"I will provide you with {n} passages, each indicated by an identifier "
            f"[]. Rank the passages based on their relevance to the search query: {query}",
        },
        {"role": "assistant", "content": "Okay, please provide the passages."},
    ]
    for label, passage in zip(labels, passages, strict=True):
        messages.append(
            {"role": "user", "content": f"[{label}] {clean_passage(passage, max_chars)}"}
        )
        messages.append({"role": "assistant", "content": f"Received passage [{label}]."})
    messages.append({"role": "user", "content": final_instruction.format(n=n, query=query)})
    return messages


def numeric_labels(n: int) -> list[str]:
    return [str(i) for i in range(1, n + 1)]
