"""gui/markdown.py: a model's Markdown rendered as safe HTML (no Qt widget needed)."""

from __future__ import annotations

import re

import pytest

from vetted.gui.markdown import render, render_markdown, split_stable

REPLY = """Intro with `inline` code.

```python
def f(x):
    return x < 1  # <b>not markup</b>
```

Then shell:

```bash
echo "$HOME" && ls
```

```
plain & simple
```
"""


def anchors(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]*)"', html)


def test_code_blocks_have_background_label_copy_anchor_and_colours() -> None:
    r = render(REPLY, dark=False)
    assert r.codes == ['def f(x):\n    return x < 1  # <b>not markup</b>', 'echo "$HOME" && ls', "plain & simple"]
    assert anchors(r.html) == ["vetted-copy:0", "vetted-copy:1", "vetted-copy:2"]
    assert r.html.count('bgcolor="#f6f8fa"') == 3  # every block has the light background
    assert ">python</span>" in r.html and ">bash</span>" in r.html and ">text</span>" in r.html
    assert '<span style="color:#008000;font-weight:bold">def</span>' in r.html  # Pygments' default style
    assert "&lt;b&gt;not markup&lt;/b&gt;" in r.html and "<b>" not in r.html
    dark = render(REPLY, dark=True).html
    assert dark.count('bgcolor="#161b22"') == 3 and "#f6f8fa" not in dark
    assert dark != r.html and "def</span>" in dark


def test_copy_numbering_continues_from_first_block() -> None:
    r = render(REPLY, dark=False, first_block=5)
    assert anchors(r.html) == ["vetted-copy:5", "vetted-copy:6", "vetted-copy:7"]


@pytest.mark.parametrize("text", [
    "<img src=http://127.0.0.1:9/x.png>",
    "<script>alert(1)</script>",
    '<a href="file:///etc/passwd">x</a>',
    "<div>\n<img src=x>\n</div>",
])
def test_raw_html_is_text(text: str) -> None:
    html = render_markdown(text, dark=False)
    assert "<img" not in html and "<script" not in html and "<div" not in html and "file:" not in anchors(html)
    assert "&lt;" in html


def test_images_are_never_img_tags() -> None:
    html = render_markdown("![logo](http://127.0.0.1:9/x.png) ![secret](file:///etc/passwd) "
                           '![p](data:image/png;base64,AAAA)', dark=False)
    assert "<img" not in html
    assert "[image: logo] (http://127.0.0.1:9/x.png)" in html
    assert "file:///etc/passwd" in html  # shown as text, never as a source
    assert anchors(html) == []


def test_only_http_links_are_anchors() -> None:
    html = render_markdown("[a](https://example.com/p?q=1) [b](http://x.test) [c](javascript:alert(1)) "
                           "[d](file:///etc/passwd) [e](mailto:a@b.c) [f](vetted-copy:0) <https://auto.test/>",
                           dark=False)
    assert anchors(html) == ["https://example.com/p?q=1", "http://x.test", "https://auto.test/"]
    assert "(mailto:a@b.c)" in html and "(vetted-copy:0)" in html  # the target is shown beside the label


def test_control_and_bidi_characters_are_shown_not_obeyed() -> None:
    html = render_markdown("safe\u202eevil \x1b[2J done", dark=False)
    assert "\u202e" not in html and "\x1b" not in html
    assert "\\u202e" in html and "\\x1b" in html


def test_tables_lists_and_unknown_languages() -> None:
    html = render_markdown("| a | b |\n|---|--:|\n| 1 | 2 |\n\n- x\n- y\n\n```nosuchlang\n<x>\n```\n", dark=False)
    assert "<table" in html and "<th>a</th>" in html and "<li>x</li>" in html
    assert ">nosuchlang</span>" in html and "&lt;x&gt;" in html


def test_split_stable_never_cuts_inside_a_fence() -> None:
    text = "para\n\n```py\nx = 1\n\ny = 2\n"
    assert split_stable(text) == len("para\n\n")  # the blank line inside the open fence is not a cut
    closed = text + "```\n\nnext"
    assert split_stable(closed) == len(text + "```\n\n")
    assert split_stable("no blank line yet") == 0
    assert split_stable("````\n```\n\n````\n\nz") == len("````\n```\n\n````\n\n")  # a longer fence
