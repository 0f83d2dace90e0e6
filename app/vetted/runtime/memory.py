"""How much memory a model needs at a context length, before loading or downloading it.

    weights  = the GGUF file size (llama.cpp maps the tensors as they are stored)
    kv_cache = n_layer × n_ctx × n_head_kv × (head_dim_k + head_dim_v) × 2 bytes (f16 K and V)
               head_dim = attention.key_length / value_length, else n_embd / n_head
    compute  = n_ubatch × (n_embd × 4 × 8 + n_ff × 4 × 2)   (activations of a full batch)
    overhead = 55 MiB (Python + llama.cpp in the worker) + n_vocab × 150 bytes (tokenizer)

llama.cpp reserves a larger compute buffer (it is sized for a full batch of logits) but
only touches part of it, so this counts resident memory, which is what runs out.
Calibrated on SmolLM2-135M and Gemma 3 270M at contexts 512-8192 (worker RSS after a
600-token prompt): within ±10%; tests/test_memory_estimate.py holds it to ±20%.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vetted.runtime.gguf_meta import GGUFInfo

MiB = 1024 * 1024
OVERHEAD = 55 * MiB
PER_VOCAB = 150


@dataclass(frozen=True)
class Estimate:
    weights: int
    kv_cache: int
    compute: int
    overhead: int
    n_ctx: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute + self.overhead

    def describe(self) -> str:
        return (f"{self.total / MiB:.0f} MiB at context {self.n_ctx} (weights {self.weights / MiB:.0f}, "
                f"KV cache {self.kv_cache / MiB:.0f}, compute {self.compute / MiB:.0f}, "
                f"overhead {self.overhead / MiB:.0f})")


def estimate(info: GGUFInfo, n_ctx: int, n_ubatch: int = 512) -> Estimate:
    n_layer = int(info.arch_key("block_count", 0) or 0)
    n_embd = int(info.arch_key("embedding_length", 0) or 0)
    n_head = _first(info.arch_key("attention.head_count", 0)) or 1
    n_head_kv = _first(info.arch_key("attention.head_count_kv", n_head)) or n_head
    head_k = int(info.arch_key("attention.key_length", 0) or 0) or (n_embd // n_head if n_head else 0)
    head_v = int(info.arch_key("attention.value_length", 0) or 0) or head_k
    n_vocab = int(info.arch_key("vocab_size", 0) or 0) or int(info.metadata.get("tokenizer.ggml.tokens", 0) or 0)
    n_ff = _first(info.arch_key("feed_forward_length", 0)) or 4 * n_embd
    kv = n_layer * n_ctx * n_head_kv * (head_k + head_v) * 2
    ub = min(n_ubatch, n_ctx)
    compute = ub * (n_embd * 4 * 8 + n_ff * 4 * 2)
    return Estimate(info.file_size, kv, compute, OVERHEAD + n_vocab * PER_VOCAB, n_ctx)


def _first(v: object) -> int:
    """Some architectures store per-layer head counts as arrays (we keep only their length)."""
    return int(v) if isinstance(v, (int, float)) else 0


def available_memory() -> int:
    """Memory the OS could give a new process now (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


@dataclass(frozen=True)
class Fit:
    verdict: str  # "ok", "tight" (warn), "too_big" (refuse)
    needed: int
    available: int

    def message(self) -> str:
        return (f"needs about {self.needed / MiB:.0f} MiB, {self.available / MiB:.0f} MiB available")


def fits(needed: int, available: int | None = None) -> Fit:
    avail = available_memory() if available is None else available
    if avail <= 0:
        return Fit("ok", needed, avail)  # unknown: do not block
    if needed > avail:
        return Fit("too_big", needed, avail)
    if needed > 0.8 * avail:
        return Fit("tight", needed, avail)
    return Fit("ok", needed, avail)


def entry_estimate(size: int, ram_bytes: int | None) -> int:
    """Before a download there is no header to read: the catalog's figure, else the file
    size plus a margin (the same rule for every front end; core.Vetted enforces the fit)."""
    if ram_bytes:
        return ram_bytes
    return int(size * 1.15) + 120 * MiB
