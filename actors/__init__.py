"""The in-memory live queue: one actor per doctor."""
