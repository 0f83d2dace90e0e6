# sigstore ships the public-good TUF roots and signing configs as package data (sigstore/_store/).
# Vetted verifies against its own pinned root, but sigstore reads these at import of its trust
# helpers, so they travel with it.
from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("sigstore")
