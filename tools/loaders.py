"""Reading documents from files: plain text (.txt .md .markdown .rst, README-like names
without a suffix, and any other file whose content is text: `README.Debian`,
`changelog.Debian.gz`, `v2.38-ReleaseNotes.gz`), .html, .pdf and BEIR-style .jsonl corpora, each
also gzip-compressed (`FAQ.txt.gz`, `manual.html.gz`: documentation trees are full of them).

`discover` finds the files to read (those `--include`/`--exclude` globs select) and gives every
other file (or hidden folder, or link out of the folder) it meets a reason, so nothing is left
out silently. A file that cannot be used (empty, binary, not UTF-8, too large, broken PDF or
gzip) raises `SkipFile` with the reason; the ingest reports it and goes on with the other files.

The readers that turn a file's contents into text are `_read_text`, `_read_html`, `_read_pdf`
and `_read_jsonl`, each called from `load_file`.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from pydantic import BaseModel, field_validator

from rearag.core.errors import InvalidInputError, NotFoundError
from rearag.core.filters import key_problem
from rearag.core.text import describe, lone_surrogate
from rearag.tools.markup import strip_markup

# "" is a name without a suffix: README, AUTHORS, copyright, changelog.gz in Debian's doc trees.
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ""}
MARKUP_SUFFIXES = {".md", ".markdown", ".rst"}  # titled by their first heading
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl"}
SUPPORTED_HELP = (
    ".txt .md .markdown .rst, names without a suffix (README), .html .htm .xhtml, .pdf, "
    "BEIR .jsonl, any other file whose content is text (README.Debian), and each of them "
    "gzip-compressed (.gz)"
)
# Types that are never documents, text or not: images, print and web assets (Sphinx's _static/
# holds .css and .js), archives, office files, fonts. Left out unopened: a 4-byte PNG stub or a
# PostScript file would pass for text.
NOT_DOCUMENT_SUFFIXES = {
    *(".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico", ".svg", ".tif", ".tiff"),
    *(".ps", ".eps", ".dvi", ".css", ".js", ".mjs", ".map"),
    *(".zip", ".tar", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".jar", ".epub"),
    *(".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp"),
    *(".woff", ".woff2", ".ttf", ".otf"),
}
SNIFF_BYTES = 4096  # how much of a file of another type is read to tell text from binary

# Navigation that documentation generators write as ordinary <div>s and <table>s: texinfo's
# "Next: … Previous: … Up:" panel, DocBook's and Sphinx's header/footer bars. The HTML5 elements
# and ARIA roles cover hand-written pages.
HTML_BOILERPLATE = ", ".join(
    (
        "script, style, noscript, template, nav, header, footer",
        "[role=navigation], [role=banner], [role=contentinfo]",
        "div.header, div.nav-panel",  # texinfo (before 7, and 7)
        "div.navheader, div.navfooter, table[summary^=Navigation]",  # DocBook XSL
        "div.related, div.sphinxsidebar",  # Sphinx
    )
)

OUTSIDE_LINK = "symlink to outside the ingested folder, not followed: use --follow-links"


class SourceDoc(BaseModel):
    """One document: a whole file, or one record of a .jsonl corpus."""

    source: str  # resolved file path
    doc_id: str  # the file path, or the record's `_id` in a .jsonl corpus
    title: str
    text: str
    page_starts: list[int] = []  # PDFs: where each page (1, 2, …) begins in `text`
    metadata: dict[str, str | int | float | bool] = {}  # a .jsonl record's own fields

    @field_validator("doc_id", "title", "text")
    @classmethod
    def _storable(cls, value: str) -> str:
        # JSON escapes and PDF strings can hold lone surrogates, which no hash or store takes.
        # Each becomes one "?", so character offsets stay right.
        if lone_surrogate(value) is None:
            return value
        return value.encode("utf-8", "replace").decode("utf-8")


class Loaded(BaseModel):
    docs: list[SourceDoc]
    warning: str = ""  # e.g. malformed lines of a .jsonl file that were left out


class SkipFile(Exception):
    """A file is unusable; the message is the reason shown to the user."""


def check_paths_exist(paths: Iterable[Path], outcome: str = "nothing was ingested") -> None:
    """NotFoundError naming every path that does not exist, and the `outcome`: what the
    command did not do because of it."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise NotFoundError(f"path not found: {', '.join(missing)} ({outcome})")


