"""SQLite state: installed models, catalogs seen, settings and the audit log."""
