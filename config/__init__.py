"""Start-up configuration."""
