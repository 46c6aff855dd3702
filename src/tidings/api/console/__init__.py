"""The console listener: health and the administration API (JSON)."""
