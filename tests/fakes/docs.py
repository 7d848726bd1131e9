"""A small folder of documents about distinct topics (the `docs` fixture's)."""

from __future__ import annotations

from pathlib import Path


def write_docs(folder: Path) -> Path:
    """A small folder of documents about distinct topics."""
    folder.mkdir(parents=True)
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
