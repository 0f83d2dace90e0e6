"""The desktop app: a thin PySide6 layer over the core (the only package that imports Qt)."""
