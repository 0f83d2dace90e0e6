"""Tiny GGUF files written by the test suite with the `gguf` package."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_gguf(path: Path, *, arch: str = "llama", chat_template: str | None = None,
               extra: dict | None = None, tensors: int = 1) -> Path:
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), arch)
    w.add_name("tiny test model")
    w.add_block_count(2)
    w.add_context_length(256)
    w.add_embedding_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["<s>", "</s>", "a", "b"])
    if chat_template is not None:
        w.add_chat_template(chat_template)
    for k, v in (extra or {}).items():
        if isinstance(v, str):
            w.add_string(k, v)
        else:
            w.add_uint32(k, v)
    for i in range(tensors):
        w.add_tensor(f"t{i}", np.ones((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
