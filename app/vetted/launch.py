"""`vetted`: with no arguments the desktop app, with a command the command line.

The one place that knows both front ends, so neither imports the other (the layers in
pyproject.toml's import-linter contracts).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
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


if __name__ == "__main__":
    sys.exit(main())
