"""The signed catalog: schema, loading and verification, search."""
