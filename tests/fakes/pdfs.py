"""Real PDFs written byte by byte (no PDF writer dependency): a one-page PDF with a text layer,
and hostile ones that make pypdf raise what a reader must survive."""

import zlib
from pathlib import Path


def write_pdf(path: Path, text: str, title: str = "") -> None:
    info = f"<< /Title ({title}) >>".encode() if title else b"<< >>"
    path.write_bytes(_pdf(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode(), info=info))


def write_info_loop_pdf(path: Path) -> None:
    """A document information dictionary that is a reference to itself (pypdf: AttributeError)."""
    path.write_bytes(_pdf(b"BT /F1 12 Tf 72 720 Td (loop) Tj ET", info=b"6 0 R"))


def write_nested_pdf(path: Path, depth: int = 5000) -> None:
    """A page whose text is `depth` arrays deep (pypdf: RecursionError)."""
    path.write_bytes(_pdf(b"BT /F1 12 Tf 72 720 Td " + b"[" * depth + b"]" * depth + b" TJ ET"))


def write_flate_bomb_pdf(path: Path) -> None:
    """A 350 kB page stream that inflates to 80 MB (pypdf: LimitReachedError at 75 MB)."""
    bomb = zlib.compress(b" " * 80_000_000, 1)
    path.write_bytes(_pdf(bomb, stream_keys=b"/Filter /FlateDecode"))


def _pdf(content: bytes, info: bytes = b"<< >>", stream_keys: bytes = b"") -> bytes:
    """A one-page PDF: `content` is the page's stream, `info` object 6 (the trailer's /Info)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d %s >>\nstream\n" % (len(content), stream_keys) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)
