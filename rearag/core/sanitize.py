"""Text from documents and conversations made safe to quote in a prompt: every prompt builder
(the reranker's listwise prompt, the rewriter, grader and generator, the RL data) and the
history pass what they quote through here, so there is one rule for all of them.

`neutralise` swaps the delimiters of whatever a model could read as prompt structure for
parentheses, keeping the name and the text inside: `<|im_start|>` becomes `(im_start)`,
`</passage>` `(/passage)`, `[INST]` `(INST)`. Parentheses delimit nothing in any chat template
nor in our prompts (whose identifiers and citations are `[i]`), a reader of an extracted answer
still sees what the document held, and no two words are joined as they would be by deleting
the form.

Neutralised, each in any case, with spaces inside, and HTML-escaped (`&lt;/passage&gt;`, which
models trained on web text read as the tag it encodes):
- chat-template tokens of the `<|…|>` family (`<|im_start|>`, `<|endoftext|>`, `<|eot_id|>`);
- our delimiters `<passage>`, `<passages>` and role tags `<system>`, `<user>`, `<assistant>`;
- the reranker's output tags `<think>`, `<answer>`, so a passage cannot forge a ranking;
- citation markers `[3]`, rearag's own form for a passage: a document's own reference marker
  (or a forged one) quoted in an extracted answer or shown to a model would otherwise be read
  as a citation of the passage with that number, or a ranking (`[3] > [1]`); `(3)` keeps it
  readable;
- Llama 2's `[INST]` and `<<SYS>>`, Mistral's `[SYSTEM_PROMPT]`, sentencepiece's `<s>`,
  `<unk>`, `<pad>`, Gemma's `<start_of_turn>`, `<end_of_turn>`, `<bos>`, `<eos>`, Qwen's
  `<tool_call>`, `<tool_response>`, and the code tokens the bundled SmolLM2 tokenizer parses
  as single tokens (`<filename>`, `<repo_name>`, …: tests/unit/core/test_sanitize.py checks
  them all).
Other markup (`<div>`, `<b>`) and comparisons (`a < b and c > d`) pass unchanged.
"""

from __future__ import annotations

import re

# Control characters other than newline and tab confuse tokenizers and terminals.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# An angle bracket: plain, full-width, or HTML-escaped (named, decimal, hex, double-escaped).
_LT = r"(?:<|\uff1c|&(?:amp;)*(?:lt;?|#0*60;|#x0*3c;))"
_GT = r"(?:>|\uff1e|&(?:amp;)*(?:gt;?|#0*62;|#x0*3e;))"
_TAG_NAMES = (
    "passages?|system|user|assistant|think|answer"
    "|s|unk|pad|bos|eos|start_of_turn|end_of_turn|tool_call|tool_response"
    "|repo_name|reponame|file_sep|filename|gh_stars|issue_start|issue_comment|issue_closed"
    "|jupyter_start|jupyter_text|jupyter_code|jupyter_output|jupyter_script|empty_output"
)
_FORMS = re.compile(
    rf"{_LT}\s*[|\uff5c]\s*(?P<special>[^<>|\uff5c\uff1c\uff1e]{{1,40}}?)\s*[|\uff5c]\s*{_GT}"
    rf"|{_LT}{{2}}\s*(?P<sys_slash>/?)\s*(?P<sys>SYS)\s*{_GT}{{2}}"
    rf"|\[\s*(?P<inst_slash>/?)\s*(?P<inst>INST|SYSTEM_PROMPT)\s*\]"
    r"|\[\s*(?P<mark>\d{1,3})\s*\]"
    rf"|{_LT}\s*(?P<slash>/?)\s*(?P<name>{_TAG_NAMES})\b(?P<attrs>\s[^<>]{{0,100}}?)?\s*/?\s*{_GT}",
    re.I,
)


def _visible(m: re.Match[str]) -> str:
    if m["special"] is not None:
        return f"({m['special']})"
    if m["sys"] is not None:
        return f"({m['sys_slash']}{m['sys']})"
    if m["inst"] is not None:
        return f"({m['inst_slash']}{m['inst']})"
    if m["mark"] is not None:
        return f"({m['mark']})"
    attrs = f" {m['attrs'].strip()}" if m["attrs"] and m["attrs"].strip() else ""
    return f"({m['slash']}{m['name']}{attrs})"


def neutralise(text: str, *, citations: bool = True) -> str:
    """`text` with every form a model could read as prompt structure shown in parentheses;
    with `citations=False`, its `[n]` markers kept (rearag's own answer, whose markers are its
    citations)."""
    visible = _visible if citations else _visible_but_citations
    # Until nothing changes: neutralising `<|<|im_start|>|>` reveals `<|(im_start)|>`. Each
    # pass removes delimiters and adds none, so this ends.
    while (done := _FORMS.sub(visible, text)) != text:
        text = done
    return text


def _visible_but_citations(m: re.Match[str]) -> str:
    return m[0] if m["mark"] is not None else _visible(m)


def clean_passage(text: str, max_chars: int) -> str:
    """One line of plain text, neutralised, at most `max_chars` characters, cut at a word
    boundary."""
    text = neutralise(" ".join(_CONTROL.sub(" ", text).split()))
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut) + " …"
