"""Markup of the text formats rearag reads, removed before a document is chunked: what is left
is what a reader of the rendered page sees, so the index, the reranker and a quoted answer read
"The pip cache command", not "The {ref}`pip cache` command".

reStructuredText and Sphinx: roles (:ref:`text <target>`, :option:`--x`), hyperlinks
(`text <url>`_), directives (`.. note::` keeps its text, `.. toctree::` and `.. image::` go),
comments, link targets, substitution definitions and heading underlines. MyST Markdown: roles
({ref}`x`), fenced directives (```{note}), `(label)=` targets and `%` comments. Markdown: links
and images (their text stays), link definitions, HTML comments and tags, emphasis.

Everything here matches markup only (a role's backticks, a directive's `..` and `::`), so plain
text goes through unchanged; code blocks keep their lines, since option names and commands are
what documentation questions ask about.
"""

from __future__ import annotations

import re

# Directives whose body is text a reader sees (admonitions, version notes, code, containers).
_KEEP_BODY = frozenset(
    [
        "note",
        "warning",
        "tip",
        "hint",
        "important",
        "caution",
        "attention",
        "danger",
        "error",
        "seealso",
        "admonition",
        "todo",
        "versionadded",
        "versionchanged",
        "deprecated",
        "versionremoved",
        "code",
        "code-block",
        "sourcecode",
        "literalinclude-text",
        "only",
        "container",
        "topic",
        "sidebar",
        "rubric",
        "centered",
        "hlist",
        "glossary",
        "describe",
        "option",
        "envvar",
        "program",
        "cmdoption",
        "productionlist",
        "tab",
        "tab-set",
        "tab-item",
        "dropdown",
        "card",
        "grid-item-card",
    ]
)
# Directives that are a line of their own with a heading-like argument worth keeping.
_KEEP_ARGUMENT = frozenset({"rubric", "topic", "sidebar", "admonition", "option", "describe"})
_ADMONITIONS = {
    "note": "Note",
    "warning": "Warning",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "seealso": "See also",
    "deprecated": "Deprecated",
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "versionremoved": "Removed in version",
}

# :role:`content` or :domain:role:`content`; MyST's {role}`content`.
_RST_ROLE = re.compile(r"(?<![\w`]):(?:[a-z][\w+-]*:)?[a-z][\w+-]*:`([^`\n]+)`")
_MYST_ROLE = re.compile(r"\{(?:[a-z][\w+-]*:)?[a-z][\w+-]*\}`([^`\n]+)`")
# `text <target>`_ and `text <target>`__; `text`_ (a named reference).
_RST_LINK = re.compile(r"`([^`<\n]+?)\s*<[^`>\n]+>`__?")
_RST_NAMED_REF = re.compile(r"(?<![`\w])`([^`<\n]+)`__?(?!\w)")
_RST_DOUBLE_CODE = re.compile(r"``([^`\n]+)``")
# A directive's first line: `.. name:: argument`; a comment or target starts `.. ` too.
_RST_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
_RST_EXPLICIT = re.compile(r"^(\s*)\.\.(\s|$)")
_UNDERLINE = re.compile(r"^([=\-~^\"'#*+:._])\1{2,}\s*$")
# A Markdown code fence (```console, ~~~): its lines stay, the fence goes.
_CODE_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[\w+-]*\s*$")
# MyST fences: ```{name} argument (also ~~~, and four or more backticks for nesting).
_MYST_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\{([\w:-]+)\}\s*(.*)$")
_MYST_TARGET = re.compile(r"^\([\w.:-]+\)=\s*$")
_MYST_OPTION = re.compile(r"^\s*:[\w-]+:(\s.*)?$")
# reStructuredText's literal-block marker: "jq::" reads "jq:"; "::" alone or after a space goes.
_LITERAL_MARKER = re.compile(r"(?:(\S)|[ \t]*)::$", re.MULTILINE)
# Markdown.
_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\](?:\([^)\n]*\)|\[[^\]\n]*\])")
# Not after a word or a bracket: `a[0](x)` and `a[0][1]` are code.
_MD_LINK = re.compile(r"(?<![\w\]])\[([^\]\n]+)\]\((?:[^()\n]|\([^)\n]*\))*\)")
_MD_REF_LINK = re.compile(r"(?<![\w\]])\[([^\]\n]+)\]\[[^\]\n]*\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+)>")  # <https://…>: the address stays
_MD_LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s+\S+.*$", re.MULTILINE)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# HTML elements by name only: `<file>` and `<name>` are placeholders of a command's syntax.
_HTML_NAMES = (
    "a|abbr|b|big|blockquote|br|center|code|dd|details|div|dl|dt|em|font|h[1-6]|hr|i|img|kbd|"
    "li|ol|p|picture|pre|s|samp|small|source|span|strong|sub|summary|sup|table|tbody|td|th|"
    "thead|tr|tt|u|ul|var"
)
_HTML_TAG = re.compile(
    rf"</?(?:{_HTML_NAMES})(?:\s+[\w:-]+(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>",
    re.IGNORECASE,
)
_HTML_BREAK = re.compile(r"</?(?:br|p|div|li|tr|h[1-6]|blockquote|pre)\b", re.IGNORECASE)
# Emphasis around words only: `*.txt and *.md` are globs.
_MD_STRONG = re.compile(r"(?<![\w*])\*\*(\w[^*\n]*?\w|\w)\*\*(?![\w*])")
_MD_EMPHASIS = re.compile(r"(?<![\w*])\*(\w[^*\n]*?\w|\w)\*(?![\w*])")


