"""`vetted` and `vetted-admin`: the command-line front ends over `vetted.core.Vetted`.

main.py       the parser, exit codes, how errors and remedies are printed
trust_args.py the TRUST options shared by `verify` and `catalog add`
remedies.py   a core `Remedy` worded as the command to run
progress.py   the terminal progress bar
"""

from vetted.cli.main import main

__all__ = ["main"]
