"""`vetted`: with no arguments the desktop app, with a command the command line.

The one place that knows both front ends, so neither imports the other (the layers in
pyproject.toml's import-linter contracts).

An installer build (PyInstaller, packaging/) is one frozen executable for everything:
- `vetted --run-engine-worker` (hidden) is the llama.cpp worker process: a frozen app has
  no `python -m`, so `runtime/engine.py` starts the executable itself with this flag;
- started under the name `vetted-admin` (a link to the same executable), it is the
  authoring tool;
- `vetted --version` prints the version baked in at build time.
"""

from __future__ import annotations

import os
import sys

from vetted.version import BUILD_INFO, version  # noqa: F401 (BUILD_INFO: tests and packaging name it here)

WORKER_FLAG = "--run-engine-worker"
ADMIN_NAME = "vetted-admin"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [WORKER_FLAG]:  # first, before anything else is imported
        from vetted.runtime.worker import main as worker_main

        worker_main()
        return 0
    if argv is None and _invoked_as(ADMIN_NAME):
        from vetted.cli.admin import main as admin_main

        return admin_main(args)
    if args == ["--version"]:
        print(f"vetted {version()}")
        return 0
    if not args:
        try:
            from vetted.gui.app import main as gui_main
        except ImportError as exc:  # a headless install without the GUI extra
            from vetted.textsafe import one_line

            print(f"error: the desktop app needs PySide6 ({one_line(exc)}); see `vetted --help`", file=sys.stderr)
            return 2
        return gui_main()
    from vetted.cli import main as cli_main

    return cli_main(args)


def _invoked_as(name: str) -> bool:
    """Was this process started under `name` (a link to the frozen executable)? Only a frozen
    app dispatches on its name; the console scripts of a pip install are separate."""
    if not getattr(sys, "frozen", False) or not sys.argv:
        return False
    base = os.path.basename(sys.argv[0]).lower()
    return base in (name, name + ".exe")


if __name__ == "__main__":
    sys.exit(main())
