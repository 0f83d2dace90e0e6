"""Chat templates are data, not code (DESIGN.md invariant 9).

A template comes from a catalog or from the model file itself, so it is treated as
hostile on three counts:
- escape: rendered only in Jinja's ImmutableSandboxedEnvironment (no attribute access
  to Python internals, no mutation); a template that tries (CVE-2024-34359, "Llama
  Drama") fails with SecurityError and nothing runs;
- memory: repetition and power operators are bounded here, the output is capped, and
  the render runs in the engine worker under an address-space limit (runtime/worker.py);
- time: nested loops cannot be bounded from inside Python, so the app waits a fixed time
  for the worker's answer and stops the worker when it runs over (runtime/engine.py).
`render` is therefore called only inside the worker process, never in the app.
"""

from __future__ import annotations

import operator
from typing import Any

from vetted.errors import Refused

MAX_OUTPUT_CHARS = 8 * 1024 * 1024  # far beyond any context window's worth of text
MAX_REPEAT_ITEMS = 1024 * 1024      # "x" * n and [..] * n
MAX_EXPONENT_BITS = 4096            # a ** b where the result would be larger is refused


class TemplateError(Refused):
    pass


def _raise(message: str) -> None:
    raise TemplateError("chat template", message)


def _environment() -> Any:
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
            if op == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_REPEAT_ITEMS:
                        raise SecurityError(f"repetition to {len(seq) * n} items exceeds {MAX_REPEAT_ITEMS}")
                return operator.mul(left, right)
            if isinstance(left, int) and isinstance(right, int) and right > 0 and \
                    abs(left) > 1 and right * abs(left).bit_length() > MAX_EXPONENT_BITS:
                raise SecurityError(f"power {left} ** {right} exceeds {MAX_EXPONENT_BITS} bits")
            return operator.pow(left, right)

    env = Bounded(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise
    return env


def render(template: str, messages: list[dict[str, str]], bos_token: str = "", eos_token: str = "",
           add_generation_prompt: bool = True, max_chars: int = MAX_OUTPUT_CHARS, **extra: Any) -> str:
    from jinja2 import TemplateError as JinjaError
    from jinja2.exceptions import SecurityError

    env = _environment()
    try:
        parts: list[str] = []
        size = 0
        for piece in env.from_string(template).generate(
                messages=messages, bos_token=bos_token, eos_token=eos_token,
                add_generation_prompt=add_generation_prompt, **extra):
            size += len(piece)
            if size > max_chars:
                raise TemplateError("chat template", f"produced more than {max_chars} characters",
                                    "the template is hostile or broken; choose a catalog-curated template")
            parts.append(piece)
        return "".join(parts)
    except SecurityError as exc:
        raise TemplateError("chat template", f"tried to reach outside its sandbox or its limits ({exc})",
                            "the model's template is hostile or broken; it was not run") from None
    except JinjaError as exc:
        raise TemplateError("chat template", f"does not render ({exc})",
                            "choose a catalog-curated template for this model") from None
    except TemplateError:
        raise
    except MemoryError:
        raise TemplateError("chat template", "ran out of its memory budget while rendering",
                            "the template is hostile or broken; choose a catalog-curated template") from None
    except RecursionError:
        raise TemplateError("chat template", "recursed too deeply while rendering",
                            "the template is hostile or broken; choose a catalog-curated template") from None
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
