"""Markup removed before indexing: what is left is what a reader of the rendered page sees."""

from __future__ import annotations

from rearag.tools.markup import strip_markup


def test_sphinx_roles_links_and_directives_leave_their_text():
    rst = (
        "Caching\n=======\n\n"
        ".. note::\n   Use a virtualenv.\n\n"
        ".. toctree::\n   :maxdepth: 2\n\n   intro\n   usage\n\n"
        ".. _cache-label:\n\n"
        "The :ref:`pip cache <cache>` command and :option:`--no-cache-dir` (see `#11082 "
        "<https://github.com/pypa/pip/pull/11082>`_). Run ``pip cache dir``; "
        ":py:func:`~pip._internal.main` starts it.\n\n"
        ".. code-block:: console\n\n   $ pip cache purge\n\n"
        ".. versionadded:: 21.1\n   The ``--foo`` option.\n\n"
        ".. A comment\n   spanning lines.\n\n"
        "It is piped to jq::\n\n    yq .a x.yml\n"
    )
    assert strip_markup(rst) == (
        "Caching\n\n"
        "Note: Use a virtualenv.\n\n"
        "The pip cache command and --no-cache-dir (see #11082). Run pip cache dir; "
        "main starts it.\n\n"
        "$ pip cache purge\n\n"
        "New in version 21.1: The --foo option.\n\n"
        "It is piped to jq:\n\n    yq .a x.yml\n"
    )


def test_myst_and_markdown_markup_leave_their_text():
    md = (
        "(pip-cache)=\n# Caching\n\n% a comment\n"
        "The {ref}`pip cache` command. See [the guide](https://x.y/a_(b)) and ![logo](a.png).\n\n"
        "```{note}\n:class: dropdown\nCached wheels live in `~/.cache/pip`.\n```\n\n"
        "```{toctree}\n:hidden:\ninstall\nusage\n```\n\n"
        "```console\n$ pip cache dir\n```\n"
        "[guide]: https://example.com\n<!-- hidden -->\n"
        "[![Build Status][badge]][ci] Line<br>two <sup>1</sup>, **bold** and *em*.\n"
    )
    assert strip_markup(md) == (
        "# Caching\n\n"
        "The pip cache command. See the guide and logo.\n\n"
        "Note: Cached wheels live in `~/.cache/pip`.\n\n"
        "$ pip cache dir\n\n"
        "Build Status Line\ntwo 1, bold and em.\n"
    )


def test_text_that_only_looks_like_markup_is_kept():
    text = (
        "Usage: prog <file> [options] -- reads a[0][1] and *.txt or *.md files.\n"
        "Multiply 2 * 3 * 4. Call __init__ or std::vector:: in C++... and so on.\n"
    )
    assert strip_markup(text) == text


def test_html_in_plain_text_is_text():
    page = "Embed pictures with <img src=x> and <!-- a comment --> tags.\n"
    assert strip_markup(page, html=False) == page
    assert strip_markup(page) == "Embed pictures with  and  tags.\n"


def test_an_autolink_keeps_its_address():
    # git's README.md: "archives are available at <https://lore.kernel.org/git/>".
    assert strip_markup("See <https://lore.kernel.org/git/> and <x>.") == (
        "See https://lore.kernel.org/git/ and <x>."
    )
