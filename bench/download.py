"""Download throughput against standard tools, on a generated file served from loopback, in one run.

  capped_vs_aria2c              the server caps each connection at --cap MB/s (25, as a CDN
                                does): Vetted's `pull` throughput (to installed: signature,
                                download, digest, install) / `aria2c -x 8 -s 8`'s      (target >= 0.9)
  capped_vs_curl                the same cap: / curl's, one connection                   (target >= 4)
  uncapped_vs_curl_tee_openssl  no cap: / `curl -s URL | tee FILE | openssl dgst -sha256`,
                                the same work (receive, write, hash with OpenSSL's
                                SHA-256) done by standard tools                          (target >= 0.95)
  hash_tail_s                   in the capped run: seconds from the last byte received to
                                the digest known (fetch/parallel.py logs both moments)   (target <= 0.5)

Set-up: a file of random bytes; a signed catalog (`publish.build_catalog`) whose only
source is a loopback mirror; two servers, each in its own process (no GIL shared with
the client under test): tests/range_server.py, capped per connection (a token bucket
per connection, kept across keep-alive requests) and uncapped, both answering Range and
sending with sendfile(2). Vetted runs with its default settings (8 connections), the real
`install.pull.pull` into a fresh VETTED_HOME each time.

Fairness (as bench/verify.py): the served file is read once first, so every contender is
fed from the page cache; `sync` runs before each timed step; each contender writes right
after the previous one's copy was deleted (recycled page-cache pages); the order of the
contenders rotates per run; an untimed warm-up round comes first (without the slow capped
curl). Figures are medians of --runs repetitions; each contender's output is checked
(size, and the digest where the tool gives one).

    .venv/bin/python bench/download.py [--size-mib 512] [--cap 25] [--runs 3] [--warmup 1] [--tmpdir DIR]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import free_port, mbs, no_proxy_for_loopback, random_file, read_all, verdict, wait_port

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"capped_vs_aria2c": (">=", 0.9), "capped_vs_curl": (">=", 4.0),
           "uncapped_vs_curl_tee_openssl": (">=", 0.95), "hash_tail_s": ("<=", 0.5)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=512, help="size of the generated file (default 512)")
    ap.add_argument("--cap", type=float, default=25.0, help="per-connection cap of the capped server, MB/s")
    ap.add_argument("--runs", type=int, default=3, help="timed repetitions; medians are reported (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--tmpdir", default=None, help="where the temporary folder goes (default: the system's)")
    ap.add_argument("--serve", nargs=3, metavar=("PORT", "DIR", "CAP_BPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return _serve(int(args.serve[0]), Path(args.serve[1]), float(args.serve[2]))
    missing = [t for t in ("aria2c", "curl", "tee", "openssl") if not shutil.which(t)]
    if missing:
        print(f"error: {', '.join(missing)} not found on PATH; the baselines need them "
              "(apt-get install aria2 curl openssl coreutils; `make bench` installs them)", file=sys.stderr)
        return 2
    if args.size_mib < 1 or args.runs < 1 or args.warmup < 0 or args.cap <= 0:
        ap.error("--size-mib, --runs and --cap must be positive, --warmup at least 0")
    no_proxy_for_loopback()  # for curl and aria2c too
    work = Path(tempfile.mkdtemp(prefix="vetted-bench-download-", dir=args.tmpdir))
    try:
        return run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Marks(logging.Handler):
    """fetch/parallel.py logs when the last byte landed and when the digest was known."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        last, digest = getattr(record, "last_byte_at", None), getattr(record, "digest_at", None)
        if last is not None and digest is not None:
            self.seen.append((last, digest))


