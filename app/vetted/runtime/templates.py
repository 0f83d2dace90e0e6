"""Chat templates are data, not code (DESIGN.md invariant 9).

Rendered only in Jinja's ImmutableSandboxedEnvironment: no attribute access to Python
internals, no mutation of the passed structures. A template that tries to escape
(CVE-2024-34359, "Llama Drama") fails with SecurityError and nothing runs.
"""

from __future__ import annotations

from typing import Any

from vetted.errors import Refused


class TemplateError(Refused):
    pass


def _raise(message: str) -> None:
    raise TemplateError("chat template", message)


def render(template: str, messages: list[dict[str, str]], bos_token: str = "", eos_token: str = "",
           add_generation_prompt: bool = True, **extra: Any) -> str:
    from jinja2 import TemplateError as JinjaError
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise
    try:
        return env.from_string(template).render(
            messages=messages, bos_token=bos_token, eos_token=eos_token,
            add_generation_prompt=add_generation_prompt, **extra)
    except SecurityError as exc:
        raise TemplateError("chat template", f"tried to reach outside its sandbox ({exc})",
                            "the model's template is hostile or broken; it was not run") from None
    except JinjaError as exc:
        raise TemplateError("chat template", f"does not render ({exc})",
                            "choose a catalog-curated template for this model") from None
    except TemplateError:
        raise
    except Exception as exc:  # a template can raise almost anything through filters
        raise TemplateError("chat template", f"failed while rendering ({type(exc).__name__}: {exc})") from None


def choose(catalog_template: str | None, gguf_template: str | None) -> tuple[str, str]:
    """The catalog's curated template wins; then the file's own; else a clear refusal."""
    if catalog_template:
        return catalog_template, "catalog"
    if gguf_template:
        return gguf_template, "gguf"
    raise Refused("chat template", "neither the catalog nor the model file provides one",
                  "this is a base (completion) model; use it with a raw prompt, or pick an instruct model")
