"""This copy's version, as `vetted --version` and Help ▸ About say it.

A leaf both front ends and the launcher import: a frozen build (packaging/) bakes its
version into `vetted-build.txt` inside the bundle, where no package metadata exists; a pip
install has the distribution's metadata; a bare source tree has `__version__`.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

BUILD_INFO = "vetted-build.txt"  # written by packaging/vetted.spec next to the frozen modules


def version() -> str:
    """The version baked into a frozen build, else the installed package's metadata, else
    the source's own `__version__`."""
    meipass = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and meipass:
        try:
            with open(os.path.join(meipass, BUILD_INFO), encoding="utf-8") as f:
                baked = f.readline().strip()
            if baked:
                return baked
        except OSError:
            pass
    try:
        return metadata.version("vetted")
    except metadata.PackageNotFoundError:
        from vetted import __version__

        return __version__