def run(work: Path, args: argparse.Namespace) -> int:
    from vetted.authoring.publish import build_catalog, generate_key
    from vetted.catalog.signed import load
    from vetted.install.pull import pull
    from vetted.paths import locations
    from vetted.store import installed
    from vetted.store.db import open_db
    from vetted.trust.identity import PublicKey

    size = args.size_mib * 1024 * 1024
    cap_bps = args.cap * 1e6
    src = work / "src" / "big.gguf"
    print(f"generated {args.size_mib} MiB of random bytes in {random_file(src, size):.1f} s")

    ports = {"capped": free_port(), "uncapped": free_port()}
    urls = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    priv, pub = generate_key(work / "keys")
    catalogs = {}
    for kind, url in urls.items():  # one catalog per server, each built (and signed) once
        out = work / f"cat-{kind}"
        catalogs[kind] = build_catalog(
            {"id": f"org.bench.download.{kind}", "name": "Bench", "publisher": "Bench", "version": 1,
             "models": [{"id": "big", "name": "Big", "publisher": "Bench", "license": "MIT",
                         "path": str(src), "sources": {"mirrors": [url]}}]}, out, priv, out / "out")
    want = json.loads(catalogs["capped"].read_bytes())["models"][0]["files"][0]["sha256"]
    spec = PublicKey(pub.read_bytes())
    servers = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(ports[kind]),
                                 str(catalogs[kind].parent / "mirror"), str(cap_bps if kind == "capped" else 0)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for kind in ports]
    marks = _Marks()
    logging.getLogger("vetted.fetch").addHandler(marks)
    logging.getLogger("vetted.fetch").setLevel(logging.DEBUG)
    r: dict[str, list[float]] = {k: [] for k in (
        "vetted_capped_s", "aria2c_capped_s", "curl_capped_s", "vetted_uncapped_s", "curl_tee_openssl_s",
        "hash_tail_s", "last_byte_to_installed_s", "uncapped_hash_tail_s")}
    try:
        for port in ports.values():
            wait_port(port)
        for kind in ports:
            read_all(catalogs[kind].parent / "mirror" / "big.gguf")  # page cache warm for every contender
        for i in range(-args.warmup, args.runs):
            if i == 0:
                for v in r.values():
                    v.clear()
            home = work / f"home-{i + args.warmup}"
            got = work / "got.out"

            def vetted(kind: str) -> None:
                os.environ["VETTED_HOME"] = str(home)
                loc = locations().ensure()
                db = open_db(loc.database)
                loaded = load(str(catalogs[kind]), spec, db)
                marks.seen.clear()
                os.sync()
                t = time.perf_counter()
                res = pull(loc, db, loaded, "big")
                end, end_wall = time.perf_counter(), time.time()
                if res.already or res.model.files[0].sha256 != want or len(marks.seen) != 1:
                    raise RuntimeError("pull did not download the file in ranged parts")
                last, digest = marks.seen[0]  # wall-clock times, as logging records them
                r[f"vetted_{kind}_s"].append(end - t)
                if kind == "capped":
                    r["hash_tail_s"].append(digest - last)
                    r["last_byte_to_installed_s"].append(end_wall - last)
                else:
                    r["uncapped_hash_tail_s"].append(digest - last)
                installed.purge(db, "big")  # frees its pages before the next contender writes
                db.close()
                shutil.rmtree(home)

            def tool(name: str, argv: list[str], check_digest: bool = False) -> None:
                os.sync()
                t = time.perf_counter()
                out = subprocess.run(argv, check=True, capture_output=True, text=True)
                r[name].append(time.perf_counter() - t)
                have = got.stat().st_size
                got.unlink()
                if have != size or (check_digest and want not in out.stdout):
                    raise RuntimeError(f"{argv[0]}: {have} bytes, expected {size}; {out.stdout.strip()}")

            capped_file = f"{urls['capped']}/big.gguf"
            steps = [
                lambda: vetted("capped"),
                lambda: tool("aria2c_capped_s", ["aria2c", "-x", "8", "-s", "8", "-q", "--allow-overwrite=true",
                                                 "--auto-file-renaming=false", "-d", str(work), "-o", got.name,
                                                 capped_file]),
                lambda: vetted("uncapped"),
                lambda: tool("curl_tee_openssl_s", ["bash", "-o", "pipefail", "-c",
                                                    f"curl -sS --fail {urls['uncapped']}/big.gguf | tee {got} | "
                                                    "openssl dgst -sha256"], check_digest=True),
            ]
            if i >= 0:  # one capped connection takes size / cap seconds: not in the warm-up
                steps.append(lambda: tool("curl_capped_s", ["curl", "-sS", "--fail", "-o", str(got), capped_file]))
            k = (i + args.warmup) % len(steps)
            for step in steps[k:] + steps[:k]:
                step()
            if i < 0:
                print(f"warm-up: vetted capped {mbs(size, r['vetted_capped_s'][-1])}, aria2c "
                      f"{mbs(size, r['aria2c_capped_s'][-1])}; uncapped vetted {mbs(size, r['vetted_uncapped_s'][-1])},"
                      f" curl|tee|openssl {mbs(size, r['curl_tee_openssl_s'][-1])}", flush=True)
            else:
                print(f"run {i + 1}/{args.runs}: capped {args.cap:g} MB/s per connection: vetted "
                      f"{mbs(size, r['vetted_capped_s'][-1])} (hash tail {r['hash_tail_s'][-1] * 1e3:.0f} ms), "
                      f"aria2c -x8 -s8 {mbs(size, r['aria2c_capped_s'][-1])}, curl {mbs(size, r['curl_capped_s'][-1])}"
                      f"; uncapped: vetted {mbs(size, r['vetted_uncapped_s'][-1])}, curl|tee|openssl "
                      f"{mbs(size, r['curl_tee_openssl_s'][-1])}", flush=True)
    finally:
        for s in servers:
            s.terminate()
            s.wait()

    med = {k: statistics.median(v) for k, v in r.items()}
    out = {
        "capped_vs_aria2c": round(med["aria2c_capped_s"] / med["vetted_capped_s"], 3),
        "capped_vs_curl": round(med["curl_capped_s"] / med["vetted_capped_s"], 3),
        "uncapped_vs_curl_tee_openssl": round(med["curl_tee_openssl_s"] / med["vetted_uncapped_s"], 3),
        "hash_tail_s": round(med["hash_tail_s"], 4),
        "vetted_capped_mb_s": round(size / med["vetted_capped_s"] / 1e6, 1),
        "aria2c_capped_mb_s": round(size / med["aria2c_capped_s"] / 1e6, 1),
        "curl_capped_mb_s": round(size / med["curl_capped_s"] / 1e6, 1),
        "vetted_uncapped_mb_s": round(size / med["vetted_uncapped_s"] / 1e6, 1),
        "curl_tee_openssl_mb_s": round(size / med["curl_tee_openssl_s"] / 1e6, 1),
        **{k: round(v, 4) for k, v in med.items()},
        "size_mib": args.size_mib, "cap_mb_s_per_connection": args.cap, "runs": args.runs,
        "warmup": args.warmup, "cpus": os.cpu_count(),
        "vetted_settings": "defaults (8 connections)",
        "server": "tests/range_server.py in its own process (sendfile; token bucket per connection)",
    }
    print()
    print(f"capped at {args.cap:g} MB/s per connection: vetted {out['vetted_capped_mb_s']} MB/s, aria2c -x 8 -s 8 "
          f"{out['aria2c_capped_mb_s']} MB/s, curl {out['curl_capped_mb_s']} MB/s")
    print(f"  -> capped_vs_aria2c {out['capped_vs_aria2c']} {verdict(TARGETS, 'capped_vs_aria2c', out)}, "
          f"capped_vs_curl {out['capped_vs_curl']} {verdict(TARGETS, 'capped_vs_curl', out)}")
    print(f"  -> hash_tail_s {out['hash_tail_s']} {verdict(TARGETS, 'hash_tail_s', out)} (last byte to installed: "
          f"{med['last_byte_to_installed_s'] * 1e3:.0f} ms)")
    print(f"uncapped: vetted {out['vetted_uncapped_mb_s']} MB/s, curl | tee | openssl dgst "
          f"{out['curl_tee_openssl_mb_s']} MB/s -> uncapped_vs_curl_tee_openssl "
          f"{out['uncapped_vs_curl_tee_openssl']} {verdict(TARGETS, 'uncapped_vs_curl_tee_openssl', out)}")
    print(json.dumps(out))
    return 0


def _serve(port: int, folder: Path, cap_bps: float) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from range_server import RangeServer

    server = RangeServer(folder, cap_bps=cap_bps or None, port=port)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
