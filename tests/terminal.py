"""Starting a CLI the way a terminal does, so that Ctrl-C reaches it.

A shell without job control starts background commands with SIGINT ignored, and an
ignored signal stays ignored across fork and exec: when the test suite itself runs in
the background (a CI runner's `cmd &`, `nohup`), every `vetted` it starts would ignore
the SIGINT a test sends — Python installs its KeyboardInterrupt handler only when SIGINT
is not ignored at start-up. A person pressing Ctrl-C in a terminal always delivers it, so
the Ctrl-C tests start the real `vetted` script through this small exec wrapper, which
sets SIGINT back to its default first. The PID stays the same (exec), so the test signals
the `vetted` process itself.
"""

from __future__ import annotations

import sys

_EXEC_WITH_CTRL_C = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                     "os.execv(sys.argv[1], sys.argv[1:])")


def as_in_a_terminal(argv: list[str]) -> list[str]:
    """`argv` (the program first) run with SIGINT at its default, as a terminal starts it."""
    return [sys.executable, "-c", _EXEC_WITH_CTRL_C, *argv]
