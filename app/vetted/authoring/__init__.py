"""The signing side, for catalog authors and the demo: keys, model signatures, signed
catalogs and attestations (publish.py), and the demo catalog built from PyPI-shipped
models (demo.py). It sits above the application object: the demo pins, pulls and
spot-checks through `vetted.core.Vetted` like any front end."""
