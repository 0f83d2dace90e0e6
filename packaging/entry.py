"""The frozen app's one entry point (packaging/vetted.spec): `vetted`, `vetted-admin` (the
same executable under that name) and the hidden engine worker all start here; launch.py
decides which."""

import sys

from vetted.launch import main

if __name__ == "__main__":
    sys.exit(main())
