"""An answer as plain text: the one rendering chat clients and tools receive. The terminal
(`rearag ask`) renders its own, listing every source the generator was shown."""

from __future__ import annotations

from rearag.core.types import Answer

EXTRACTED = "Extracted from the sources:"


def message_text(answer: Answer) -> str:
    """The answer as a chat message: the text (said to be quoted when it was extracted), then
    the passages it cites."""
    text = f"{EXTRACTED}\n{answer.answer}" if answer.mode == "extractive" else answer.answer
    if not answer.citations:
        return text
    lines = [
        f"[{c.number}] {c.label} ({', '.join(filter(None, [c.source, c.pages]))})"
        for c in answer.citations
    ]
    return text + "\n\nSources:\n" + "\n".join(lines)
