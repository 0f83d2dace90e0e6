"""The application layer: one object (`Vetted`) that every front end calls.

`app.py` the operations; `results.py` what they return; `events.py` what changed;
`settings.py` the person's settings (catalogs pinned, transfer limits).
"""

from vetted.core.app import MemoryRefused, Vetted

__all__ = ["MemoryRefused", "Vetted"]
