"""Strips the frozen tree's ELF files (`strip --strip-unneeded`), keeping a file unstripped
when stripping would leave a LOAD segment whose file offset and address disagree modulo its
alignment: binutils' strip does that to libraries that auditwheel rewrote with patchelf (numpy's
OpenBLAS), and the dynamic loader then refuses them ("ELF load command address/offset not
page-aligned"). Prints the files kept unstripped, one per line (lintian overrides name them)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def loads_aligned(path: Path) -> bool:
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] == ["LOAD"]:
            offset, vaddr, align = int(parts[1], 16), int(parts[2], 16), int(parts[-1], 16)
            if align > 1 and (vaddr - offset) % align:
                return False
    return True


def main(root: str) -> int:
    kept = []
    for path in sorted(Path(root).rglob("*")):
        if path.is_symlink() or not path.is_file() or not is_elf(path):
            continue
        backup = path.with_name(path.name + ".unstripped")
        shutil.copy2(path, backup)
        done = subprocess.run(["strip", "--strip-unneeded", "--remove-section=.comment",
                               "--remove-section=.note", str(path)], capture_output=True)
        if done.returncode != 0 or not loads_aligned(path):
            backup.replace(path)
            kept.append(path.relative_to(root).as_posix())
        else:
            backup.unlink()
    for name in kept:
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
