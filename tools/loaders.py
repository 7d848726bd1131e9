"""Reading documents from files: .txt, .md, .html, .pdf and BEIR-style .jsonl corpora.

A file that cannot be used (empty, binary, not UTF-8, too large, broken PDF) raises `SkipFile`
with the reason; the ingest reports it and goes on with the other files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from rearag.core.errors import NotFoundError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl"}


class SourceDoc(BaseModel):
    """One document: a whole file, or one record of a .jsonl corpus."""

    source: str  # resolved file path
    doc_id: str  # the file path, or the record's `_id` in a .jsonl corpus
    title: str
    text: str


class Loaded(BaseModel):
    docs: list[SourceDoc]
    warning: str = ""  # e.g. malformed lines of a .jsonl file that were left out


class SkipFile(Exception):
    """A file is unusable; the message is the reason shown to the user."""


def check_paths_exist(paths: Iterable[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise NotFoundError(f"path not found: {', '.join(missing)} (nothing was ingested)")


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Supported files under `paths` (folders are walked) and the explicitly named files that
    are not supported. A path that does not exist is an error before anything is touched."""
    paths = list(paths)
    check_paths_exist(paths)
    files: list[Path] = []
    unsupported: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUPPORTED_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            files.append(path)
        else:
            unsupported.append(path)
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, unsupported


def load_file(path: Path, max_bytes: int) -> Loaded:
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty file")
    if size > max_bytes:
        raise SkipFile(
            f"{size / 1e6:.1f} MB is over the limit of {max_bytes / 1e6:.1f} MB "
            "(raise ingest.max_file_mb to ingest it)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SkipFile(f"cannot read: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    source = str(path)
    if suffix == ".pdf":
        return _one(source, *_read_pdf(data))
    text = _decode(data)
    if suffix in HTML_SUFFIXES:
        return _one(source, *_read_html(text))
    if suffix == ".jsonl":
        return _read_jsonl(source, text)
    return _one(source, _markdown_title(text) if suffix != ".txt" else "", text)


def _one(source: str, title: str, text: str) -> Loaded:
    if not text.strip():
        raise SkipFile("no text in it")
    return Loaded(docs=[SourceDoc(source=source, doc_id=source, title=title, text=text)])


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise SkipFile("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(
            f"not UTF-8 text (bad byte at offset {exc.start}); convert it, e.g. "
            "`iconv -f latin1 -t utf-8`"
        ) from None


def _markdown_title(text: str) -> str:
    for line in text.splitlines()[:50]:
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def _read_html(html: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return title, "\n".join(line for line in lines if line)


def _read_pdf(data: bytes) -> tuple[str, str]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata or {}).get("/Title") or "")
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise SkipFile(f"unreadable PDF: {exc}") from None
    if not any(p.strip() for p in pages):
        raise SkipFile("PDF has no extractable text (scanned images need OCR first)")
    return title, "\n\n".join(pages)


def _read_jsonl(source: str, text: str) -> Loaded:
    """BEIR corpus layout: one {"_id", "title", "text"} object per line."""
    docs: list[SourceDoc] = []
    bad: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            doc_id, body = str(rec["_id"]), rec.get("text") or ""
            title = rec.get("title") or ""
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            bad.append(lineno)
            continue
        if isinstance(body, str) and body.strip():
            docs.append(SourceDoc(source=source, doc_id=doc_id, title=str(title), text=body))
    if not docs:
        raise SkipFile('no usable records: expected one {"_id", "title", "text"} object a line')
    warning = f"{len(bad)} malformed line(s) left out, first at line {bad[0]}" if bad else ""
    return Loaded(docs=docs, warning=warning)
