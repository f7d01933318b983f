"""What a doctor profile holds when nobody said otherwise: one home for the defaults of the ETA rule."""

DEFAULT_AVG_CONSULT_MINUTES = 12
MAX_AWAY_HOURS = 12  # a break (`awayUntil`) may be announced at most this far ahead
