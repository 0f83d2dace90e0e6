"""The Sigstore public-good trusted root, pinned by digest in code.

A keyless signature is only as good as the trusted root it is checked against: whoever
can replace that root can mint "valid" signatures for any identity. The root Vetted
ships is therefore pinned here by its sha256, read once per process, checked, and only
those checked bytes are ever handed to `sigstore` — through a private copy in a folder
only this process created, because sigstore 4.5.1 builds a `TrustedRoot` only from a
file (`TrustedRoot.from_file`; its constructor from a parsed message is private API).
No environment variable selects another file, and swapping the shipped file makes every
keyless check refuse with the expected and found digests rather than trust the swap.

A private Sigstore (an organisation running its own) still comes in, explicitly, as
`vetted verify --trusted-root FILE` or the `--trusted-root` pinned with a catalog.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

from vetted.errors import Refused
from vetted.paths import pinned_trusted_root

# sha256 of resources/trust/sigstore-public-good.trusted_root.json as shipped. Updating the
# shipped root (a Sigstore key rotation) means updating this digest in the same change.
PUBLIC_GOOD_SHA256 = "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"

# Where the shipped copy is read from: the package's bundled `_resources` (installer
# builds) or the source tree's `resources/`. Module-level so tests can point it at a copy.
SHIPPED_ROOT: Path = pinned_trusted_root()

_MAX_ROOT_BYTES = 1024 * 1024
_lock = threading.Lock()
_verified: dict[Path, bytes] = {}  # shipped location -> its verified bytes
_private: dict[Path, Path] = {}  # shipped location -> private copy handed to sigstore
_dirs: list[str] = []


def public_good_bytes() -> bytes:
    """The shipped root's bytes, after checking them against the pinned digest (once per
    process and location). A mismatch or an unreadable file is a `Refused`."""
    src = Path(SHIPPED_ROOT)
    with _lock:
        cached = _verified.get(src)
        if cached is not None:
            return cached
        what = f"the pinned Sigstore public-good trusted root {src}"
        try:
            with open(src, "rb") as f:
                data = f.read(_MAX_ROOT_BYTES + 1)
        except OSError as exc:
            raise Refused(what, f"cannot be read ({exc.strerror or exc})",
                          "reinstall Vetted; keyless signatures cannot be checked without it") from None
        found = hashlib.sha256(data).hexdigest()
        if found != PUBLIC_GOOD_SHA256:
            raise Refused(what, f"expected sha256 {PUBLIC_GOOD_SHA256}, found {found}",
                          "the shipped trust root was altered; reinstall Vetted")
        _verified[src] = data
        return data


def public_good_path() -> Path:
    """A file holding exactly the verified bytes, for `TrustedRoot.from_file`.

    The copy lives in a folder created for this process (mode 0700) and is re-written
    if it has gone or changed, so what sigstore reads is always what was checked."""
    data = public_good_bytes()
    src = Path(SHIPPED_ROOT)
    with _lock:
        path = _private.get(src)
        if path is not None:
            try:
                if path.read_bytes() == data:
                    return path
            except OSError:
                pass
        folder = tempfile.mkdtemp(prefix="vetted-trusted-root-")
        if not _dirs:
            atexit.register(_cleanup)
        _dirs.append(folder)
        path = Path(folder) / "sigstore-public-good.trusted_root.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        with open(fd, "wb", closefd=True) as f:
            f.write(data)
        _private[src] = path
        return path


def _cleanup() -> None:
    for folder in _dirs:
        shutil.rmtree(folder, ignore_errors=True)
