"""Shared fixtures. Tests never reach a network: hubs are switched off before anything loads."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "ANONYMIZED_TELEMETRY": "False",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)

from rearag.agent.config import Settings, load_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RAGBIN = Path(sys.executable).with_name("rearag")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty REARAG_HOME, and a working folder without a rearag.toml."""
    home = tmp_path / "home"
    monkeypatch.setenv("REARAG_HOME", str(home))
    monkeypatch.delenv("REARAG_CONFIG", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A small folder of documents about distinct topics."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "volcano.md").write_text(
        "# Volcanoes\n\nA volcano is a rupture in the crust of a planet where lava, volcanic ash "
        "and gases escape from a magma chamber below the surface.\n"
    )
    (folder / "bread.txt").write_text(
        "Sourdough bread is leavened by a culture of wild yeast and lactic acid bacteria. "
        "Bakers feed the starter with flour and water before mixing the dough.\n"
    )
    (folder / "chess.html").write_text(
        "<html><head><title>Chess openings</title><style>p {color: red}</style></head>"
        "<body><h1>Openings</h1><p>The Sicilian Defence answers 1.e4 with 1...c5, fighting "
        "for the centre from the flank.</p><script>var x = 1;</script></body></html>"
    )
    return folder
