"""The only way into the model store: quarantine → verify → install (DESIGN.md invariant 1)."""