def source_name(path: Path) -> str:
    """`path` as stored and shown. A file name that is not UTF-8 (bytes that Python reads as
    lone surrogates) has its bad bytes written as `\\xNN`, so it can be hashed and stored."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def file_type(path: Path) -> tuple[str, bool]:
    """The suffix that picks the reader, lower-cased, and whether the file is gzip-compressed:
    `FAQ.txt.gz` is (".txt", True), `changelog.gz` is ("", True)."""
    name = path.name.lower()
    compressed = name.endswith(".gz")
    return Path(name.removesuffix(".gz")).suffix, compressed


class Selection:
    """Which files an ingest reads: `include` globs (none: every file) less `exclude` globs,
    each matched against a file's path from the folder named (`guide/intro.md` for a file
    found in `docs/guide/`) and against its name, as a shell matches them except that `*` also
    matches `/`. A file left out by them is not read and not reported: it was not wanted."""

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include, self.exclude = list(include), list(exclude)
        self.used: set[str] = set()  # include patterns that matched a file

    def wants(self, relative: str, *, count: bool = True) -> bool:
        """Whether the file at `relative` is read; `count`: it is a file found (not a hidden
        one or a folder reported), so the include patterns it matches have selected something."""
        name = relative.rsplit("/", 1)[-1]
        hits = [p for p in self.include if fnmatchcase(relative, p) or fnmatchcase(name, p)]
        if count:
            self.used.update(hits)
        excluded = any(fnmatchcase(relative, p) or fnmatchcase(name, p) for p in self.exclude)
        return (bool(hits) or not self.include) and not excluded

    def check_used(self, paths: list[Path]) -> None:
        """An include pattern that selected no file is a mistake (a typo, a path from the wrong
        folder): one clear error before anything is ingested."""
        unused = [p for p in self.include if p not in self.used]
        if unused:
            where = ", ".join(source_name(p) for p in paths)
            raise InvalidInputError(
                f"--include {unused[0]!r} matches no file in {where}; patterns match the path "
                "from the folder named (guide/*.md) or the file name (*.md); nothing was ingested"
            )


# The reason given for a folder that could not be listed (permissions, a path too long).
UNREAD_FOLDER = "folder "


def discover(
    paths: Iterable[Path],
    follow_links: bool = False,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The files to read under `paths` (folders are walked), and every other file found, or
        hidden folder not walked, with the reason it is left out. Files to read are resolved, as
        sources are stored. A link found in a folder is read only if its target is in that folder,
        unless `follow_links`; a path named in `paths` is read even if it is a link. Only files that
        the `include` and `exclude` globs select (see `Selection`) are read or reported (a folder
    that could not be read is reported whatever the globs). A path that
        does not exist, or an include pattern that matches no file, is an error before anything is
        read."""
    paths = list(paths)
    check_paths_exist(paths)
    selection = Selection(include, exclude)
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in paths:
        walked: list[tuple[Path, str]] = []
        root = path.resolve() if path.is_dir() else None
        found = _walk(path, follow_links, walked) if root else [path]
        # A folder that could not be read is reported whatever the globs: what it holds is
        # not known, and `sync` must not take its files for deleted.
        skipped += [
            (found, why)
            for found, why in walked
            if why.startswith(UNREAD_FOLDER) or selection.wants(_relative(found, root), count=False)
        ]
        for file in found:
            if not selection.wants(_relative(file, root)):
                continue
            try:
                reason = _unreadable_type(file)
                if not reason:
                    files.append(file.resolve())
            except OSError as exc:
                reason = _cannot_read(exc)
            if reason:
                skipped.append((file.absolute(), reason))
    selection.check_used(paths)
    return list(dict.fromkeys(files)), sorted(dict.fromkeys(skipped))


def _relative(file: Path, root: Path | None) -> str:
    """What the globs match: `file`'s path from the folder named (`root`, resolved), else its
    name (a file named itself, or one reached through a link out of the folder)."""
    if root is not None and file.is_relative_to(root) and file != root:
        return file.relative_to(root).as_posix()
    return file.name


def _walk(folder: Path, follow_links: bool, skipped: list[tuple[Path, str]]) -> list[Path]:
    """Every file under `folder`, sorted; hidden files and folders (.git, .DS_Store) go to
    `skipped` instead, and so do links to outside `folder` unless `follow_links`: a link in a
    shared tree must not pull in /etc or a home folder. Linked folders inside `folder` are not
    followed (their files are read where they are); those outside are walked once, as links
    can loop."""
    root = folder.resolve()
    walked: set[Path] = set()
    files: list[Path] = []
    tops = [folder]

    def unreadable(exc: OSError) -> None:  # os.walk would pass over such a folder in silence
        skipped.append((Path(exc.filename).absolute(), UNREAD_FOLDER + _cannot_read(exc)))

    while tops:
        for current, dirs, names in os.walk(tops.pop(), onerror=unreadable):
            # The entries themselves stay unresolved: a skipped link is named, not its target.
            here = Path(current).resolve()
            if here in walked:
                dirs[:] = []
                continue
            walked.add(here)
            subdirs = []
            for name in sorted(dirs):
                entry = here / name
                if name.startswith("."):
                    skipped.append((entry, "hidden folder"))
                    continue
                try:
                    linked = entry.is_symlink()
                    inside = linked and entry.resolve().is_relative_to(root)
                except OSError as exc:  # a path too long to name, a folder gone meanwhile
                    skipped.append((entry, UNREAD_FOLDER + _cannot_read(exc)))
                    continue
                if not linked:
                    subdirs.append(name)
                elif inside:
                    skipped.append((entry, "symlinked folder, not followed"))
                elif follow_links:
                    tops.append(entry.resolve())
                else:
                    skipped.append((entry, OUTSIDE_LINK))
            dirs[:] = subdirs
            for name in sorted(names):
                entry = here / name
                if name.startswith("."):
                    skipped.append((entry, "hidden file"))
                    continue
                try:
                    outside = not follow_links and _links_outside(entry, root)
                except OSError as exc:
                    skipped.append((entry, _cannot_read(exc)))
                    continue
                if outside:
                    skipped.append((entry, OUTSIDE_LINK))
                else:
                    files.append(entry)
    return files


