"""The base of every request body the server reads: its texts are checked before any field."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, model_validator

from rearag.core.text import lone_surrogate


def _not_bool(value: Any) -> Any:
    # JSON's true would pass as 1: a count must be written as a number (256 or 256.0).
    if isinstance(value, bool):
        raise ValueError("write a number, not true or false")
    return value


Count = Annotated[int, BeforeValidator(_not_bool)]


class ApiRequest(BaseModel):
    """A request body whose every text is valid Unicode: JSON can carry a lone surrogate
    ("\\ud800"), no UTF-8 text can hold one, and a text fails only when an answer quoting it
    is encoded, so bodies are checked whole, up front."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if where := lone_surrogate(data):
            raise ValueError(f"{where} is not valid Unicode text (a lone surrogate)")
        return data
