"""Does the file say what its provenance declares? Each mismatch names both values.

What is compared (declared → read from the GGUF header): architecture → general.architecture;
tokenizer → tokenizer.ggml.pre (and .model); vocab_sha256 → sha256 over the token list
(each token and a NUL byte, in order); parameters → the tensor element count (±2%) and
general.size_label; quantization → general.file_type; context_length → <arch>.context_length;
base models → general.base_model.* and the family implied by the tokenizer; license →
general.license.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vetted.cards.predicates import Provenance
from vetted.runtime.gguf_meta import GGUFInfo

FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
}
FAMILIES = ["llama", "qwen", "mistral", "gemma", "phi", "deepseek", "smollm", "falcon", "gpt2", "olmo", "command-r"]


@dataclass(frozen=True)
class Mismatch:
    field: str
    declared: str
    found: str
    found_field: str | None = None  # when the file's evidence is a different field

    def line(self) -> str:
        return f"declared {self.field}: {self.declared}; file's {self.found_field or self.field}: {self.found}"


def _family(text: str | None) -> str | None:
    t = (text or "").lower()
    for f in FAMILIES:
        if f in t:
            return f
    return None


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def check(declared: Provenance, info: GGUFInfo) -> list[Mismatch]:
    out: list[Mismatch] = []
    meta = info.metadata
    if declared.architecture and declared.architecture != info.architecture:
        out.append(Mismatch("architecture", declared.architecture, info.architecture or "(none)"))
    pre = str(meta.get("tokenizer.ggml.pre") or meta.get("tokenizer.ggml.model") or "")
    if declared.tokenizer and declared.tokenizer != pre:
        out.append(Mismatch("tokenizer", declared.tokenizer, pre or "(none)"))
    if declared.vocab_sha256 and info.vocab_sha256 and declared.vocab_sha256 != info.vocab_sha256:
        out.append(Mismatch("vocabulary hash", declared.vocab_sha256[:16] + "…", info.vocab_sha256[:16] + "…"))
    if declared.parameters:
        if abs(info.parameter_count - declared.parameters) > 0.02 * declared.parameters:
            out.append(Mismatch("parameter count", f"{declared.parameters:,}", f"{info.parameter_count:,}"))
    size_label = meta.get("general.size_label")
    if declared.parameters and isinstance(size_label, str) and (m := re.fullmatch(r"(\d+(?:\.\d+)?)([KMBT])", size_label)):
        scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[m.group(2)]
        if abs(float(m.group(1)) * scale - declared.parameters) > 0.25 * declared.parameters:
            out.append(Mismatch("size label", f"{declared.parameters / 1e6:.0f}M parameters", size_label))
    ftype = meta.get("general.file_type")
    if declared.quantization and isinstance(ftype, int):
        found = FILE_TYPES.get(ftype, f"type {ftype}")
        if _norm(declared.quantization) != _norm(found):
            out.append(Mismatch("quantisation", declared.quantization, found))
    if declared.context_length and info.context_length and declared.context_length != info.context_length:
        out.append(Mismatch("context length", str(declared.context_length), str(info.context_length)))
    file_bases = [str(meta[k]) for k in sorted(meta) if re.fullmatch(r"general\.base_model\.\d+\.(name|repo_url)", k)]
    for base in declared.base_models:
        if file_bases and not any(_norm(base.name) in _norm(b) or (base.repo and _norm(base.repo) in _norm(b))
                                  for b in file_bases):
            out.append(Mismatch("base model", base.name, ", ".join(file_bases)))
        fam, file_fam = _family(base.name), _family(pre) or _family(info.architecture)
        if base.relation in ("finetune", "quantized", "adapter") and fam and file_fam and fam != file_fam \
                and not (fam == "smollm" and file_fam == "llama"):
            out.append(Mismatch("base", base.name, pre or info.architecture, "tokenizer"))
    lic = meta.get("general.license")
    if isinstance(lic, str) and declared.license and _norm(lic) not in _norm(declared.license) \
            and _norm(declared.license) not in _norm(lic):
        out.append(Mismatch("licence", declared.license, lic))
    return out
