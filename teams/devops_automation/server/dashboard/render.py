"""Untrusted text into HTML: Markdown (the pull request body) and source code (the team's files).

These two functions are the only producers of markup the templates print unescaped (``Markup``); every
other value reaches a page through Jinja's autoescaping. Both escape everything they are given:

- Markdown: markdown-it-py in CommonMark mode with raw HTML **disabled** (``<script>`` becomes text),
  images disabled (a page loads nothing from elsewhere), tables and strikethrough on, and links only to
  ``http``, ``https``, ``mailto`` and relative targets (``javascript:``, ``data:``, ``vbscript:`` and other
  schemes stay text), opened with ``rel="nofollow noopener noreferrer"``.
- Code: Pygments with CSS classes (no inline styles, so the page's Content-Security-Policy can forbid
  them), the lexer chosen by file name, unified patches with the diff lexer.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import DiffLexer, TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

_SAFE_LINK = re.compile(r"^(?:https?:|mailto:|#|/(?!/)|\.{1,2}/)", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
#: CSS class of highlighted code blocks (``static/code.css`` styles it).
CODE_CLASS = "code"


def _validate_link(url: str) -> bool:
    """Links allowed in rendered Markdown: http(s), mailto, fragments and relative paths; no other scheme."""
    target = url.strip()
    if _SAFE_LINK.match(target):
        return True
    return not _SCHEME.match(target) and not target.startswith("//")


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"]).disable("image")
    md.validateLink = _validate_link  # type: ignore[method-assign]

    def link_open(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _markdown()


def markdown(text: str) -> Markup:
    """``text`` (untrusted Markdown) as safe HTML."""
    return Markup(_MD.render(text or ""))  # noqa: S704 - markdown-it escapes: raw HTML is off


@lru_cache(maxsize=4)
def _formatter(linenos: bool) -> HtmlFormatter:
    return HtmlFormatter(cssclass=CODE_CLASS, linenos="table" if linenos else False, wrapcode=True)


def lexer_for(path: str, text: str = "") -> Lexer:
    """The Pygments lexer for a file name (``Dockerfile``, ``*.py``, ``*.yaml``, ...), plain text if none."""
    try:
        return get_lexer_for_filename(path, text, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def code(path: str, text: str) -> Markup:
    """A whole file (an added one) with syntax colours and line numbers, as safe HTML."""
    return Markup(highlight(text, lexer_for(path, text), _formatter(True)))  # noqa: S704 - Pygments escapes


def patch(text: str) -> Markup:
    """Unified diff hunks with the diff lexer's colours, as safe HTML."""
    return Markup(highlight(text, DiffLexer(stripnl=False), _formatter(False)))  # noqa: S704 - Pygments escapes


def language(path: str) -> str:
    """The lexer's name for ``path`` (shown beside the file name)."""
    return lexer_for(path).name


def stylesheet(style: str = "friendly") -> str:
    """The CSS for :data:`CODE_CLASS` blocks in a Pygments style (``static/code.css`` is this, generated)."""
    return HtmlFormatter(style=style, cssclass=CODE_CLASS).get_style_defs(f".{CODE_CLASS}")