def _cannot_read(exc: OSError) -> str:
    """The reason for a file or folder the system would not stat or list."""
    return f"cannot be read: {exc.strerror or describe(exc)}"


def _links_outside(entry: Path, root: Path) -> bool:
    # A broken or looping link is left to `_unreadable_type`: it has no target to judge.
    return entry.is_symlink() and entry.exists() and not entry.resolve().is_relative_to(root)


def _unreadable_type(path: Path) -> str:
    """Why `path` is not read at all ("" when it is). A file of a type without a reader is
    read as plain text when its start is text (`_sniffed_text`)."""
    if not path.is_file():
        return "not a regular file"  # a broken link, a pipe, a device
    suffix, compressed = file_type(path)
    if suffix in SUPPORTED_SUFFIXES:
        return ""
    if suffix not in NOT_DOCUMENT_SUFFIXES and _sniffed_text(path, compressed):
        return ""
    shown = "".join(path.suffixes[-2:]) if compressed else path.suffix
    return f"unsupported type {shown}"


def _sniffed_text(path: Path, compressed: bool) -> bool:
    """Whether the file's first few KB (decompressed for a .gz) are text. An empty file counts:
    reading it then says it is empty. A .gz that does not decompress does not."""
    with path.open("rb") as f:
        if not compressed:
            head = f.read(SNIFF_BYTES)
        else:
            try:
                head = gzip.GzipFile(fileobj=f).read(SNIFF_BYTES)
            except (OSError, EOFError, zlib.error):
                return False
    return not head or _looks_like_text(head)


def _looks_like_text(head: bytes) -> bool:
    """No NUL byte (binary, as `_decode` judges), and UTF-8 (a character cut at the end of
    `head` is fine) or, failing that, mostly printable: a Latin-1 README is then reported as
    not UTF-8, which says what to do, rather than as an unknown type."""
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)  # not final: a cut character
        return True
    except UnicodeDecodeError:
        pass
    controls = sum((b < 0x20 and b not in b"\t\n\r\f\b") or b == 0x7F for b in head)
    high = sum(b >= 0x80 for b in head)
    return controls <= len(head) // 100 and high <= len(head) * 3 // 10


def load_file(path: Path, max_bytes: int) -> Loaded:
    """The documents in `path`, by the reader its suffix names; a file of any other type is
    plain text (`discover` reads it only when its start is text)."""
    suffix, compressed = file_type(path)
    data = _read_bytes(path, max_bytes)
    if compressed:
        data = _gunzip(data, max_bytes)
    source = source_name(path)
    if suffix == ".pdf":
        return _one(source, *_read_pdf(data))
    text = _decode(data)
    if suffix in HTML_SUFFIXES:
        return _one(source, *_read_html(text))
    if suffix == ".jsonl":
        return _read_jsonl(source, text)
    return _one(source, *_read_text(text, suffix))


def _read_text(text: str, suffix: str) -> tuple[str, str]:
    """Title and text of a plain-text file: Markdown and reStructuredText are titled by their
    first heading, other text (README, NEWS, changelog.Debian) has no title. Markup goes
    (`strip_markup`), whatever the suffix: Sphinx sources are .txt as often as .rst, and a
    page of directives alone (a toctree) has no text left to rank. HTML inside the text is
    markup in Markdown only: in other text it is what the reader reads."""
    title = strip_markup(_heading_title(text)) if suffix in MARKUP_SUFFIXES else ""
    return title, strip_markup(text, html=suffix in {".md", ".markdown"})


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty file")
    if size > max_bytes:
        raise SkipFile(_too_big(f"{size / 1e6:.1f} MB is", max_bytes))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SkipFile(f"cannot read: {exc.strerror or exc}") from None


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(max_bytes + 1)  # no more: a small .gz can inflate to gigabytes
    except (OSError, EOFError, zlib.error) as exc:
        raise SkipFile(f"not a valid gzip file ({exc})") from None
    if not out:
        raise SkipFile("empty file once decompressed")
    if len(out) > max_bytes:
        raise SkipFile(_too_big("decompressed, it is", max_bytes))
    return out


