"""Verification costs, measured against baselines in the same run, on a generated file.

  rehash_vs_sha256sum            Vetted's full re-verification throughput
                                 (`store.installed.check(full=True)`) / `sha256sum`'s   (target >= 0.95)
  verify_after_download_fraction time from the last byte received (the progress call with
                                 done == total) to `pull` returning "installed" / the
                                 whole `pull` time, from a loopback mirror               (target <= 0.02)
  download_vs_curl               Vetted's `pull` throughput / `curl -o`'s from the same
                                 loopback server, writing to the same filesystem         (target >= 0.9)

Set-up: a file of random bytes, a signing key from `publish.generate_key`, a signed
catalog from `publish.build_catalog` whose only source is `http://127.0.0.1:PORT` served
by `python -m http.server` in its own process (no GIL shared with the client; --server
sendfile serves with sendfile(2) instead, as production servers do), and the
real `fetch.install.pull`. Everything (served file, VETTED_HOME, curl's output) lives in
one temporary folder, hence on one filesystem; it is deleted at the end.

Fairness: the served file is read once before timing, so every contender is fed from the
page cache by the same server; `sync` runs before each timed step so nobody pays for
another's write-back; curl and Vetted alternate which goes first, and each writes right
after the other's copy was deleted, so both write into recycled page-cache pages (on a
VM, never-touched pages can cost several times more; an untimed --warmup round comes
first for the same reason). Each repetition uses a fresh VETTED_HOME (model purged,
folder deleted). The re-hash contenders (alternating order) read the same just-installed
file, warm in the page cache, before it is purged; caches are not dropped, which would
make the server and the re-hash disk-bound and measure the disk, not Vetted. Vetted does
not fsync a download (files verified in an earlier boot are re-hashed before they run),
so it is compared with a plain `curl -o`. Each figure is the median of --runs repetitions.

    .venv/bin/python bench/verify.py [--size-mib 1024] [--runs 5] [--warmup 1] [--tmpdir DIR]

The last line printed is one JSON object.
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

from benchkit import free_port, mbs, no_proxy_for_loopback, random_file, read_all, verdict, wait_port

# Each runs in its own process, so it shares no GIL with the client under test.
SERVERS = {
    "python": lambda port, folder: [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                    "--directory", str(folder)],
    "sendfile": lambda port, folder: [sys.executable, str(Path(__file__).resolve()), "--serve-sendfile",
                                      str(port), str(folder)],
}

SERVER_DESC = {"python": "python -m http.server (64 KiB copy loop)",
               "sendfile": "http.server handler answering with sendfile(2)"}

TARGETS = {"rehash_vs_sha256sum": (">=", 0.95), "verify_after_download_fraction": ("<=", 0.02),
           "download_vs_curl": (">=", 0.9)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024, help="size of the generated file (default 1024)")
    ap.add_argument("--runs", type=int, default=5, help="timed repetitions; medians are reported (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--tmpdir", default=None, help="where the temporary folder goes (default: the system's)")
    ap.add_argument("--server", choices=sorted(SERVERS), default="python",
                    help="loopback server: python = `python -m http.server` (64 KiB read/write copy loop, "
                         "the default); sendfile = the same handler answering with sendfile(2), as nginx "
                         "or a CDN would")
    ap.add_argument("--serve-sendfile", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_sendfile:
        return _serve_sendfile(int(args.serve_sendfile[0]), args.serve_sendfile[1])
    missing = [tool for tool in ("curl", "sha256sum") if not shutil.which(tool)]
    if missing:
        print(f"error: {' and '.join(missing)} not found on PATH; the baselines need it "
              "(e.g. apt-get install curl coreutils)", file=sys.stderr)
        return 2
    if args.size_mib < 1 or args.runs < 1 or args.warmup < 0:
        ap.error("--size-mib and --runs must be at least 1, --warmup at least 0")
    no_proxy_for_loopback()

    work = Path(tempfile.mkdtemp(prefix="vetted-bench-verify-", dir=args.tmpdir))
    try:
        return run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args) -> int:
    from vetted.catalog.signed import load
    from vetted.digest import sha256_file
    from vetted.install.pull import pull
    from vetted.paths import locations
    from vetted.authoring.publish import build_catalog, generate_key
    from vetted.store import installed
    from vetted.store.db import open_db
    from vetted.trust.identity import PublicKey

    size = args.size_mib * 1024 * 1024
    src = work / "src" / "big.gguf"
    print(f"generated {args.size_mib} MiB of random bytes in {random_file(src, size):.1f} s at {src.parent}")

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    priv, pub = generate_key(work / "keys")
    cat_dir = work / "cat"
    t0 = time.perf_counter()
    catalog = build_catalog(
        {"id": "org.bench.verify", "name": "Bench", "publisher": "Bench", "version": 1,
         "models": [{"id": "big", "name": "Big", "publisher": "Bench", "license": "MIT",
                     "path": str(src), "sources": {"mirrors": [base_url]}}]},
        cat_dir, priv, cat_dir / "out")
    mirror_dir = cat_dir / "out" / "mirror"
    served = mirror_dir / "big.gguf"
    print(f"signed catalog built in {time.perf_counter() - t0:.1f} s; mirror {base_url}/ -> {mirror_dir}")
    spec = PublicKey(pub.read_bytes())

    server = subprocess.Popen(SERVERS[args.server](port, mirror_dir), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    r: dict[str, list[float]] = {k: [] for k in (
        "curl_s", "pull_s", "pull_to_last_byte_s", "tail_s", "fraction", "chunks",
        "check_s", "sha256_file_s", "sha256sum_s")}
    try:
        wait_port(port)
        read_all(served)  # page cache warm for every contender
        for i in range(-args.warmup, args.runs):
            if i == 0:  # the warm-up rounds' figures are dropped
                for v in r.values():
                    v.clear()
            home = work / f"home-{i + args.warmup}"

            def do_curl() -> None:
                dest = work / "curl.out"
                os.sync()
                t = time.perf_counter()
                subprocess.run(["curl", "-sS", "--fail", "-o", str(dest), f"{base_url}/big.gguf"], check=True)
                r["curl_s"].append(time.perf_counter() - t)
                got = dest.stat().st_size
                dest.unlink()  # frees its pages before the next contender writes
                if got != size:
                    raise RuntimeError(f"curl got {got} bytes, expected {size}")

            def do_vetted() -> None:
                """pull into a fresh VETTED_HOME, re-verify the installed file, then purge it."""
                os.environ["VETTED_HOME"] = str(home)
                loc = locations().ensure()
                db = open_db(loc.database)
                loaded = load(str(catalog), spec, db)
                marks: dict[str, float] = {}
                calls = [0]

                def progress(_name: str, done: int, total: int) -> None:
                    calls[0] += 1
                    if done == total and "last" not in marks:
                        marks["last"] = time.perf_counter()

                os.sync()
                t = time.perf_counter()
                res = pull(loc, db, loaded, "big", progress=progress)
                end = time.perf_counter()
                if res.already or "last" not in marks:
                    raise RuntimeError("pull did not download the file")
                r["pull_s"].append(end - t)
                r["pull_to_last_byte_s"].append(marks["last"] - t)
                r["tail_s"].append(end - marks["last"])
                r["fraction"].append((end - marks["last"]) / (end - t))
                r["chunks"].append(calls[0])

                path = res.model.files[0].path
                want = res.model.files[0].sha256

                def do_check() -> None:
                    os.sync()
                    t = time.perf_counter()
                    res = installed.check(db, "big", full=True)
                    r["check_s"].append(time.perf_counter() - t)
                    assert res.rehashed == ["big.gguf"], res

                def do_sha256_file() -> None:
                    os.sync()
                    t = time.perf_counter()
                    digest = sha256_file(path)
                    r["sha256_file_s"].append(time.perf_counter() - t)
                    assert digest == want

                def do_sha256sum() -> None:
                    os.sync()
                    t = time.perf_counter()
                    out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True,
                                         text=True).stdout
                    r["sha256sum_s"].append(time.perf_counter() - t)
                    assert out.split()[0] == want

                steps = [do_check, do_sha256_file, do_sha256sum]
                for step in steps if i % 2 == 0 else steps[::-1]:
                    step()
                installed.purge(db, "big")  # frees its pages before the next contender writes
                db.close()
                shutil.rmtree(home)

            # Either contender writes right after the other's 1 GiB was freed, so both get
            # recycled page-cache pages (on a VM, never-touched pages cost several times more).
            for step in ((do_curl, do_vetted) if i % 2 == 0 else (do_vetted, do_curl)):
                step()

            print(("warm-up: " if i < 0 else f"run {i + 1}/{args.runs}: ") +
                  f"pull {mbs(size, r['pull_s'][-1])} ({r['pull_s'][-1]:.3f} s, last byte at "
                  f"{r['pull_to_last_byte_s'][-1]:.3f} s, tail {r['tail_s'][-1] * 1e3:.1f} ms = "
                  f"{r['fraction'][-1]:.4f}, {r['chunks'][-1]:.0f} reads), "
                  f"curl {mbs(size, r['curl_s'][-1])}; "
                  f"check(full) {mbs(size, r['check_s'][-1])}, sha256_file {mbs(size, r['sha256_file_s'][-1])}, "
                  f"sha256sum {mbs(size, r['sha256sum_s'][-1])}", flush=True)
    finally:
        server.terminate()
        server.wait()

    med = {k: statistics.median(v) for k, v in r.items()}
    out = {
        "rehash_vs_sha256sum": round(med["sha256sum_s"] / med["check_s"], 3),
        "verify_after_download_fraction": round(med["fraction"], 5),
        "download_vs_curl": round(med["curl_s"] / med["pull_s"], 3),
        "rehash_sha256_file_vs_sha256sum": round(med["sha256sum_s"] / med["sha256_file_s"], 3),
        # the same ratios taken within each run, then the median (less sensitive to drift)
        "paired_rehash_vs_sha256sum": round(statistics.median(
            s / c for s, c in zip(r["sha256sum_s"], r["check_s"])), 3),
        "paired_download_vs_curl": round(statistics.median(
            c / p for c, p in zip(r["curl_s"], r["pull_s"])), 3),
        "vetted_check_full_mb_s": round(size / med["check_s"] / 1e6, 1),
        "vetted_sha256_file_mb_s": round(size / med["sha256_file_s"] / 1e6, 1),
        "sha256sum_mb_s": round(size / med["sha256sum_s"] / 1e6, 1),
        "vetted_pull_mb_s": round(size / med["pull_s"] / 1e6, 1),
        "curl_mb_s": round(size / med["curl_s"] / 1e6, 1),
        "vetted_pull_s": round(med["pull_s"], 4),
        "vetted_last_byte_to_installed_s": round(med["tail_s"], 4),
        "curl_s": round(med["curl_s"], 4),
        "vetted_check_full_s": round(med["check_s"], 4),
        "sha256sum_s": round(med["sha256sum_s"], 4),
        "size_mib": args.size_mib, "runs": args.runs, "warmup": args.warmup, "cpus": os.cpu_count(),
        "server": args.server,
        "page_cache": "served file pre-read (warm for all); untimed warm-up round; sync before each timed step; "
                      "each download writes right after the other's copy was deleted; re-hash reads the "
                      "just-installed file warm; caches not dropped",
    }
    print()
    print(f"server: {SERVER_DESC[args.server]}, own process, {base_url}")
    print(f"page cache: {out['page_cache']}; curl/pull and re-hash order alternate per run")
    print(f"re-verification: check(full=True) {out['vetted_check_full_mb_s']} MB/s "
          f"(sha256_file {out['vetted_sha256_file_mb_s']} MB/s) vs sha256sum {out['sha256sum_mb_s']} MB/s "
          f"-> rehash_vs_sha256sum {out['rehash_vs_sha256sum']} {verdict(TARGETS, 'rehash_vs_sha256sum', out)}")
    print(f"verify after download: {med['tail_s'] * 1e3:.1f} ms of {med['pull_s']:.3f} s "
          f"-> verify_after_download_fraction {out['verify_after_download_fraction']} "
          f"{verdict(TARGETS, 'verify_after_download_fraction', out)}")
    print(f"download: pull {out['vetted_pull_mb_s']} MB/s vs curl {out['curl_mb_s']} MB/s "
          f"-> download_vs_curl {out['download_vs_curl']} {verdict(TARGETS, 'download_vs_curl', out)}")
    print(json.dumps(out))
    return 0


def _serve_sendfile(port: int, folder: str) -> int:
    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        def copyfile(self, source, outputfile) -> None:
            self.wfile.flush()
            self.connection.sendfile(source)

        def log_message(self, *_args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                             lambda *a, **k: Handler(*a, directory=folder, **k))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
