"""Getting bytes: Hugging Face Hub, HTTPS mirrors, local folders; hashed as they stream,
kept in quarantine until verified, then installed atomically."""