def _too_big(what: str, max_bytes: int) -> str:
    return (
        f"{what} over the limit of {max_bytes / 1e6:.1f} MB (raise ingest.max_file_mb to ingest it)"
    )


def _one(source: str, title: str, text: str, page_starts: list[int] | None = None) -> Loaded:
    if not text.strip():
        raise SkipFile("no text in it")
    doc = SourceDoc(
        source=source, doc_id=source, title=title, text=text, page_starts=page_starts or []
    )
    return Loaded(docs=[doc])


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise SkipFile("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(
            f"not UTF-8 text (bad byte at offset {exc.start}); convert it, e.g. "
            "`iconv -f latin1 -t utf-8`"
        ) from None


# An underlined heading: Markdown's setext and reStructuredText's section titles.
_UNDERLINED = re.compile(r"^(\S.*)\n([=\-~#*^\"'`+:.])\2+[ \t]*$", re.MULTILINE)


def _heading_title(text: str) -> str:
    """The first heading of a Markdown or reStructuredText document, "" if none is near the
    top: `# Title`, or a title line underlined with `===` (an overline as well is fine)."""
    head = "\n".join(text.splitlines()[:50])
    atx = re.search(r"^# (.+)$", head, re.MULTILINE)
    underlined = _UNDERLINED.search(head)
    found = [m for m in (atx, underlined) if m]
    return min(found, key=lambda m: m.start()).group(1).strip() if found else ""


def _read_html(html: str) -> tuple[str, str]:
    """Title and readable text: block elements separate paragraphs, inline elements stay in
    their sentence, <pre> keeps its lines, and navigation and scripts are dropped."""
    from bs4 import BeautifulSoup
    from inscriptis import get_text
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.html_properties import Display
    from inscriptis.model.config import ParserConfig
    from inscriptis.model.html_element import HtmlElement

    soup = BeautifulSoup(html, "html.parser")
    headings = (" ".join(tag.get_text(" ").split()) for tag in (soup.title, soup.h1) if tag)
    title = next((h for h in headings if h), "")
    for tag in soup.select(HTML_BOILERPLATE):
        tag.decompose()
    # "strict" renders like a browser; the default "relaxed" profile pads every <span> with
    # spaces, which breaks `void **<var>code</var>` into `void ** code`. Neither profile knows
    # definition lists, which hold texinfo's function entries and DocBook's tables of contents.
    css = CSS_PROFILES["strict"] | {
        tag: HtmlElement(display=Display.block) for tag in ("dl", "dt", "dd")
    }
    text = get_text(str(soup), ParserConfig(css=css))
    lines = "\n".join(line.rstrip() for line in text.splitlines())
    return title, re.sub(r"\n{3,}", "\n\n", lines).strip("\n")


def _read_pdf(data: bytes) -> tuple[str, str, list[int]]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception as exc:  # a hostile PDF makes pypdf raise anything: RecursionError, …
        raise SkipFile(f"unreadable PDF: {describe(exc)}") from None
    if not any(p.strip() for p in pages):
        raise SkipFile("PDF has no extractable text (scanned images need OCR first)")
    # Where each page begins in the joined text, so chunks can cite their pages.
    starts = [0]
    for page in pages[:-1]:
        starts.append(starts[-1] + len(page) + 2)
    return title, "\n\n".join(pages), starts


def _read_jsonl(source: str, text: str) -> Loaded:
    """BEIR corpus layout: one {"_id", "title", "text"} object per line, with an optional
    "metadata" object whose fields every chunk of the record carries (filters read them)."""
    docs: list[SourceDoc] = []
    bad: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            doc_id, body = str(rec["_id"]), rec.get("text") or ""
            title = rec.get("title") or ""
            fields = rec.get("metadata") or {}
            # Chroma keeps texts, numbers and booleans (anything else is kept as its JSON),
            # under names it allows (a field it refuses would end the whole ingest).
            meta = {
                str(k): v if isinstance(v, str | int | float | bool) else json.dumps(v)
                for k, v in fields.items()
                if v is not None and key_problem(str(k)) is None
            }
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            bad.append(lineno)
            continue
        if isinstance(body, str) and body.strip():
            docs.append(
                SourceDoc(source=source, doc_id=doc_id, title=str(title), text=body, metadata=meta)
            )
    if not docs:
        raise SkipFile('no usable records: expected one {"_id", "title", "text"} object a line')
    warning = f"{len(bad)} malformed line(s) left out, first at line {bad[0]}" if bad else ""
    return Loaded(docs=docs, warning=warning)
