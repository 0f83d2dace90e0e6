"""Vetted: vetted local language models.

The package is split into a headless core (everything except `vetted.gui`) and a thin
Qt layer in `vetted.gui`. The core never imports Qt (see tests/test_architecture.py).
"""

__version__ = "0.1.0"
