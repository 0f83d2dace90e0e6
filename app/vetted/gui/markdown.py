"""Markdown from a model, rendered as safe HTML for Qt's rich-text widgets.

A model's reply is untrusted text: it can contain raw HTML, image links to a tracking pixel
on the network or to `file:///etc/passwd`, `javascript:` links and bidi overrides. Why not
`QTextDocument.setMarkdown`: Qt's reader (md4c) passes raw HTML through unless told not
to, turns `![x](url)` into an image that the widget then *loads* (a local file read, or a
request through a custom loader), and gives no hook per code block (no highlighting, no
language label, no copy button). So the text is parsed here with markdown-it-py (CommonMark
plus tables and strikethrough, raw HTML disabled, so `<img src=…>` stays literal text) and
rendered rule by rule into the small HTML subset Qt understands:

- every piece of text is HTML-escaped; control and format characters (ESC, bidi overrides)
  become visible escapes first (`textsafe.multi_line`);
- an image is never an `<img>`: it is shown as "[image: alt] (url)" in plain text;
- a link is an anchor only for http/https targets (the widget still asks before opening
  one); any other target is shown as text next to its label, never as something to click;
- a fenced or indented code block is a bordered table with its own background (a light and
  a dark palette), a language label, a "Copy" anchor `vetted-copy:<n>` and Pygments colours
  written as inline `color` spans (Qt's HTML has no style sheets for classes).

Single newlines are line breaks (`breaks`), as in every chat app: models write lists and
verse line by line.
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from pygments.lexers import get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.util import ClassNotFound

from ..textsafe import multi_line, one_line

__all__ = ["render_markdown", "render", "Rendered", "COPY_SCHEME", "OPENABLE_SCHEMES", "split_stable",
           "warm_up"]

COPY_SCHEME = "vetted-copy"
OPENABLE_SCHEMES = frozenset({"http", "https"})
MAX_HIGHLIGHT = 40_000  # characters; a larger block is shown uncoloured (Pygments' cost grows with it)


@dataclass(frozen=True)
class Palette:
    style: str  # a Pygments style
    code_bg: str
    border: str
    label: str
    inline_bg: str
    muted: str
    link: str


LIGHT = Palette("default", "#f6f8fa", "#d0d7de", "#57606a", "#eff1f3", "#6e7781", "#0969da")
DARK = Palette("github-dark", "#161b22", "#3d444d", "#9198a1", "#2d333b", "#9198a1", "#58a6ff")


@dataclass
class Rendered:
    """HTML for Qt, and the code of each block in order (what `vetted-copy:<n>` copies)."""

    html: str
    codes: list[str] = field(default_factory=list)
    pending: bool = False  # a block is plain because its lexer is still loading: render again soon


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    for name, rule in _RULES.items():
        md.add_render_rule(name, rule)
    return md


def render_markdown(text: str, *, dark: bool) -> str:
    """`text` (untrusted Markdown) as HTML safe to hand to a QTextBrowser: nothing in it
    loads a resource, and every active link is http(s)."""
    return render(text, dark=dark).html


def render(text: str, *, dark: bool, first_block: int = 0, wait: bool = True) -> Rendered:
    """Like `render_markdown`, also returning the code blocks; their Copy anchors are
    numbered from `first_block` (so a document rendered in pieces keeps one numbering).
    With `wait` False a lexer not loaded yet is loaded on a thread (see `_lexer`)."""
    codes: list[str] = []
    env: dict[str, Any] = {"pal": DARK if dark else LIGHT, "codes": codes, "first": first_block, "links": [],
                           "wait": wait, "pending": False}
    source = multi_line(text.replace("\r\n", "\n"))
    out = _parser().render(source, env)
    return Rendered(out, codes, env["pending"])


def split_stable(text: str) -> int:
    """The length of the longest prefix of `text` made only of finished top-level blocks:
    it ends after a blank line that is outside any fenced code block. While a reply streams
    that prefix no longer changes, so its HTML can be kept and only the rest re-rendered."""
    cut = 0
    fence: str | None = None
    pos = 0
    prev_blank = False
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # the last, unfinished line
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if fence is None:
            if indent < 4 and (stripped.startswith("```") or stripped.startswith("~~~")):
                fence = stripped[: len(stripped) - len(stripped.lstrip(stripped[0]))]
            elif not stripped and not prev_blank:
                cut = pos + len(line)
        elif indent < 4 and stripped.startswith(fence) and not stripped.strip(fence[0]):  # only fence chars
            fence = None
            # a closing fence ends its block; the next blank line marks it stable
        prev_blank = not stripped and fence is None
        pos += len(line)
    return cut


# -- code blocks ------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _token_css(style_name: str) -> dict[Any, str]:
    """Inline CSS for each Pygments token type of a style (Qt's HTML has no classes)."""
    style = get_style_by_name(style_name)
    out: dict[Any, str] = {}
    for ttype, s in style:
        css = []
        if s["color"]:
            css.append(f"color:#{s['color']}")
        if s["bold"]:
            css.append("font-weight:bold")
        if s["italic"]:
            css.append("font-style:italic")
        out[ttype] = ";".join(css)
    return out


_LEXERS: dict[str, Any] = {}  # language -> a ready lexer, or None for an unknown language
_LOADING: set[str] = set()
_LOCK = threading.Lock()


def _load_lexer(lang: str) -> Any:
    try:
        lexer = get_lexer_by_name(lang, stripnl=False, ensurenl=False)
        list(lexer.get_tokens("x"))  # the first use compiles the lexer's regular expressions
    except ClassNotFound:
        lexer = None
    with _LOCK:
        _LEXERS[lang] = lexer
        _LOADING.discard(lang)
    return lexer


def _lexer(lang: str, wait: bool) -> tuple[Any, bool]:
    """(lexer or None, still loading). Loading a lexer the first time costs 10-130 ms
    (an unknown name scans every plugin): with `wait` False that happens on a thread and
    the block is shown plain meanwhile, so the UI thread never pays for it."""
    if not lang:
        return None, False
    with _LOCK:
        if lang in _LEXERS:
            return _LEXERS[lang], False
        loading = lang in _LOADING
        if not wait and not loading:
            _LOADING.add(lang)
    if wait:
        return _load_lexer(lang), False
    if not loading:
        threading.Thread(target=_load_lexer, args=(lang,), name=f"lexer-{lang[:16]}", daemon=True).start()
    return None, True


# The languages replies use most, by the names models write after ``` (aliases share a lexer).
COMMON_LANGS = ("python", "bash", "sh", "shell", "console", "json", "javascript", "js", "typescript", "ts",
                "yaml", "toml", "rust", "go", "c", "cpp", "java", "sql", "html", "css", "diff", "text")


WARMED = threading.Event()  # set when warm_up has finished (the benchmark waits for it)


def warm_up(langs: tuple[str, ...] = COMMON_LANGS) -> None:
    """Builds the parser and the common lexers on a thread, long before a reply needs them:
    compiling a lexer's regular expressions holds the GIL, so doing it while a reply
    streams would stall the UI thread. Pauses between lexers leave the GIL to the UI."""
    def work() -> None:
        render("`x`\n\n| a |\n|---|\n| b |\n", dark=False)
        for lang in langs:
            time.sleep(0.02)
            _lexer(lang, wait=True)
        WARMED.set()
    threading.Thread(target=work, name="markdown-warm-up", daemon=True).start()


def highlight(code: str, lang: str, pal: Palette, wait: bool = True) -> tuple[str, bool]:
    """(`code` as escaped HTML with Pygments' colours for `lang` inline, still loading):
    plain if the language is unknown, the block very large, or its lexer still loading."""
    lexer, pending = _lexer(lang.lower(), wait)
    if lexer is None or len(code) > MAX_HIGHLIGHT:
        return html.escape(code, quote=False), pending
    css = _token_css(pal.style)
    out = []
    for ttype, value in lexer.get_tokens(code):
        t = ttype
        while t not in css and t.parent is not None:
            t = t.parent
        style = css.get(t, "")
        esc = html.escape(value, quote=False)
        out.append(f'<span style="{style}">{esc}</span>' if style and value.strip() else esc)
    return "".join(out), False


def code_block_html(code: str, lang: str, n: int, pal: Palette, body: str | None = None) -> str:
    label = html.escape(one_line(lang)[:32]) or "text"
    if body is None:
        body = highlight(code, lang, pal)[0]
    return (
        f'<table width="100%" cellspacing="0" cellpadding="6" border="1" bgcolor="{pal.code_bg}" '
        f'style="border-style:solid; border-color:{pal.border}; margin-top:6px; margin-bottom:6px">'
        f'<tr><td style="border-style:none"><span style="color:{pal.label}; font-size:small">{label}</span>'
        f'&nbsp;&nbsp;&nbsp;<a href="{COPY_SCHEME}:{n}" style="font-size:small; color:{pal.link}">Copy</a></td></tr>'
        f'<tr><td style="border-style:none"><pre style="white-space:pre-wrap; margin:0">{body}</pre></td></tr>'
        "</table>"  # no whitespace after it: Qt would make it an empty paragraph
    )


# -- markdown-it render rules (bound to the renderer: self, tokens, idx, options, env) ----

def _fence(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    tok = tokens[idx]
    lang = tok.info.strip().split(maxsplit=1)[0] if tok.info.strip() else ""
    code = tok.content[:-1] if tok.content.endswith("\n") else tok.content
    n = env["first"] + len(env["codes"])
    env["codes"].append(code)
    body, pending = highlight(code, lang, env["pal"], env["wait"])
    env["pending"] = env["pending"] or pending
    return code_block_html(code, lang, n, env["pal"], body)


def _code_inline(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    esc = html.escape(tokens[idx].content, quote=False)
    return f'<code style="background-color:{env["pal"].inline_bg}">{esc}</code>'


def _image(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    tok = tokens[idx]
    alt = self.renderInlineAsText(tok.children or [], options, env)
    src = one_line(tok.attrGet("src") or "")
    text = f"[image: {alt}]" + (f" ({src})" if src else "")
    return f'<span style="color:{env["pal"].muted}">{html.escape(text, quote=False)}</span>'


def _link_open(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    href = str(tokens[idx].attrGet("href") or "")
    scheme, sep, rest = href.partition(":")
    if scheme.lower() in OPENABLE_SCHEMES and rest.startswith("//") and len(rest) > 2:
        env["links"].append(None)
        return f'<a href="{html.escape(href, quote=True)}" style="color:{env["pal"].link}">'
    env["links"].append(href)  # not openable: the label stays text, the target follows it
    return ""


def _link_close(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    href = env["links"].pop() if env["links"] else None
    if href is None:
        return "</a>"
    return f' <span style="color:{env["pal"].muted}">({html.escape(one_line(href), quote=False)})</span>'


def _table_open(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    return (f'<table border="1" cellspacing="0" cellpadding="4" '
            f'style="border-style:solid; border-color:{env["pal"].border}; margin-top:4px; margin-bottom:4px">\n')


def _table_close(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    return "</table>"


def _blockquote_open(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    return f'<blockquote style="color:{env["pal"].muted}; font-style:italic">\n'


def _html_passthrough(self: Any, tokens: list[Any], idx: int, options: Any, env: dict[str, Any]) -> str:
    # Unreachable with html disabled; kept so that enabling it by mistake shows text, not markup.
    return html.escape(tokens[idx].content, quote=False)


_RULES = {
    "fence": _fence,
    "code_block": _fence,
    "code_inline": _code_inline,
    "image": _image,
    "link_open": _link_open,
    "link_close": _link_close,
    "table_open": _table_open,
    "table_close": _table_close,
    "blockquote_open": _blockquote_open,
    "html_block": _html_passthrough,
    "html_inline": _html_passthrough,
}
