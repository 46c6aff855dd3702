"""Request authentication and push signing."""