def strip_markup(text: str, html: bool = True) -> str:
    """`text` without the markup of reStructuredText, Sphinx, MyST and Markdown (see the
    module's docstring); text without markup is returned unchanged. `html`: whether HTML
    inside the text is markup (Markdown) or text a reader sees (a .txt file about HTML)."""
    lines = _block_markup(text.split("\n"))
    text = "\n".join(lines)
    if html:
        text = _HTML_COMMENT.sub("", text)
    text = _MD_LINK_DEFINITION.sub("", text)
    text = _MD_IMAGE.sub(lambda m: m.group(1), text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _MD_REF_LINK.sub(lambda m: m.group(1), text)
    text = _MYST_ROLE.sub(lambda m: _role_text(m.group(1)), text)
    text = _RST_ROLE.sub(lambda m: _role_text(m.group(1)), text)
    text = _RST_LINK.sub(lambda m: m.group(1).strip(), text)
    text = _RST_NAMED_REF.sub(lambda m: m.group(1), text)
    text = _AUTOLINK.sub(lambda m: m.group(1), text)  # after reST's `text <url>`_ links
    text = _RST_DOUBLE_CODE.sub(lambda m: m.group(1), text)
    text = _LITERAL_MARKER.sub(lambda m: f"{m.group(1)}:" if m.group(1) else "", text)
    if html:
        text = _HTML_TAG.sub(lambda m: "\n" if _HTML_BREAK.match(m.group(0)) else "", text)
    text = _MD_STRONG.sub(lambda m: m.group(1), text)
    text = _MD_EMPHASIS.sub(lambda m: m.group(1), text)
    return re.sub(r"\n{3,}", "\n\n", text)


def _role_text(content: str) -> str:
    """What a role shows: "text" of `text <target>`; the last part of `~a.b.c`; else itself."""
    shown = re.sub(r"\s*<[^<>]*>$", "", content).strip() or content
    if shown.startswith("~"):
        shown = shown[1:].rsplit(".", 1)[-1]
    return shown.lstrip("!")


def _block_markup(lines: list[str]) -> list[str]:
    """Lines without directive, comment and target blocks and heading underlines."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _MYST_FENCE.match(line)
        if fence:
            i = _myst_directive(lines, i, fence, out)
            continue
        directive = _RST_DIRECTIVE.match(line)
        if directive:
            i = _rst_directive(lines, i, directive, out)
            continue
        if _RST_EXPLICIT.match(line):  # a comment, a link target, a footnote: its block goes
            i = _skip_block(lines, i + 1, len(_RST_EXPLICIT.match(line).group(1)))
            continue
        if _MYST_TARGET.match(line) or _CODE_FENCE.match(line) or re.match(r"^%(\s|$)", line):
            i += 1
            continue
        if _UNDERLINE.match(line) and (not out or not out[-1].strip() or _heading_over(lines, i)):
            i += 1  # an overline (or a transition line): nothing a reader reads
            continue
        if _UNDERLINE.match(line):
            out.append("")  # the title above stays, as a line of its own
            i += 1
            continue
        out.append(line)
        i += 1
    return out


def _heading_over(lines: list[str], i: int) -> bool:
    """Whether line i is the overline of a title underlined two lines below."""
    return i + 2 < len(lines) and lines[i + 2].strip() == lines[i].strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _skip_block(lines: list[str], i: int, indent: int) -> int:
    """The index after the block indented deeper than `indent` that starts at line i (blank
    lines inside it included)."""
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
        i += 1
    return i


def _rst_directive(lines: list[str], i: int, match: re.Match[str], out: list[str]) -> int:
    indent, name, argument = len(match.group(1)), match.group(2).lower(), match.group(3).strip()
    end = _skip_block(lines, i + 1, indent)
    while end > i + 1 and not lines[end - 1].strip():
        end -= 1  # trailing blank lines belong to what follows
    name = name.split(":")[-1]  # py:function -> function
    if name in _KEEP_BODY or name in _ADMONITIONS:
        body = [ln for ln in lines[i + 1 : end] if not _MYST_OPTION.match(ln)]
        _keep(name, argument, body, out)
    return end


def _myst_directive(lines: list[str], i: int, match: re.Match[str], out: list[str]) -> int:
    fence, name, argument = match.group(2), match.group(3).lower(), match.group(4).strip()
    end = i + 1
    while end < len(lines) and not lines[end].strip().startswith(fence):
        end += 1
    body = lines[i + 1 : end]
    while body and _MYST_OPTION.match(body[0]):
        body = body[1:]
    if body and body[0].strip() == "---":  # options as a YAML block
        close = next((k for k in range(1, len(body)) if body[k].strip() == "---"), 0)
        body = body[close + 1 :]
    name = name.split(":")[-1]
    if name in _KEEP_BODY or name in _ADMONITIONS:
        _keep(name, argument, _block_markup(body), out)
    return end + 1


def _keep(name: str, argument: str, body: list[str], out: list[str]) -> None:
    """A kept directive as a reader sees it: its label ("Note:") or argument, then its body
    dedented."""
    depth = min((_indent(ln) for ln in body if ln.strip()), default=0)
    text = [ln[depth:] for ln in body]
    label = _ADMONITIONS.get(name)
    if label and argument and name.startswith(("version", "deprecated")):
        label = f"{label} {argument}"
    elif name in _KEEP_ARGUMENT and argument:
        label = argument
    if label:
        if text and text[0].strip() and not label.endswith(":"):
            text[0] = f"{label}: {text[0]}"
        else:
            text.insert(0, label)
    out.extend(["", *text, ""])
