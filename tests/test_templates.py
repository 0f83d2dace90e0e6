"""Chat templates run sandboxed; the CVE-2024-34359 payload shape executes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny_gguf import write_gguf
from vetted.errors import Refused
from vetted.runtime import templates
from vetted.runtime.gguf_meta import read_gguf

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_renders_a_normal_template() -> None:
    out = templates.render(CHATML, [{"role": "user", "content": "hi"}])
    assert out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def payload(marker: Path) -> str:
    # The shape of the "Llama Drama" payload: walk from a literal to Python's subclasses and
    # reach os via a module's globals, then run a shell command.
    return ("{% for c in ().__class__.__base__.__subclasses__() %}"
            "{% if c.__name__ == 'catch_warnings' %}"
            "{{ c()._module.__builtins__['__import__']('os').system('touch " + str(marker) + "') }}"
            "{% endif %}{% endfor %}")


def test_llama_drama_payload_in_a_gguf_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    gguf = write_gguf(tmp_path / "evil.gguf", chat_template=payload(marker))
    info = read_gguf(gguf)
    assert info.chat_template and "__subclasses__" in info.chat_template
    template, origin = templates.choose(None, info.chat_template)
    assert origin == "gguf"
    with pytest.raises(templates.TemplateError, match="sandbox"):
        templates.render(template, [{"role": "user", "content": "hi"}])
    assert not marker.exists()


def test_template_cannot_mutate_its_inputs() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(templates.TemplateError):
        templates.render("{% set _ = messages.append({'role': 'system'}) %}x", msgs)
    assert msgs == [{"role": "user", "content": "hi"}]


def test_raise_exception_and_syntax_errors_are_clear() -> None:
    with pytest.raises(templates.TemplateError, match="only user and assistant"):
        templates.render("{{ raise_exception('only user and assistant') }}", [])
    with pytest.raises(templates.TemplateError, match="does not render"):
        templates.render("{% for %}", [])


def test_catalog_template_wins_and_missing_template_is_explained() -> None:
    assert templates.choose("CAT", "FILE") == ("CAT", "catalog")
    with pytest.raises(Refused, match="neither the catalog nor the model file"):
        templates.choose(None, None)
