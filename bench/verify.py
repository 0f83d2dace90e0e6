"""Verification costs, measured against baselines in the same run, on a generated file.

  rehash_vs_sha256sum            Vetted's full re-verification throughput / sha256sum's (target >= 0.95)
  verify_after_download_fraction time from the last byte received to "installed" / whole pull time
                                 from a loopback server (target <= 0.02)
  download_vs_curl               Vetted's download throughput / curl's from the same server (target >= 0.9)

Each figure is the median of --runs repetitions; the served file is in the page cache for
every contender (read once before timing starts), and `sync` runs before each timed step
so no contender pays for another's write-back. Vetted does not fsync a download (see
store/installed.py: a file verified in an earlier boot is re-hashed before it runs), so
it is compared with a plain `curl -o`.

    .venv/bin/python bench/verify.py [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("curl") or not shutil.which("sha256sum"):
        print("curl and sha256sum are needed (make setup installs curl)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="vetted-bench-verify-"))
    try:
        return run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args) -> int:
    os.environ["VETTED_HOME"] = str(work / "home")
    from catalog_kit import build

    from vetted.catalog.signed import load
    from vetted.fetch.install import pull
    from vetted.paths import locations
    from vetted.publish import generate_key
    from vetted.store import installed
    from vetted.store.db import open_db
    from vetted.trust.identity import PublicKey

    size = args.size_mib * 1024 * 1024
    src = work / "src" / "big.gguf"
    src.parent.mkdir(parents=True)
    with open(src, "wb") as f:
        block = os.urandom(16 * 1024 * 1024)
        for _ in range(size // len(block)):
            f.write(block[:4] + os.urandom(64) + block[68:])
    print(f"generated {size / 2**20:.0f} MiB test file")

    priv, pub = generate_key(work / "keys")
    cat_dir = work / "cat"
    mirror_dir = cat_dir / "out" / "mirror"
    port = _free_port()
    cat = build(cat_dir, priv, models=[{"id": "big", "name": "Big", "publisher": "P", "license": "MIT",
                                       "path": str(src), "sources": {"mirrors": [f"http://127.0.0.1:{port}"]}}])
    # a plain static server in its own process, so it does not share our GIL
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(mirror_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        loc = locations().ensure()
        db = open_db(loc.database)
        spec = PublicKey(pub.read_bytes())
        _read_all(mirror_dir / "big.gguf")  # page cache warm for every contender

        pulls, curls, fractions, vetted_rehash, sha256sum = [], [], [], [], []
        for i in range(args.runs):
            # -- curl, same server, writing to the same filesystem
            dest = work / "curl.out"
            os.sync()  # start each contender with no dirty pages being written back
            t0 = time.perf_counter()
            subprocess.run(["curl", "-s", "-o", str(dest), f"http://127.0.0.1:{port}/big.gguf"], check=True)
            curls.append(size / (time.perf_counter() - t0))
            dest.unlink()

            # -- Vetted pull: hashing while streaming, then verification and install
            loaded = load(str(cat), spec, db)
            marks: dict[str, float] = {}

            def progress(_name, done, total):
                if done >= total and "last_byte" not in marks:
                    marks["last_byte"] = time.perf_counter()

            os.sync()
            t0 = time.perf_counter()
            pull(loc, db, loaded, "big", progress=progress, timeout=30)
            t_end = time.perf_counter()
            pulls.append(size / (t_end - t0))
            fractions.append((t_end - marks["last_byte"]) / (t_end - t0))

            # -- full re-verification vs sha256sum, the same installed file
            path = installed.get(db, "big").files[0].path
            for order in ((0, 1) if i % 2 == 0 else (1, 0)):
                os.sync()
                t0 = time.perf_counter()
                if order == 0:
                    installed.check(db, "big", full=True)
                    vetted_rehash.append(size / (time.perf_counter() - t0))
                else:
                    subprocess.run(["sha256sum", str(path)], check=True, stdout=subprocess.DEVNULL)
                    sha256sum.append(size / (time.perf_counter() - t0))

            installed.purge(db, "big")
            print(f"run {i}: pull {pulls[-1] / 1e6:.0f} MB/s (verify-after-download {fractions[-1]:.4f}), "
                  f"curl {curls[-1] / 1e6:.0f} MB/s, re-hash {vetted_rehash[-1] / 1e6:.0f} MB/s, "
                  f"sha256sum {sha256sum[-1] / 1e6:.0f} MB/s")
    finally:
        server.terminate()
        server.wait()

    med = statistics.median
    out = {
        "rehash_vs_sha256sum": round(med(vetted_rehash) / med(sha256sum), 3),
        "verify_after_download_fraction": round(med(fractions), 5),
        "download_vs_curl": round(med(pulls) / med(curls), 3),
        "vetted_rehash_mb_s": round(med(vetted_rehash) / 1e6, 1),
        "sha256sum_mb_s": round(med(sha256sum) / 1e6, 1),
        "vetted_download_mb_s": round(med(pulls) / 1e6, 1),
        "curl_mb_s": round(med(curls) / 1e6, 1),
        "size_mib": args.size_mib, "runs": args.runs,
    }
    print(json.dumps(out))
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int) -> None:
    import socket

    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the loopback server did not start")


def _read_all(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(16 * 1024 * 1024):
            pass


if __name__ == "__main__":
    sys.exit(main())
