"""What a conversation thread id may be: one rule for every entry point (the Python API, the
CLI, HTTP and MCP)."""

from __future__ import annotations

from rearag.core.errors import InvalidInputError

MAX_CHARS = 200


def thread_id(value: str | None) -> str | None:
    """`value` as a thread id: None when it is missing, empty or blank (a question without a
    thread, which leaves nothing behind); InvalidInputError when it is too long."""
    if value is None or not value.strip():
        return None
    if len(value) > MAX_CHARS:
        raise InvalidInputError(
            f"the thread id is {len(value)} characters; the limit is {MAX_CHARS}: use a shorter one"
        )
    return value
