"""Installs real (or deliberately broken, but signed) GGUF files for runtime tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from catalog_kit import build
from vetted.catalog.signed import load
from vetted.install.pull import pull
from vetted.trust.identity import PublicKey


def install_files(tmp: Path, loc, db, key_pair, files: dict[str, Path], chat_template: str | None = None) -> None:
    """Signs each file as its own model in a test catalog and pulls it through the store."""
    models = []
    for model_id, src in files.items():
        m = {"id": model_id, "name": model_id, "publisher": "Test", "license": "Apache-2.0", "path": str(src)}
        if chat_template:
            m["runtime"] = {"chat_template": chat_template}
        models.append(m)
    cat = build(tmp, key_pair[0], models=models)
    loaded = load(str(cat), PublicKey(key_pair[1].read_bytes()), db)
    for model_id in files:
        pull(loc, db, loaded, model_id)


def smollm2_copy(tmp: Path) -> Path:
    from vetted.authoring.demo import smollm2_path

    return smollm2_path()


def truncated_copy(src: Path, dest: Path, fraction: float = 0.5) -> Path:
    with open(src, "rb") as f:
        dest.write_bytes(f.read(int(src.stat().st_size * fraction)))
    return dest


def corrupted_copy(src: Path, dest: Path, key: bytes, new_value: int) -> Path:
    """Rewrites a uint32 metadata value in place (e.g. the embedding length)."""
    shutil.copyfile(src, dest)
    data = bytearray(dest.read_bytes()[: 4 * 1024 * 1024])
    i = data.index(key) + len(key)
    assert int.from_bytes(data[i:i + 4], "little") == 4  # GGUF type tag: uint32
    with open(dest, "r+b") as f:
        f.seek(i + 4)
        f.write(new_value.to_bytes(4, "little"))
    return dest
