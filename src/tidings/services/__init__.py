"""Business rules: no HTTP, no SQL."""
