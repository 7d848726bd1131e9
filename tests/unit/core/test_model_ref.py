"""Model references: `local:`, `hf:`, `litellm:` and `policy:` names, and what is not one."""

from __future__ import annotations

import pytest

from rearag.core.errors import RearagError
from rearag.core.model_ref import parse_model_ref


def test_model_refs():
    assert str(parse_model_ref("litellm:openai/gpt-4o-mini")) == "litellm:openai/gpt-4o-mini"
    ref = parse_model_ref("hf:/models/my model")
    assert (ref.kind, ref.name) == ("hf", "/models/my model")
    for bad in ("gpt-4o", "ollama:llama3", "local:", ""):
        with pytest.raises(RearagError, match="not understood"):
            parse_model_ref(bad)
