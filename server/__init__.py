"""Application assembly and infrastructure."""
