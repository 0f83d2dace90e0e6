"""The GGUF header reader: real files parse; lying or broken files are refused clearly."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tiny_gguf import write_gguf
from vetted.errors import Refused
from vetted.runtime.gguf_meta import read_gguf
from vetted.runtime.memory import estimate, fits


def test_reads_a_written_gguf(tmp_path: Path) -> None:
    info = read_gguf(write_gguf(tmp_path / "t.gguf", chat_template="T", tensors=3))
    assert info.architecture == "llama" and info.context_length == 256
    assert info.tensor_count == 3 and info.parameter_count == 48
    assert info.chat_template == "T" and info.metadata["tokenizer.ggml.tokens"] == 4
    assert info.vocab_sha256 and len(info.vocab_sha256) == 64


def test_real_smollm2_header() -> None:
    from vetted.authoring.demo import smollm2_path

    info = read_gguf(smollm2_path())
    assert info.architecture == "llama"
    assert info.metadata["tokenizer.ggml.pre"] == "smollm"
    assert info.parameter_count == 134_515_008
    assert info.context_length == 8192


@pytest.mark.parametrize("cut", [3, 10, 30, 200])
def test_truncated_header_refused(tmp_path: Path, cut: int) -> None:
    src = write_gguf(tmp_path / "t.gguf")
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(src.read_bytes()[:cut])
    with pytest.raises(Refused, match="GGUF header of cut.gguf"):
        read_gguf(bad)


def test_not_gguf_and_huge_counts_refused(tmp_path: Path) -> None:
    p = tmp_path / "x.gguf"
    p.write_bytes(b"NOPE" + b"\0" * 100)
    with pytest.raises(Refused, match="magic"):
        read_gguf(p)
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 1))
    with pytest.raises(Refused, match="implausible"):
        read_gguf(p)
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**60))
    with pytest.raises(Refused, match="a string claims"):
        read_gguf(p)


def test_memory_estimate_components(tmp_path: Path) -> None:
    from vetted.authoring.demo import smollm2_path

    info = read_gguf(smollm2_path())
    e = estimate(info, 2048)
    # 30 layers × 2048 ctx × 3 kv heads × (64 + 64) × 2 bytes = 45 MiB
    assert e.kv_cache == 30 * 2048 * 3 * 128 * 2
    assert e.weights == info.file_size
    assert e.total > e.weights
    assert fits(e.total, available=e.total * 10).verdict == "ok"
    assert fits(e.total, available=int(e.total * 1.1)).verdict == "tight"
    assert fits(e.total, available=e.total // 2).verdict == "too_big"
