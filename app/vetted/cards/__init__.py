"""Safety cards and provenance: signed claims, consistency with the file, local spot-checks."""
