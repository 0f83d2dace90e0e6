"""Reading a GGUF file's header without trusting it.

A small reader of our own instead of `gguf.GGUFReader`: that one memory-maps and decodes
every array (4 s for a 100 MB model here); this one reads the key/value header and the
tensor table with a bounds check on every length, in well under a second, and turns any
inconsistency into a clear `Refused` rather than an exception deep in a parser.

The header is hostile input until the file is verified, and it is only read after: from
the descriptor the store's check opened (`read_gguf_fd`). Even then every quantity is
bounded — nesting depth, item counts, string sizes and the total number of items walked
— so a crafted header costs at most a fraction of a second and a few MB, and says why.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vetted.errors import Refused

MAGIC = b"GGUF"
MAX_STRING = 4 * 1024 * 1024      # one string (a chat template is a few KB)
MAX_KEPT = 16 * 1024 * 1024       # all metadata strings kept, decoded (array items are not kept)
MAX_HEADER = 256 * 1024 * 1024    # the whole key/value section and tensor table (real ones: 1-20 MB)
MAX_KEY = 65_535                  # the GGUF spec's limit for a key
MAX_ARRAY = 50_000_000            # items in one array of numbers (skipped, not read)
MAX_WALKED = 2_000_000            # items read one by one, over the whole header (vocabularies: ~262k)
MAX_DEPTH = 4                     # arrays of arrays
MAX_KV = 65_536
MAX_TENSORS = 1_000_000

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


@dataclass
class GGUFInfo:
    path: Path
    version: int
    metadata: dict[str, Any]
    tensor_count: int
    parameter_count: int
    file_size: int
    vocab_sha256: str | None = None
    tensor_types: dict[int, int] = field(default_factory=dict)  # ggml type -> tensors

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_key(self, name: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{name}", default)

    @property
    def chat_template(self) -> str | None:
        t = self.metadata.get("tokenizer.chat_template")
        return t if isinstance(t, str) and t.strip() else None

    @property
    def context_length(self) -> int | None:
        v = self.arch_key("context_length")
        return int(v) if isinstance(v, int) else None


class _Reader:
    def __init__(self, f: BinaryIO, size: int, path: Path) -> None:
        self.f, self.size, self.path = f, size, path
        self.walked = 0
        self.kept = 0
        self.pos = 0  # tracked here: asking the file costs a system call per field

    def bad(self, what: str) -> Refused:
        return Refused(f"GGUF header of {self.path.name}", what,
                       "the file is malformed or truncated; it will not be loaded")

    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise self.bad(f"a field runs past the end of the file (offset {self.pos}, length {n})")
        self._advance(n)
        return self.f.read(n)

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise self.bad("an array runs past the end of the file")
        self._advance(n)
        self.f.seek(self.pos)

    def _advance(self, n: int) -> None:
        self.pos += n
        if self.pos > MAX_HEADER:
            raise self.bad(f"its metadata and tensor table run past {MAX_HEADER // (1024 * 1024)} MiB")

    def kept_string(self) -> str:
        s = self.string()
        self.kept += len(s)
        if self.kept > MAX_KEPT:
            raise self.bad(f"its metadata strings add up to more than {MAX_KEPT // (1024 * 1024)} MiB")
        return s

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self, limit: int = MAX_STRING) -> str:
        n = self.unpack("<Q")
        if n > limit:
            raise self.bad(f"a string claims {n} bytes (at most {limit} are accepted)")
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, keep_arrays: bool, hasher: Any = None, depth: int = 0) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == STRING:
            return self.string() if depth else self.kept_string()
        if vtype == ARRAY:
            if depth >= MAX_DEPTH:
                raise self.bad(f"arrays are nested more than {MAX_DEPTH} deep")
            itype, count = self.unpack("<I"), self.unpack("<Q")
            if count > MAX_ARRAY:
                raise self.bad(f"an array claims {count} items (at most {MAX_ARRAY} are accepted)")
            if itype in _SCALARS and not keep_arrays and hasher is None:
                self.skip(struct.calcsize(_SCALARS[itype]) * count)
                return count
            self.walked += count
            if self.walked > MAX_WALKED:
                raise self.bad(f"its metadata holds more than {MAX_WALKED} strings or nested items "
                               f"(an array of {count})")
            items = []
            for _ in range(count):
                v = self.value(itype, keep_arrays, None, depth + 1)
                if hasher is not None:
                    hasher.update(str(v).encode() + b"\x00")
                if keep_arrays:
                    items.append(v)
            return items if keep_arrays else count
        raise self.bad(f"unknown value type {vtype}")


def read_gguf(path: Path) -> GGUFInfo:
    """Parses a file the caller vouches for (a publisher's own source file, a test file).
    Installed models are read with `read_gguf_fd` from their checked descriptor."""
    with open(path, "rb") as f:
        return _parse(f, path)


def read_gguf_fd(fd: int, name: str) -> GGUFInfo:
    """Parses the header of an already-checked file through its descriptor (not its path)."""
    with open(os.dup(fd), "rb") as f:
        f.seek(0)
        return _parse(f, Path(name))


def _parse(f: BinaryIO, path: Path) -> GGUFInfo:
    """Parses header, metadata (arrays summarised by length) and tensor table."""
    size = os.fstat(f.fileno()).st_size
    r = _Reader(f, size, path)
    if r.read(4) != MAGIC:
        raise r.bad("it does not start with the GGUF magic bytes")
    version = r.unpack("<I")
    if version not in (2, 3):
        raise r.bad(f"unsupported GGUF version {version}")
    n_tensors, n_kv = r.unpack("<Q"), r.unpack("<Q")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise r.bad(f"implausible counts ({n_tensors} tensors, {n_kv} metadata keys)")
    meta: dict[str, Any] = {}
    vocab_hash = None
    for _ in range(n_kv):
        key = r.string(MAX_KEY)
        vtype = r.unpack("<I")
        if key == "tokenizer.ggml.tokens":
            h = hashlib.sha256()
            meta[key] = r.value(vtype, False, h)
            vocab_hash = h.hexdigest()
        else:
            meta[key] = r.value(vtype, False)
    params = 0
    types: dict[int, int] = {}
    for _ in range(n_tensors):
        r.string(MAX_KEY)
        n_dims = r.unpack("<I")
        if n_dims > 8:
            raise r.bad(f"a tensor claims {n_dims} dimensions")
        n = 1
        for _ in range(n_dims):
            n *= r.unpack("<Q")
        ttype = r.unpack("<I")
        r.unpack("<Q")  # offset
        params += n
        types[ttype] = types.get(ttype, 0) + 1
    return GGUFInfo(path, version, meta, n_tensors, params, size, vocab_hash, types)
