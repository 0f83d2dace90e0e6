"""What the benchmarks share: loopback plumbing, a generated file, the demo model
installed through Vetted's own pull, and how a figure is judged against its target.

Each bench script runs as `python bench/NAME.py`, so this folder is on its import path.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def no_proxy_for_loopback() -> None:
    """Loopback never goes through a proxy: for urllib (NO_PROXY) and curl/aria2c (no_proxy)."""
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = ",".join(filter(None, [os.environ.get(var), "127.0.0.1", "localhost"]))


def random_file(path: Path, size: int) -> float:
    """Writes `size` random bytes to `path` (its folder is created); returns the seconds taken."""
    path.parent.mkdir(parents=True)
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the loopback server did not start")


def read_all(path: Path) -> None:
    """Reads a file once, so every contender is then fed from the page cache."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(16 * MiB)
        while f.readinto(buf):
            pass


def mbs(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:.0f} MB/s"


def verdict(targets: dict[str, tuple[str, float]], key: str, out: dict) -> str:
    """`(target >= 0.9: met)` for the figure `out[key]` against `targets[key]`."""
    op, target = targets[key]
    ok = out[key] >= target if op == ">=" else out[key] <= target
    return f"(target {op} {target:g}: {'met' if ok else 'MISSED'})"


def install_smollm2(home: Path) -> tuple[Any, Any]:
    """The demo SmolLM2 model, signed into a catalog and pulled into VETTED_HOME=`home`
    (which the caller has set) as a user's would be; returns (locations, database)."""
    from catalog_kit import build  # tests/ helpers build a signed catalog
    from vetted.authoring.demo import smollm2_path
    from vetted.authoring.publish import generate_key
    from vetted.catalog.signed import load
    from vetted.install.pull import pull
    from vetted.paths import locations
    from vetted.store.db import open_db
    from vetted.trust.identity import PublicKey

    loc = locations().ensure()
    db = open_db(loc.database)
    priv, pub = generate_key(home / "keys")
    cat = build(home / "cat", priv, models=[{"id": "smol", "name": "SmolLM2", "publisher": "HF",
                                             "license": "Apache-2.0", "path": str(smollm2_path())}])
    pull(loc, db, load(str(cat), PublicKey(pub.read_bytes()), db), "smol")
    return loc, db
