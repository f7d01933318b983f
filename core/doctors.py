"""What a doctor profile holds when nobody said otherwise: one home for the defaults of the ETA rule."""

DEFAULT_SOON_MINUTES = 10  # `turn:soon` when due within this many minutes (SOON_MINUTES)
# A waiting patient is told again (push `delay`, webhook `appointment.delayed`) when the expected
# start has slipped this many more minutes since they were last told (the API contract).
DELAY_NOTICE_MINUTES = 15
DEFAULT_AVG_CONSULT_MINUTES = 12
MAX_AWAY_HOURS = 12  # a break (`awayUntil`) may be announced at most this far ahead
